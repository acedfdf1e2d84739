"""The database handle every function shares, and the middleware that scopes a connection to a request.

Models bind to `database`, a proxy; `open_database(settings)` points it at SQLite (the embedded default)
or PostgreSQL through `playhouse.db_url`. peewee keeps one connection per thread, which fits gunicorn's
gthread workers.

Both databases give writers the same guarantee: one write transaction at a time, waiting at most the
busy timeout (then "database is locked", a 503). SQLite has one writer by design, and the code relies
on it — read-then-write checks (an event id already stored, a notification already sent) and a change
feed whose ids become visible in order. On PostgreSQL `write_transaction` takes one advisory lock,
shared by every process on every machine, to keep that guarantee (see WRITER_LOCK_KEY).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import peewee
from playhouse import db_url
from playhouse.pool import PooledSqliteDatabase

from shared.config import Settings
from shared.store.checkpoints import BACKSTOP_PAGES, Checkpointer
from shared.store.wakeup import Wakeups

# The models' database, whichever open_database opened. The code on every request's path calls it as
# `database.obj.<method>`: a method looked up on the proxy itself is first looked for, and missed, on the
# proxy (an AttributeError made and thrown away) before the proxy's __getattr__ forwards it, and the
# proxy's own `atomic` hands peewee's transaction the proxy, so each of its steps pays that again. Going
# through the proxy cost a single event 8 % more instructions (docs/benchmarks.md, the seventh round).
database = peewee.DatabaseProxy()

# The largest integer an SQLite or PostgreSQL integer column holds; a larger one never reaches SQL
# (sqlite3 raises OverflowError), so inputs are checked against it.
MAX_INTEGER = 2**63 - 1


def sqlite_pragmas(busy_timeout_ms: int) -> dict[str, object]:
    # WAL lets readers proceed while one writer commits; NORMAL sync is durable across process crashes
    # in WAL mode (only an OS crash can lose the last commits); the busy timeout makes a second writer
    # queue instead of failing with "database is locked".
    return {
        "journal_mode": "wal",
        "busy_timeout": sqlite_busy_timeout_ms(busy_timeout_ms),
        "synchronous": 1,
        "foreign_keys": 1,
        # Each connection's page cache, 8 MiB rather than SQLite's 2: a full ingest batch dirties more than
        # 2 MiB of pages, which then spill to the WAL before the commit, are read back, and are written
        # again (a 1 000-event batch of bench/ingest.py's mix: ~1 300 fewer reads and writes; docs/benchmarks.md).
        # A cache fills only with pages its connection has used, and an idle pooled connection is closed
        # (STALE_CONNECTION_S).
        "cache_size": -8192,
        # Checkpoints happen after commits, outside the write lock (shared/store/checkpoints.py); a
        # commit does one itself only past the backstop.
        "wal_autocheckpoint": BACKSTOP_PAGES,
    }


def sqlite_busy_timeout_ms(busy_timeout_ms: int) -> int:
    """SQLite's own busy timeout: the configured wait less a fiftieth, which a writer may spend queueing
    for the write lock (WriteLock) without cutting SQLite's for its transaction (_busy_timeout_at_most).
    Under load most writers queue a little; each cut costs two statements inside the write lock."""
    return busy_timeout_ms - busy_timeout_ms // 50


# A pooled connection idle this long is closed rather than reused (a cache that can be lost).
STALE_CONNECTION_S = 300


def open_database(settings: Settings) -> peewee.Database:
    """Create the database object for `settings.database_url` and bind the models to it.

    Connections are pooled: the per-request middleware still opens and closes one around every
    request, but "close" hands it back to the pool, so a request does not pay for a new connection,
    its pragmas and a schema read (about 1 ms on SQLite, more than the ingest itself)."""
    url = settings.database_url
    current = database.obj
    if current is not None and getattr(current, "opened_from_url", None) == url:
        return current  # every function in one process shares one database object
    scheme, _, rest = url.partition(":")
    if scheme == "sqlite":
        # check_same_thread=False: a pooled connection moves between threads, one thread at a time.
        db = SqlitePool(**db_url.parse(url), pragmas=sqlite_pragmas(settings.busy_timeout_ms),
                        max_connections=None, stale_timeout=STALE_CONNECTION_S, check_same_thread=False,
                        factory=CursorTrackingConnection)
        # sqlite3's own busy wait (5 s unless told) covers the pragmas a new connection runs before its
        # busy_timeout pragma applies: without this a locked database held a new connection 5 s, whatever
        # DATABASE_BUSY_TIMEOUT_MS said. (The pool took `timeout=` for itself, hence the setter.)
        db.timeout = settings.busy_timeout_ms / 1000
        on_disk = db.database != ":memory:"
        if on_disk:
            Path(db.database).parent.mkdir(parents=True, exist_ok=True)
        db.write_lock = WriteLock(db.database if on_disk else None, settings.busy_timeout_ms / 1000)
        db.checkpointer = Checkpointer(db.database) if on_disk else None
        # Where this database's readers wait to be poked after a commit (shared/store/wakeup.py).
        # Linux only: the rendezvous uses Linux's abstract socket namespace (and SOCK_CLOEXEC). Elsewhere
        # (a Mac mini) the readers keep their timed poll, as on PostgreSQL.
        db.wakeups = Wakeups(db.database) if on_disk and sys.platform.startswith("linux") else None
    else:
        # peewee's PostgreSQL pool rolls back whatever transaction a connection comes back with (one a
        # failed statement aborted included), so the next request starts clean there too.
        db = db_url.connect(f"{scheme}+pool:{rest}", max_connections=None, stale_timeout=STALE_CONNECTION_S,
                            options=postgresql_options(url, settings.busy_timeout_ms))
    db.opened_from_url = url
    db.busy_timeout_s = settings.busy_timeout_ms / 1000  # how long a write may wait for the writer slot
    database.initialize(db)
    return db


class CursorTrackingConnection(sqlite3.Connection):
    """An SQLite connection that knows the cursors opened on it, so that what a request left unfinished
    can be reset before the connection serves another one (SqlitePool)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    def cursor(self, factory: type[sqlite3.Cursor] = sqlite3.Cursor) -> sqlite3.Cursor:
        cursor = super().cursor(factory)
        self._cursors.add(cursor)
        return cursor

    # sqlite3's own shortcuts make their cursor in C, out of sight of cursor(). Theirs need tracking only
    # when they have rows to read: a statement that returns none (most writes) is done when it returns.
    # Tracking costs a weak reference made and dropped, a tenth of a cheap statement.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor = super().cursor()
        cursor.execute(sql, parameters)
        if cursor.description is not None:
            self._cursors.add(cursor)
        return cursor

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return super().cursor().executemany(sql, parameters)  # sqlite3 runs no statement with rows here

    def close_cursors(self) -> None:
        for cursor in list(self._cursors):
            cursor.close()


