"""Group commit: writes that arrive while another is under way share its next transaction.

Under gunicorn, single-event ingest spent most of its CPU handing the one writer slot around rather than
writing: each request took the process's mutex and the file lock, began, wrote a few rows, committed
and let go, and each commit wrote its pages to the WAL again. Here a request that finds no write under
way in its process leads: it waits for the writer slot, takes every write queued by then (its own
first among them), runs each in a savepoint of its own — one that fails (a 422 from a projection, a
constraint, a bug) is rolled back alone and only its request gets the error — commits once, and
answers the others. A request that finds a write under way queues its write and waits: for its answer,
or for its turn to lead the next group. A request alone, the usual case when writes are few, writes
as it always did, with nothing handed to another thread.

Nothing is answered before the commit that holds it, so nothing acknowledged can be lost; a commit that
fails fails every write of its group, and none of them is acknowledged.

The wait stays bounded as it was: the leader waits for the writer slot (the write lock, then SQLite's
busy timeout or PostgreSQL's lock_timeout) no longer than what is left of the earliest queued write's
busy timeout, and a write still queued when its time is up is answered "database is locked" (a 503)
and never applied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import peewee

from shared.store.db import database, execute, write_transaction, writer_transaction

T = TypeVar("T")

# A group's writes together hold at most this much work (their weights: events, for ingest) unless one
# alone is heavier: no transaction gets longer than one full batch's (the ingest contract's 1 000).
MAX_GROUP_WEIGHT = 1000


@dataclass(eq=False)  # a write is itself, whatever it holds
class Write:
    work: Callable[[], Any]
    weight: int
    deadline: float  # time.monotonic() past which it is not begun: the database kept it waiting too long
    woken: threading.Event = field(default_factory=threading.Event)  # answered, or its turn to lead
    leads: bool = False
    answered: bool = False
    result: Any = None
    error: BaseException | None = None

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.answered = result, error, True
        self.woken.set()


class GroupCommit:
    """The writes of one process that wait for a transaction, and whether one of its threads leads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Write] = []
        self._leading = False

    @property
    def queued(self) -> int:
        """How many writes wait for a transaction (the leader's own included, until it takes them)."""
        return len(self._queue)

    def write(self, work: Callable[[], T], weight: int = 1) -> T:
        """Run `work` in a write transaction, alone or with others' writes, and return what it returns
        (or raise what it raised) once that transaction has committed."""
        write = Write(work, weight, time.monotonic() + database.obj.busy_timeout_s)
        with self._lock:
            self._queue.append(write)
            write.leads, self._leading = not self._leading, True
        while not write.answered:
            if write.leads:
                write.leads = False
                try:
                    self._commit_a_group()
                finally:
                    self._hand_over()
            else:
                write.woken.wait()  # every queued write is answered, or made to lead, by a leader
                write.woken.clear()
        if write.error is not None:
            raise write.error
        return write.result

    def _hand_over(self) -> None:
        """The lead passes to the oldest write still waiting, if any."""
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
            successor.leads = True
        successor.woken.set()

    def _commit_a_group(self) -> None:
        """Wait for the writer slot, at most what is left of the earliest write's time; take the writes
        queued by then, apply each (in a savepoint when there are several), commit, and answer them."""
        group: list[Write] = []
        try:
            write_lock = getattr(database.obj, "write_lock", None)  # on PostgreSQL the transaction takes it
            with (write_lock.held(self._wait_left()) if write_lock else nullcontext(),
                  writer_transaction(self._wait_left())):
                group += self._take_group()
                if len(group) == 1:  # alone: its failure rolls back the transaction, which holds nothing else
                    outcomes = [(group[0].work(), None)]
                else:
                    outcomes = [in_savepoint(write.work) for write in group]
        except BaseException as error:
            if group:  # the transaction failed: every write of the group with it
                for write in group:
                    write.answer(error=error)
                if not isinstance(error, Exception):
                    raise  # after answering: the others' threads must not wait for ever
            elif is_lock_timeout(error):  # the database stayed locked: the writes out of time are answered
                now = time.monotonic()
                self._answer_queued(lambda write: write.deadline <= now, error)
            else:  # no connection, no lock file: nothing queued can be written now
                self._answer_queued(lambda write: True, error)
            return
        for write, (result, error) in zip(group, outcomes, strict=True):
            write.answer(result, error)

    def _wait_left(self) -> float:
        with self._lock:
            earliest = min((write.deadline for write in self._queue), default=0.0)
        return max(earliest - time.monotonic(), 0.0)

    def _take_group(self) -> list[Write]:
        """Writes from the head of the queue, up to MAX_GROUP_WEIGHT; the rest wait for the next group."""
        with self._lock:
            taken, weight = 0, 0
            while taken < len(self._queue) and (not taken or weight + self._queue[taken].weight <= MAX_GROUP_WEIGHT):
                weight += self._queue[taken].weight
                taken += 1
            group, self._queue[:taken] = self._queue[:taken], []
        return group

    def _answer_queued(self, which: Callable[[Write], bool], error: BaseException) -> None:
        """Answer the queued writes `which` picks with `error`, unapplied."""
        with self._lock:
            failed = [write for write in self._queue if which(write)]
            self._queue = [write for write in self._queue if write not in failed]
        for write in failed:
            write.answer(error=error)


def in_savepoint(work: Callable[[], T]) -> tuple[T | None, Exception | None]:
    """Run `work` in a savepoint: (its result, None), or (None, what it raised) with its writes undone.
    If the transaction itself is gone (SQLite rolls back by itself on a full disk), what `work` raised
    is raised: every write of the group fails with it."""
    execute("SAVEPOINT write")
    try:
        result = work()
    except Exception as error:
        try:
            execute("ROLLBACK TO SAVEPOINT write")
            execute("RELEASE SAVEPOINT write")
        except peewee.DatabaseError:
            raise error from None
        return None, error
    execute("RELEASE SAVEPOINT write")
    return result, None


def is_lock_timeout(error: BaseException) -> bool:
    """SQLite's "database is locked" (or the write lock's, past its wait) or PostgreSQL's "canceling
    statement due to lock timeout"."""
    text = str(error).lower()
    return isinstance(error, peewee.OperationalError) and ("locked" in text or "lock timeout" in text)


group_commit = GroupCommit()


def write_in_group(work: Callable[[], T], weight: int = 1) -> T:
    """Run `work` in a write transaction and return its result once committed: a group's (see above),
    or, in a thread inside a transaction already, that one's (as a savepoint)."""
    if database.obj.in_transaction():
        with write_transaction():
            return work()
    return group_commit.write(work, weight)
