"""gunicorn's gthread worker, except that a connection gets a thread only once its request head is in.

gthread hands a connection to a thread as soon as any byte arrives, and the thread then blocks reading
the rest of the head for as long as the client cares to take: 140 connections that send half a header
and stop held 140 threads for ever, and nothing was left for anyone else. gunicorn has no header
timeout for this worker (`timeout` is the worker's heartbeat, `keepalive` covers only the wait between
requests).

Here the worker's own event loop watches such connections instead: it moves what arrives, without
ever waiting, into the buffer gunicorn's parser reads first, and submits a connection to the thread
pool only when its head is complete (or certainly malformed, which gunicorn refuses at once). A
connection whose head has not ended within DASHBOARD_HEADER_TIMEOUT_S is answered 408 and closed; a
head over MAX_HEAD_BYTES is a 431. A half-sent request costs a file descriptor and a poller entry,
never a thread. (A body that stalls still holds its thread: bodies are small, and rare on the routes
anyone may call.)

A live stream does not keep its thread either. Every request's environ offers it the connection
(shared/web/handover.py): once the stream has sent its headers and replayed its backlog it takes the
socket, and the process's feed poller writes it from then on, with every other stream, without waiting
(functions/sse/hub.py). gunicorn then neither ends the response nor keeps or closes the connection; it
no longer counts it among its connections (`worker_connections`): open streams have their own bound,
DASHBOARD_STREAMS per worker, for which the worker raises its open-file limit at start. A worker told
to stop ends its streams cleanly (their browsers reconnect elsewhere and resume by id).
"""

from __future__ import annotations

import contextlib
import io
import resource
import selectors
import socket
import threading
import time
from functools import partial

from gunicorn import http
from gunicorn.workers.gthread import ThreadWorker

from deploy.http_errors import json_error_response
from functions.sse.hub import end_every_stream_in_this_process, stop_every_hub_in_this_process
from shared.config import Settings
from shared.web.handover import TAKE_SOCKET
from shared.web.long_requests import long_request_budget, stream_budget

# Far above any head a browser or an agent sends (gunicorn's own limit per header line is 8 190 bytes).
MAX_HEAD_BYTES = 64 * 1024
HEAD_END = b"\r\n\r\n"
RECV_BYTES = 16 * 1024
REFUSED_LINGER_S = 2.0
FULL_WORKER_ACCEPT_DELAY_S = 0.005
COMPLETE, PARTIAL, TOO_LARGE, CLOSED = "complete", "partial", "too large", "closed"
# Descriptors a worker needs besides its connections and streams: listeners, the database, logs, pipes.
OTHER_DESCRIPTORS = 64


def head_state(data: bytes) -> str:
    """COMPLETE when the head has ended (or is certainly malformed: a bare LF, which gunicorn answers
    400 at once), TOO_LARGE past MAX_HEAD_BYTES, else PARTIAL."""
    if HEAD_END in data or data.count(b"\n") != data.count(b"\r\n"):
        return COMPLETE
    return TOO_LARGE if len(data) > MAX_HEAD_BYTES else PARTIAL


