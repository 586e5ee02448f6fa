"""A static file server for a built site, with the headers that let the page use several WASM
threads (cross-origin isolation: SharedArrayBuffer). For trying a site, the tests and the
benchmark; production hosts it with any static server (docs/web.md has nginx's lines).

    python -m facegan.web.static_server site 8000

The standard library's threaded HTTP server, held to what a server on a network needs: files
inside the site only (no listings, no symlinks that lead out, no NUL tricks), a deadline for
idle and slow connections, at most MAX_CONNECTIONS connections (one thread each) with the
others closed at once, and a client that hangs up costs no traceback. Standard library only,
so the client install (which builds sites: `facegan web`) can serve one too.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from facegan.stopping import sleep_until, stop_on_signals

ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}
MAX_CONNECTIONS = 64  # served at once, a thread each; a browser opens about 6 per site
IDLE_TIMEOUT_S = 30.0  # a connection silent this long (before or inside a request's headers) is closed


class SiteHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    isolated: ClassVar[bool] = True
    timeout = IDLE_TIMEOUT_S  # the socket's timeout: every read of a request waits at most this long

    def end_headers(self):
        if self.isolated:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def send_head(self):
        """The site's own files only: anything else is a 404, as a missing file is."""
        path = self.translate_path(self.path)
        if "\0" in path:
            self.send_error(HTTPStatus.BAD_REQUEST, "bad path")
            return None
        root = os.path.realpath(self.directory)
        real = os.path.realpath(path)
        if real != root and not real.startswith(root + os.sep):  # a symlink that leads out of the site
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):  # a folder without index.html is not listed
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")

    def log_message(self, format, *args):  # quiet: a page load is a dozen lines otherwise
        pass


class SiteServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a bound on the connections it serves at once, and quiet about
    clients that hang up or time out."""

    daemon_threads = True

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS):
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):  # full: this one is closed, the rest keep their threads
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # reset, broken pipe, timed out: the client's doing
            return
        print(f"static server: {type(error).__name__}: {error} ({client_address[0]})", file=sys.stderr)


def start(
    folder: str | Path,
    port: int = 0,
    host: str = "127.0.0.1",
    isolated: bool = True,
    max_connections: int = MAX_CONNECTIONS,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> SiteServer:
    """Serve `folder` in a daemon thread; `server.server_address[1]` is the port."""
    handler_class = type("Handler", (SiteHandler,), {"isolated": isolated, "timeout": idle_timeout_s})
    handler = functools.partial(handler_class, directory=str(folder))
    server = SiteServer((host, port), handler, max_connections)
    threading.Thread(target=server.serve_forever, name="facegan-static", daemon=True).start()
    return server


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python -m facegan.web.static_server SITE_FOLDER [PORT]")
    stop_on_signals()  # Ctrl-C and SIGTERM, also when started in a script's background
    server = start(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 8000)
    print(f"serving {sys.argv[1]} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        sleep_until(threading.Event())  # until Ctrl-C or SIGTERM raises Stop here
    except KeyboardInterrupt:
        server.shutdown()
        server.server_close()
