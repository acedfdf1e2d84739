"""What one change costs to fan out to N streams in one process, thread per stream against one writer.

Not the server: the two delivery models alone, on local socket pairs, so that their difference is not
lost in the noise of a loaded machine.
  - threads: what functions/sse did under gunicorn's gthread worker until its streams were handed over
    (and still does where they cannot be): a thread per stream, blocked on its queue; the poller puts
    the change in every queue, and each thread wakes and writes the frame;
  - one writer: one thread writes the frame to every stream's (non-blocking) socket in turn: what the
    feed poller does now with every stream handed over to it (functions/sse/hub.py, StreamWriter).
Socket pairs wake no other process: over TCP to readers in other processes, each write also pays the
kernel for the reader's wake-up (bench/stream.py measures that).
It prints, per model, the wall time from offering a change until every stream has written it (p50 /
p99 over `--changes`), and the CPU per change and stream.

Run:  .venv/bin/python bench/fanout_models.py [--streams 500] [--changes 200]
"""

from __future__ import annotations

import argparse
import queue
import socket
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.servers import percentile  # noqa: E402

FRAME = b'id: 1\nevent: file\ndata: {"id":1,"topic":"file","action":"created","payload":{"event_id":"bench-1"}}\n\n'


def drain(readers: list[socket.socket]) -> None:
    for reader in readers:
        try:
            while reader.recv(1 << 16):
                pass
        except BlockingIOError:
            pass


def socket_pairs(count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    pairs = [socket.socketpair() for _ in range(count)]
    for _, reader in pairs:
        reader.setblocking(False)
    return [writer for writer, _ in pairs], [reader for _, reader in pairs]


def thread_per_stream(streams: int, changes: int) -> tuple[list[float], float]:
    writers, readers = socket_pairs(streams)
    queues = [queue.Queue() for _ in writers]
    written = threading.Semaphore(0)

    def stream(own: queue.Queue, connection: socket.socket) -> None:
        while (frame := own.get()) is not None:
            connection.sendall(frame)
            written.release()

    threads = [threading.Thread(target=stream, args=pair, daemon=True) for pair in zip(queues, writers, strict=True)]
    for thread in threads:
        thread.start()
    walls, cpu = [], time.process_time()
    for _ in range(changes):
        started = time.perf_counter()
        for own in queues:
            own.put(FRAME)
        for _ in queues:
            written.acquire()
        walls.append(time.perf_counter() - started)
        drain(readers)
    cpu = time.process_time() - cpu
    for own in queues:
        own.put(None)
    return walls, cpu


def one_writer(streams: int, changes: int) -> tuple[list[float], float]:
    writers, readers = socket_pairs(streams)
    for writer in writers:
        writer.setblocking(False)
    walls, cpu = [], time.process_time()
    for _ in range(changes):
        started = time.perf_counter()
        for writer in writers:
            writer.send(FRAME)  # a frame fits any socket buffer that is drained
        walls.append(time.perf_counter() - started)
        drain(readers)
    return walls, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args(argv)
    for name, model in (("thread per stream", thread_per_stream), ("one writer", one_writer)):
        walls, cpu = model(args.streams, args.changes)
        print(f"{name:<18} {args.streams} streams: a change written to all in p50 "
              f"{percentile(walls, 0.5) * 1e3:.2f} ms, p99 {percentile(walls, 0.99) * 1e3:.2f} ms; "
              f"CPU {cpu / (args.changes * args.streams) * 1e6:.1f} µs per change and stream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