class SqlitePool(PooledSqliteDatabase):
    """peewee's SQLite pool, which also resets every statement a connection comes back with.

    A read that failed part way through its rows leaves its statement unfinished, and an unfinished
    statement holds a read snapshot even outside any transaction (`in_transaction` is False, so the
    pool's own rollback does not see it). If the cursor outlived the request (a traceback kept it), the
    next request handed that connection could not write: BEGIN IMMEDIATE on a connection whose snapshot
    is older than the last commit fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, no busy
    wait), a 503 for a valid write until something freed the cursor. Closing the cursors resets them."""

    def _can_reuse(self, conn: sqlite3.Connection) -> bool:
        try:
            conn.close_cursors()
        except Exception:  # a connection that cannot even do that is not handed out again
            return False
        return super()._can_reuse(conn)


def postgresql_options(url: str, busy_timeout_ms: int) -> str:
    """The session options of a PostgreSQL connection: the URL's own `options`, plus `lock_timeout` as
    SQLite's busy timeout — a writer waits that long for the writer lock (or a row), then gets
    "canceling statement due to lock timeout", an OperationalError like SQLite's "database is locked"."""
    own = db_url.parse(url).get("options", "")
    return f"{own} -c lock_timeout={int(busy_timeout_ms)}".strip()


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


