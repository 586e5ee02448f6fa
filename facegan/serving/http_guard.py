"""waitress, guarded against clients that hold connections without using them.

waitress buffers slow clients instead of giving them a thread, closes connections idle for
`channel_timeout`, and stops accepting at `connection_limit`. That leaves two ways to shut the
REST door: 300 connections that each trickle a header byte every 10 s never go
idle, and once they fill the connection limit, no one else gets in; and a connection whose
client never reads its answers keeps its buffered output (and, past waitress's high watermark,
a worker thread) for as long as it stays open. So, on top of waitress's own limits:

- **A request must arrive in time.** Its headers within HEADER_TIMEOUT_S of its first byte,
  its whole body within UPLOAD_TIMEOUT_S; a connection that sends nothing is waitress's idle
  timeout. Trickling does not reset these clocks.
- **A full house makes room.** At the connection limit, a new connection is still accepted, and
  the connection that has waited longest for an unfinished request (or sent nothing at all) is
  closed for it, so a slowloris crowd cannot keep a real client out: it loses a connection for
  every one a real client opens.
- **Answers must be read.** A connection whose buffered output has not moved for
  WRITE_STALL_S is closed, which also frees a worker thread blocked on it; a small kernel send
  buffer (SEND_BUFFER_BYTES) keeps a client that never reads from having many answers computed.

TF Serving's own REST server (libevent) has a request timeout and no connection-level limits of
this kind; in production put a reverse proxy in front as docs/serving.md describes.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time

from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import TcpWSGIServer

from facegan.serving.rate_limited_log import REQUESTS_LOG

requests_log = logging.getLogger(REQUESTS_LOG)  # client errors, rate-limited (rate_limited_log.py)

HEADER_TIMEOUT_S = 10.0  # from a request's first byte to the end of its headers
UPLOAD_TIMEOUT_S = 30.0  # from a request's first byte to the end of its body (4 MiB at 1 Mbit/s: 34 s)
WRITE_STALL_S = 10.0  # buffered output that has not moved for this long closes the connection
CHECK_EVERY_S = 1.0  # how often the deadlines are checked (waitress's cleanup_interval)
# The kernel's send buffer per connection. waitress reads a connection's next pipelined request
# only once its answer has left waitress's buffer, and loopback's autotuned buffer took several
# MB, so a client that never reads had half a dozen 64-face answers computed before that (seen:
# real requests waiting 1.1 s behind 8 such clients). 256 KiB still streams 5 MB/s at 50 ms RTT.
SEND_BUFFER_BYTES = 256 * 1024
# waitress parses every pipelined request in what it reads (8 KB: ~30 predicts) and answers them
# one after another into its buffer, up to a 16 MB watermark, then blocks the worker: 8 clients
# that pipeline and never read had ~5 answers a second computed for them and held workers. An
# answer begun while this much is still unsent ends the connection instead (waitress's own
# ClientDisconnected path: the rest of its pipeline is dropped). One answer of any size is fine.
MAX_UNSENT_BYTES = 2 * 2**20


class GuardedChannel(HTTPChannel):
    """waitress's channel, remembering when the request being received began."""

    request_started: float | None = None  # the first byte of the request being received
    output_moved: float = 0.0  # the last time buffered output shrank (or was empty)

    def received(self, data):
        if self.request is None and data:
            self.request_started = time.monotonic()
        result = super().received(data)
        if self.request is None:  # completed (queued for a worker) or none begun
            self.request_started = None
        return result

    def write_soon(self, data):
        if data and self.total_outbufs_len > MAX_UNSENT_BYTES:
            raise ClientDisconnected("the client is not reading its answers")
        return super().write_soon(data)

    def handle_write(self):
        before = self.total_outbufs_len
        super().handle_write()
        if self.total_outbufs_len < before or not self.total_outbufs_len:
            self.output_moved = time.monotonic()

    def waiting_since(self) -> float | None:
        """When this connection began waiting for a request that is not complete, or None if a
        request is being served or its answer is being sent."""
        if self.requests or self.total_outbufs_len:
            return None
        if self.request_started is not None:
            return self.request_started
        return self.last_activity_monotonic()

    def last_activity_monotonic(self) -> float:
        return time.monotonic() - (time.time() - self.last_activity)

    def overdue(self, now: float) -> str | None:
        """Why this connection should be closed now, if it should."""
        if self.request_started is not None and not self.requests:
            request = self.request
            headers_done = request is not None and request.headers_finished
            if not headers_done and now - self.request_started > HEADER_TIMEOUT_S:
                return "headers not received in time"
            if now - self.request_started > UPLOAD_TIMEOUT_S:
                return "body not received in time"
        if self.total_outbufs_len and now - max(self.output_moved, self.last_activity_monotonic()) > WRITE_STALL_S:
            return "answers not read"
        return None


