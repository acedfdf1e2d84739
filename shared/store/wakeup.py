"""Waking the change feed's readers in every process the moment a writer commits, not at their next poll.

Each process's readers (the SSE feed poller, the commit watch behind the agents' long poll) find new
commits by polling every 50 ms, so a change used to wait up to that long. Now a reader also listens on
a datagram socket registered in a directory beside the database (`<db>.wake/`), and a writer whose
transaction recorded changes sends every registered socket an empty datagram once it has committed
(shared.store.db.write_transaction): the readers of every process look at once, whichever process
wrote — a gunicorn worker, the Temporal worker or a cron job.

A poke carries nothing and promises nothing. A lost one (a full socket buffer, a reader registering
while the commit happens, a writer killed between its commit and its poke) costs only the wait for the
reader's timed poll, which stays as the safety net: no change is ever found through a poke alone.

The sockets are in Linux's abstract namespace (no file to leave behind, and no 108-byte limit on a
socket path, which a deep database path would break); the registration file's name is the socket's
name. A registration whose socket is gone (its process was killed) refuses the poke, and the writer
removes it. Anyone on the machine may poke: a poke only makes a reader look sooner.

Only for SQLite on a file, on Linux. An in-memory database lives in one process; on macOS (no abstract
namespace) and on PostgreSQL the readers keep their timed poll (LISTEN/NOTIFY would be the equivalent
there: docs/postgresql.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import select
import socket
from pathlib import Path

_listener_numbers = itertools.count(1)


class Wakeups:
    """The rendezvous of one database file: readers register here, writers poke every registration."""

    def __init__(self, database_path: str):
        self.directory = Path(f"{database_path}.wake")
        digest = hashlib.sha256(os.path.realpath(database_path).encode()).hexdigest()[:20]
        self._namespace = f"\0opencode-dashboard-wake/{digest}/"
        self._sender: socket.socket | None = None
        self._sender_pid: int | None = None

    def address(self, name: str) -> str:
        return self._namespace + name

    def listen(self) -> Listener:
        return SocketListener(self)

    def poke(self) -> None:
        """Wake every registered reader (best effort, never raises: the commit is already done)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return  # no reader has registered yet
        sender = self._socket()
        for name in names:
            try:
                sender.sendto(b"", self.address(name))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # its process is gone: forget it
                    (self.directory / name).unlink()
            except OSError:
                pass  # its queue is full (it has pokes waiting already), or anything else: the poll catches up

    def _socket(self) -> socket.socket:
        # One unbound sending socket per process (a descriptor is not shared across gunicorn's fork).
        if self._sender_pid != os.getpid():
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sender.setblocking(False)
            self._sender_pid = os.getpid()
        return self._sender


class Listener:
    """A reader's wait between looks at the feed: `timeout_s`, or less when woken. Its `fileno` lets a
    reader that also waits on other sockets (the SSE hub's stream writer) wait on it in its own selector,
    then `drain` it."""

    def __init__(self) -> None:
        # Only ever woken by `wake` (the reader is stopping, or has new work): a datagram to itself.
        self._socket, self._waker = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._waker.setblocking(False)

    def fileno(self) -> int:
        return self._socket.fileno()

    def wait(self, timeout_s: float) -> None:
        select.select([self._socket], [], [], timeout_s)
        self.drain()

    def drain(self) -> None:
        """Take every poke waiting: they are all answered by the one look that follows."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self._socket.recv(1)

    def wake(self) -> None:
        """End the current (or next) wait now."""
        with contextlib.suppress(OSError):  # full: it is woken already
            self._waker.send(b"")

    def close(self) -> None:
        self._socket.close()
        self._waker.close()


class SocketListener(Listener):
    """A Listener that a writer in any process on this machine wakes by poking its socket."""

    def __init__(self, wakeups: Wakeups):
        self.name = f"{os.getpid()}-{next(_listener_numbers)}"
        self._registration = wakeups.directory / self.name
        address = wakeups.address(self.name)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.bind(address)
            self._socket.setblocking(False)
            wakeups.directory.mkdir(mode=0o700, exist_ok=True)
            self._registration.touch()
        except OSError:
            self._socket.close()
            raise
        # Woken by its own process as any writer pokes it.
        self._waker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._waker.setblocking(False)
        self._waker.connect(address)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._registration.unlink()
        super().close()


def listener_for(db: object) -> Listener:
    """A Listener for a reader of `db` (the database object, as open_database made it): woken by pokes
    when the database has a rendezvous, else only ever by its own timeout (and `wake`)."""
    wakeups: Wakeups | None = getattr(db, "wakeups", None)
    if wakeups is not None:
        with contextlib.suppress(OSError):  # cannot register (a read-only directory): poll only
            return wakeups.listen()
    return Listener()