class WriteLock:
    """Queues this machine's writers to one SQLite file: threads on a mutex, processes on an flock.

    SQLite admits one writer at a time and makes the others poll through its busy handler, which
    sleeps 1 to 100 ms between tries — far longer than our transactions (well under a millisecond).
    Waiting here instead hands the lock over promptly. Like the busy timeout, the wait is bounded:
    past it, the same "database is locked" error (a 503) as SQLite's own."""

    def __init__(self, database_path: str | None, timeout_s: float):
        self.path = f"{database_path}.write-lock" if database_path else None
        self.timeout_s = timeout_s
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._fd_pid: int | None = None

    @contextlib.contextmanager
    def held(self, timeout_s: float | None = None) -> Iterator[float]:
        """Hold the lock, waiting at most `timeout_s` (None: the busy timeout); yields the seconds left
        of the wait, for SQLite's own lock to take no longer."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        if not self._mutex.acquire(timeout=timeout_s):
            raise peewee.OperationalError("database is locked (waited for another writer in this process)")
        try:
            fd = self._file()
            if fd is not None:
                self._lock_file(fd, deadline)
            try:
                yield max(deadline - time.monotonic(), 0.0)
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _file(self) -> int | None:
        # One descriptor per process, opened after gunicorn forks: a descriptor inherited across a
        # fork shares its lock with the parent and would exclude nothing.
        if self.path is None:
            return None
        if self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._fd_pid = os.getpid()
        return self._fd

    @staticmethod
    def _lock_file(fd: int, deadline: float) -> None:
        pause = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise peewee.OperationalError("database is locked (waited for another writer)") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)


# The PostgreSQL advisory lock every write transaction takes first ("opencode" in ASCII). Held until
# commit or rollback, so a sequence value drawn under it commits before any drawn after it: a reader
# tailing `changes` by id never sees id n+1 before id n, and so never skips n (with concurrent
# writers and no lock, n+1 can commit first). The cost: writes are serialized across every process
# and machine, as on SQLite — throughput is one short transaction at a time, while reads (most of the
# traffic) never wait for it. Taken at BEGIN rather than at the first change: a transaction that waited
# for it while holding row locks could deadlock with the holder.
WRITER_LOCK_KEY = 0x6F70656E636F6465

_writer = threading.local()


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction for writes, which waits for the database's one writer slot up front: on SQLite the
    write lock (BEGIN IMMEDIATE) so two writers queue instead of one failing on a read-to-write lock
    upgrade; on PostgreSQL the writer advisory lock."""
    if database.obj.in_transaction():
        with database.obj.atomic():  # nested: a savepoint inside the transaction that holds the lock
            if not is_sqlite():
                hold_writer_lock()  # in case the outer transaction was not a write_transaction
            yield
    elif is_sqlite():
        with database.obj.write_lock.held() as left_s, writer_transaction(left_s):
            yield
    else:
        with writer_transaction(None):
            yield


@contextlib.contextmanager
def writer_transaction(wait_s: float | None) -> Iterator[None]:
    """The outermost write transaction, waiting at most `wait_s` (None: the busy timeout) for the writer
    slot; on SQLite its caller holds the WriteLock already. Once it has committed, the feed's readers
    are woken if it recorded changes."""
    _writer.changes_recorded = False
    if is_sqlite():
        with _busy_timeout_at_most(wait_s), _first_error_kept(), database.obj.atomic("IMMEDIATE"):
            yield
    else:
        with database.obj.atomic():
            _take_writer_lock(wait_s)
            _writer.holding = True
            try:
                yield
            finally:
                _writer.holding = False
    _wake_readers_if_changes_recorded()
    checkpointer = getattr(database.obj, "checkpointer", None)
    if checkpointer is not None:
        checkpointer.committed()


def _take_writer_lock(wait_s: float | None) -> None:
    """PostgreSQL: wait for the writer advisory lock at most `wait_s`, not the whole lock_timeout."""
    full_ms = int(database.obj.busy_timeout_s * 1000)
    left_ms = full_ms if wait_s is None else int(wait_s * 1000)
    if left_ms >= full_ms - 1:
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))
        return
    # lock_timeout 0 would mean no limit at all; the statements after the lock get the full one back.
    database.execute_sql("SELECT set_config('lock_timeout', %s, true)", (str(max(left_ms, 1)),))
    database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))
    database.execute_sql("SELECT set_config('lock_timeout', %s, true)", (str(full_ms),))


def changes_recorded() -> None:
    """Say that this write transaction recorded changes (shared.store.feed.record_change): once it has
    committed, the feed's readers in every process are woken to read them (shared/store/wakeup.py)."""
    _writer.changes_recorded = True


def _wake_readers_if_changes_recorded() -> None:
    # After the commit, outside the write lock: a reader woken sooner would not see the changes yet.
    if getattr(_writer, "changes_recorded", False):
        _writer.changes_recorded = False
        wakeups = getattr(database.obj, "wakeups", None)
        if wakeups is not None:
            wakeups.poke()


def hold_writer_lock() -> None:
    """Make sure this transaction holds the writer slot (on SQLite any write transaction does)."""
    if not is_sqlite() and not getattr(_writer, "holding", False):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))


