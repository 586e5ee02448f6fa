"""A static file server for a built site, with the headers that let the page use several WASM
threads (cross-origin isolation: SharedArrayBuffer). For trying a site, the tests and the
benchmark; production hosts it with any static server (docs/web.md has nginx's lines).

    python -m facegan.web.static_server site 8000
"""

from __future__ import annotations

import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from facegan.stopping import stop_on_signals

ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}


class SiteHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    isolated: ClassVar[bool] = True

    def end_headers(self):
        if self.isolated:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def log_message(self, format, *args):  # quiet: a page load is a dozen lines otherwise
        pass


def start(folder: str | Path, port: int = 0, host: str = "127.0.0.1", isolated: bool = True) -> ThreadingHTTPServer:
    """Serve `folder` in a daemon thread; `server.server_address[1]` is the port."""
    handler = functools.partial(type("Handler", (SiteHandler,), {"isolated": isolated}), directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="facegan-static", daemon=True).start()
    return server


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python -m facegan.web.static_server SITE_FOLDER [PORT]")
    stop_on_signals()  # Ctrl-C and SIGTERM, also when started in a script's background
    server = start(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 8000)
    print(f"serving {sys.argv[1]} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
        server.server_close()