class GuardedServer(TcpWSGIServer):
    """waitress's TCP server with the deadlines and the eviction above."""

    channel_class = GuardedChannel

    def run(self):
        """waitress's loop, which survives a descriptor closed under it: select() would then fail
        with EBADF on every pass and the REST door would stay dead (docs/serving.md, REST). The
        dead entries are dropped, with one line each, and the loop goes on."""
        while self._map:
            try:
                super().run()
                return
            except OSError as e:
                if e.errno != errno.EBADF:
                    raise
                self._drop_dead_descriptors()

    def pull_trigger(self) -> None:
        """Wake the loop to send an answer; a worker that finishes after stop() closed the loop
        (its grace ran out) has no one left to wake, and says nothing (waitress logged EBADF)."""
        try:
            super().pull_trigger()
        except OSError as e:
            if e.errno != errno.EBADF:
                raise

    def _drop_dead_descriptors(self) -> None:
        for fd, dispatcher in list(self._map.items()):
            try:
                os.fstat(fd)
            except OSError:
                requests_log.log(
                    logging.WARNING,
                    "REST: descriptor %d (%s) was closed under the event loop; dropped",
                    fd,
                    type(dispatcher).__name__,
                )
                self._map.pop(fd, None)

    def set_socket_options(self, conn):
        super().set_socket_options(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def readable(self):
        now = time.time()
        if now >= self.next_channel_cleanup:  # waitress's schedule for maintenance()
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return self.accepting  # at the connection limit too: handle_accept makes room

    def handle_accept(self):
        if len(self._map) >= self.adj.connection_limit:
            self._evict_longest_waiting()
        super().handle_accept()

    def _evict_longest_waiting(self) -> None:
        """Mark for closing the connection waiting longest for an unfinished request. Marked, not
        closed: the event loop may be between select() and dispatching, and a closed descriptor
        (or its number reused by the connection accepted next) must not reach either."""
        waiting = []
        for channel in list(self.active_channels.values()):
            since = channel.waiting_since() if isinstance(channel, GuardedChannel) else None
            if since is not None and not channel.will_close:
                waiting.append((since, id(channel), channel))
        if waiting:
            channel = min(waiting)[2]
            requests_log.log(
                logging.WARNING,
                "REST: at %d connections, closed the one waiting longest for its request",
                self.adj.connection_limit,
            )
            channel.will_close = True  # the loop closes it on its next pass (writable() -> handle_write)

    def maintenance(self, now):
        """waitress's idle check, then the deadlines. This runs inside the event loop's readable()
        pass, so channels are only marked (will_close), as waitress does: the loop closes them
        (handle_write -> handle_close, which also wakes a worker blocked writing to one)."""
        super().maintenance(now)
        clock = time.monotonic()
        for channel in list(self.active_channels.values()):
            reason = channel.overdue(clock) if isinstance(channel, GuardedChannel) else None
            if reason and not channel.will_close:
                requests_log.log(logging.WARNING, "REST: closing a connection from %s: %s", channel.addr[0], reason)
                channel.will_close = True