def read_head(conn) -> str:
    """Move what has arrived into the connection's parser buffer (where gunicorn reads first), without
    waiting, until the head is complete; return its state, or CLOSED when the client went away."""
    buffer = conn.parser.unreader.buf
    buffer.seek(0, io.SEEK_END)
    while (state := head_state(buffer.getvalue())) == PARTIAL:
        try:
            chunk = conn.sock.recv(RECV_BYTES, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return PARTIAL  # nothing more yet (and nothing left unread to keep the socket readable)
        except OSError:
            return CLOSED
        if not chunk:
            return CLOSED
        buffer.write(chunk)
    return state


class HeadGuardWorker(ThreadWorker):
    def init_process(self) -> None:
        settings = Settings.from_env()
        self.header_timeout_s = settings.header_timeout_s
        self.long_request_slots = settings.long_request_slots
        self.stream_slots = settings.streams
        allow_open_files(settings.streams + self.cfg.worker_connections + OTHER_DESCRIPTORS, self.log)
        # Connections the event loop watches: heads still coming in, and refused ones lingering.
        self.watched: set = set()
        self.serving = threading.local()  # the connection a request thread is serving
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = partial(self.offer_connection, self.wsgi)

    def offer_connection(self, app, environ, start_response):
        """The app, with the connection offered to its response (shared/web/handover.py). gunicorn's
        start_response is a method of the response it will end: that response is the one let go."""
        environ[TAKE_SOCKET] = partial(self.hand_over, self.serving.conn, start_response.__self__)
        return app(environ, start_response)

    def hand_over(self, conn, response):
        """Give the connection to the response that asks for it: its headers go out now, and from here
        gunicorn writes nothing more (no chunk ends the body: nothing is chunked for it any more) and
        neither keeps the connection for another request nor closes it (finish_request)."""
        if conn.is_http2 or self.cfg.is_ssl:
            return None
        response.send_headers()
        chunked, response.chunked = response.chunked, False
        response.force_close()
        conn.handed_over = True
        return conn.sock, chunked

    def handle(self, conn):
        self.serving.conn = conn
        try:
            return super().handle(conn)
        finally:
            self.serving.conn = None

    def finish_request(self, conn, fs) -> None:
        if getattr(conn, "handed_over", False):
            self.nr_conns -= 1  # the stream writer's now, and counted among the streams instead
            return
        super().finish_request(conn, fs)

    def handle_exit(self, sig, frame) -> None:
        """A graceful stop (SIGTERM): it waits for requests in progress, and a stream never ends by
        itself, so the streams end now, cleanly; their browsers reconnect and resume by id."""
        super().handle_exit(sig, frame)
        end_every_stream_in_this_process()

    def run(self) -> None:
        try:
            super().run()
        finally:
            stop_every_hub_in_this_process()  # the streams' last chunk sent, their sockets closed

    def accept(self, listener) -> None:
        """Every worker is woken for a new connection and the first to accept it serves it. A worker
        whose streams or long polls fill its budget lets the others go first, so a new stream lands
        where there is room (when every worker is full, it still accepts, a moment later)."""
        if (long_request_budget().held >= self.long_request_slots
                or stream_budget().held >= self.stream_slots):
            time.sleep(FULL_WORKER_ACCEPT_DELAY_S)
        super().accept(listener)

    def enqueue_req(self, conn) -> None:
        """Every way a connection reaches the thread pool (new, kept alive, read ahead) comes here."""
        if self.cfg.is_ssl:  # TLS is a proxy's job here; a TLS record cannot be read this way
            super().enqueue_req(conn)
            return
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        if (state := read_head(conn)) == PARTIAL:
            conn.refused = False
            self.watch(conn, self.on_head_readable, self.header_timeout_s)
        else:
            self.settle(conn, state)

    def on_head_readable(self, conn, _sock) -> None:
        if (state := read_head(conn)) != PARTIAL:
            self.unwatch(conn)
            self.settle(conn, state)

    def settle(self, conn, state: str) -> None:
        if state == COMPLETE:
            conn.data_ready = True  # else gthread holds a thread waiting for a first byte
            super().enqueue_req(conn)
        elif state == TOO_LARGE:
            self.refuse(conn, 431, "Request Header Fields Too Large",
                        f"The request's head is larger than {MAX_HEAD_BYTES} bytes.")
        else:
            self.drop(conn)

    def murder_pending(self) -> None:
        """gthread calls this about once a second, and while it stops: a head overdue is answered 408,
        a refused connection that lingered long enough is closed (all of them once the worker stops)."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [conn for conn in self.watched if conn.due <= now or not self.alive]:
            self.unwatch(conn)
            if conn.refused or not self.alive:
                self.drop(conn)
            else:
                self.refuse(conn, 408, "Request Timeout",
                            f"The request's head did not arrive within {self.header_timeout_s:g} s.")

    def refuse(self, conn, status: int, reason: str, message: str) -> None:
        """Answer in the project's JSON error shape (never blocking), then linger a little, discarding
        what the client still sends, before closing: closing with unread bytes would reset the
        connection, and the client could lose the answer."""
        try:
            conn.sock.send(json_error_response(status, reason, message), socket.MSG_DONTWAIT)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop(conn)
            return
        conn.refused = True
        self.watch(conn, self.on_refused_readable, REFUSED_LINGER_S)

    def on_refused_readable(self, conn, _sock) -> None:
        try:
            while conn.sock.recv(RECV_BYTES, socket.MSG_DONTWAIT):
                pass
        except BlockingIOError:
            return  # the client is still sending: keep discarding
        except OSError:
            pass
        self.unwatch(conn)
        self.drop(conn)

    def watch(self, conn, on_readable, timeout_s: float) -> None:
        conn.due = time.monotonic() + timeout_s
        self.watched.add(conn)
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(on_readable, conn))

    def unwatch(self, conn) -> None:
        self.watched.discard(conn)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)

    def drop(self, conn) -> None:
        self.nr_conns -= 1
        conn.close()


def allow_open_files(needed: int, log) -> None:
    """Raise this process's open-file limit to `needed` (as far as its hard limit allows): every
    connection and every open stream is a file descriptor, and the usual soft limit is 1 024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("the open-file limit (%d) is below the %d that DASHBOARD_STREAMS and gunicorn's "
                    "worker_connections need: raise it (ulimit -n), or lower DASHBOARD_STREAMS", soft, needed)