@contextlib.contextmanager
def _first_error_kept() -> Iterator[None]:
    """After a failed statement or COMMIT peewee sends ROLLBACK. When SQLite has rolled the transaction
    back by itself (it does on a disk I/O error or a full disk), that ROLLBACK fails with "no transaction
    is active", which would replace the error that says what went wrong: raise that one instead."""
    try:
        yield
    except peewee.OperationalError as error:
        first: BaseException = error
        while "no transaction is active" in str(first) and first.__context__ is not None:
            first = first.__context__
        if first is error:
            raise
        raise first from None


@contextlib.contextmanager
def _busy_timeout_at_most(seconds: float | None) -> Iterator[None]:
    """Cut SQLite's busy timeout to `seconds` (None: leave it) for one transaction. A writer that queued
    behind another one (which waited on the same lock) has used part of its wait already: without this it
    would wait the whole busy timeout again, twice as long as configured, before answering 503."""
    own_ms = sqlite_busy_timeout_ms(int(database.obj.busy_timeout_s * 1000))
    left_ms = own_ms if seconds is None else int(seconds * 1000)
    if left_ms >= own_ms:  # the usual case: the queue took less than the margin left for it
        yield
        return
    connection = database.obj.connection()
    connection.execute(f"PRAGMA busy_timeout = {left_ms}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA busy_timeout = {own_ms}")


# Rows known to exist, within one ingest batch ---------------------------------------------------------

_batch = threading.local()


@contextlib.contextmanager
def batch_memo() -> Iterator[None]:
    """Remember, for the length of one write transaction that applies a batch, which rows the batch has
    made sure of (`first_in_batch`), so a thousand events about one session create it (or touch it) once,
    and what it read and keeps up to date itself (`memo_in_batch`). Only inside a write transaction that
    deletes none of the rows it remembers."""
    _batch.seen = set()
    _batch.memos = {}
    try:
        yield
    finally:
        _batch.seen = _batch.memos = None


def memo_in_batch(name: str) -> dict[Any, Any] | None:
    """A dict kept for the length of the batch under `name`; None outside a batch (read each time then)."""
    memos = getattr(_batch, "memos", None)
    return None if memos is None else memos.setdefault(name, {})


def first_in_batch(key: tuple[str, ...]) -> bool:
    """True the first time `key` is asked about in this batch, and always outside one (no memo then)."""
    seen = getattr(_batch, "seen", None)
    if seen is None:
        return True
    if key in seen:
        return False
    seen.add(key)
    return True


# The hot write paths (ingest, the feed) run fixed SQL statements through these: building a statement
# with peewee's query builder costs ~100 µs, running it ~10 µs. Statements use `?` placeholders.

def execute(statement: str, params: Sequence[Any] = ()) -> Any:
    """Run one statement on this thread's connection; return the cursor."""
    if is_sqlite():
        # Straight to sqlite3, with errors still turned into peewee's (the 503 handler knows those).
        with peewee.__exception_wrapper__:
            return database.obj.connection().execute(statement, params)
    return database.execute_sql(_with_format_placeholders(statement), params)


def insert_returning_id(statement: str, params: Sequence[Any] = ()) -> int:
    """Run an INSERT into a table with an integer primary key; return the new row's id."""
    if is_sqlite():
        return execute(statement, params).lastrowid
    return execute(statement + " RETURNING id", params).fetchone()[0]


def execute_many(statement: str, rows: Iterable[Sequence[Any]]) -> None:
    with peewee.__exception_wrapper__:
        if is_sqlite():
            database.obj.connection().executemany(statement, rows)
        else:
            # psycopg2's executemany is one round trip per row; execute_batch sends them 100 at a time.
            from psycopg2.extras import execute_batch

            execute_batch(database.obj.cursor(), _with_format_placeholders(statement), list(rows), page_size=100)


@functools.cache
def _with_format_placeholders(statement: str) -> str:
    return statement.replace("?", "%s")  # psycopg's placeholder


class DatabaseSession:
    """Falcon middleware: one connection per request, closed when the response is done.

    A resource with `connects_itself = True` (the health check) opens it in its own handler, so that a
    database it cannot connect to is something it reports rather than an error before it runs."""

    def process_resource(self, req, resp, resource, params) -> None:
        if not getattr(resource, "connects_itself", False):
            database.obj.connect(reuse_if_open=True)

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if not database.obj.is_closed():
            database.obj.close()
