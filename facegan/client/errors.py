"""The one exception type of facegan's serving code: a gRPC status code and a message."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """Raised by the server to abort an RPC, and by the client for a failed call."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
