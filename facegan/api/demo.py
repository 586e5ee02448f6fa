"""The demo from Python: `facegan.demo(server)` starts `facegan demo`'s Gradio app in this process,
inline in a notebook's output:

    with facegan.serve("models/facegan") as server:
        app = facegan.demo(server)        # shown under the cell in Jupyter and Colab; app.url anywhere
        ...
        app.close()

`server` is a running `Serving` (facegan.serve's) or an address (host:port for gRPC, http://host:port
for REST), as `facegan demo --server` takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegan import extras
from facegan.errors import UsageError


@dataclass
class Demo:
    """A running demo: its local URL, its public one when shared, and `close()`."""

    app: object  # the gradio.Blocks
    sweeper: object  # the cache sweeper that runs while the app does
    url: str
    share_url: str | None

    def close(self) -> None:
        self.sweeper.stop()
        self.app.close()

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@extras.explained
def demo(
    server,
    *,
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    inline: bool | None = None,
    timeout: float = 10.0,
) -> Demo:
    """Start the Gradio demo for `server` and return it running. `port` None: 7860 or the next
    free one; `share`: Gradio's public share link (it needs the internet); `inline` None: shown in
    a notebook's output when there is one."""
    from facegan.api.serving import Serving
    from facegan.versions import DEFAULT_MODEL_NAME

    if isinstance(server, Serving):
        address = server.grpc_address
        model = model or server.sources[0].name
    elif isinstance(server, str) and server:
        address = server
    else:
        raise UsageError(f"server is a running facegan.serve(...) or an address, not {type(server).__name__}")
    if port is not None and (type(port) is not int or not 1 <= port <= 65535):
        raise UsageError(f"port must be a whole number in 1..65535, got {port!r}")
    from facegan.gradio_demo.app import build_app, launch, sweep_gradio_cache
    from facegan.gradio_demo.faces import FaceSource

    app = build_app(FaceSource(address, model or DEFAULT_MODEL_NAME, timeout))
    sweeper = sweep_gradio_cache()
    try:
        launch(app, host, port, prevent_thread_lock=True, inline=inline, share=share)
    except BaseException:
        sweeper.stop()
        raise
    return Demo(app, sweeper, app.local_url, getattr(app, "share_url", None))
