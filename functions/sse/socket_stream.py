"""A live stream's socket once the server has handed it over: written by the hub's poller, never waiting.

Under gunicorn (deploy/gunicorn_worker.py) a stream holds its request thread only while it authenticates,
sends its headers and replays its backlog; then the connection is handed over and the process's one feed
poller writes every change to it, with the others, from a single thread (functions/sse/hub.py). A write
takes what the socket accepts now; the rest of that write waits here and goes out when the socket is
writable again, and the changes after it wait in the stream's bounded queue (a client too slow past
that bound is cut off, and resumes by Last-Event-ID). The poller also watches the socket for reading:
a client that went away shows as end-of-file.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable

CLIENT_READ_BYTES = 4096
LAST_CHUNK = b"0\r\n\r\n"  # the end of a chunked body: the client knows the stream ended cleanly
ABORT = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close with a reset, dropping what is unsent


class SocketStream:
    """The server's end of one stream's connection, headers already sent: `write` frames body bytes as
    the response began (chunked for HTTP/1.1), `flush` sends what a full socket left behind, `close`
    ends the body (or cuts the connection) and gives the stream's place back (`on_close`)."""

    def __init__(self, sock: socket.socket, chunked: bool, on_close: Callable[[], None] = lambda: None):
        self.sock = sock
        self.chunked = chunked
        self.on_close = on_close
        self.unsent = b""  # the part of a write the socket did not take yet
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def write(self, data: bytes) -> bool:
        """Queue `data` behind anything unsent and send what the socket takes; whether all went."""
        if self.chunked:
            data = b"%X\r\n%b\r\n" % (len(data), data)
        self.unsent += data
        return self.flush()

    def flush(self) -> bool:
        """Send what is unsent, as far as the socket takes it now; whether nothing is left. A connection
        that failed raises OSError (BlockingIOError excepted: that is a full socket, and the data waits)."""
        if self.unsent:
            try:
                sent = self.sock.send(self.unsent)
            except BlockingIOError:
                return False
            self.unsent = self.unsent[sent:]
        return not self.unsent

    def client_left(self) -> bool:
        """Read what the client sent (it sends nothing on a stream: anything is discarded); True at its
        end-of-file or a reset, i.e. the browser tab or the agent went away."""
        try:
            return not self.sock.recv(CLIENT_READ_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self, clean: bool) -> None:
        """End the stream. Clean: the end of the body is sent if the socket takes it (what is still unsent
        after that is the client's loss to resume by id). Not clean (too slow, gone): cut with a reset,
        so that the kernel does not keep the unread data for a client that will never read it."""
        if self.closed:
            return
        self.closed = True
        try:
            with contextlib.suppress(OSError):
                if clean and self.chunked and self.flush():
                    self.sock.send(LAST_CHUNK)
                elif not clean:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, ABORT)
            self.sock.close()
        finally:
            self.on_close()
