"""`Request`: one call as a front door received it, built by each door (gRPC in service.py, REST
in rest.py) and passed down unchanged: the Predictor resolves its model, a servable runs its
signature, and the projection queue honours its deadline and hears when its client is gone.
Like TF Serving's request protos with the ServerContext beside them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_SIGNATURE = "serving_default"  # what an empty signature name means, as in TF Serving

# on_client_gone(callback) has `callback` run once the client is gone (at once if it already is).
ClientGoneHook = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class ModelRef:
    """Which model a request means, as TF Serving's ModelSpec: a name and a pinned version, a
    version label, or neither (the highest available version). It travels in a Request to the
    manager's `resolve()`."""

    name: str
    version: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Request:
    """One Predict call, as either door built it."""

    model: ModelRef  # which model and version
    signature_name: str = ""  # as asked; "" means serving_default
    output_filter: tuple[str, ...] = ()  # the outputs asked for; () means all
    deadline: float | None = None  # time.monotonic() by which to answer; None: the client set none
    on_client_gone: ClientGoneHook | None = None  # None: the door cannot tell (REST)

    @property
    def signature(self) -> str:
        """The signature that runs."""
        return self.signature_name or DEFAULT_SIGNATURE


def grpc_client_gone_hook(context) -> ClientGoneHook:
    """The request's on_client_gone from gRPC's context: add_callback runs a callback when the RPC
    ends (cancelled, past its deadline, or answered: a finished call ignores it), and returns False
    when the RPC has already ended, when the callback must run at once."""

    def on_client_gone(callback: Callable[[], None]) -> None:
        if context.add_callback(callback) is False:
            callback()

    return on_client_gone
