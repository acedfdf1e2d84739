"""A minimal Server-Sent Events reader for tests: real HTTP, frames parsed as the spec says."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Frame:
    event: str | None = None
    id: int | None = None
    data: dict | None = None
    retry: int | None = None
    comment: str | None = None


def parse_frames(text: str) -> list[Frame]:
    """Parse a whole text/event-stream body (from the in-process client)."""
    return [frame for block in text.split("\n\n") if block for frame in [_parse_block(block.split("\n"))]]


def _parse_block(lines: list[str]) -> Frame:
    frame = Frame()
    for line in lines:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            frame.comment = value
        elif name == "event":
            frame.event = value
        elif name == "id":
            frame.id = int(value)
        elif name == "data":
            frame.data = json.loads(value)
        elif name == "retry":
            frame.retry = int(value)
    return frame


class Stream:
    """An open GET /api/stream over a real socket; read frames as they arrive."""

    def __init__(self, port: int, path: str = "/api/stream", headers: dict | None = None, timeout: float = 10,
                 receive_buffer: int | None = None):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        if receive_buffer is not None:  # a small one makes a reader that stops reading fall behind sooner
            self.connection.sock = socket.socket()
            self.connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self.connection.sock.settimeout(timeout)
            self.connection.sock.connect(("127.0.0.1", port))
        self.connection.request("GET", path, headers=headers or {})
        self.response = self.connection.getresponse()
        self.status = self.response.status

    def frames(self) -> Iterator[Frame]:
        lines: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\n")
            if line:
                lines.append(line)
            elif lines:
                yield _parse_block(lines)
                lines = []

    def subscribed(self) -> Stream:
        """Read the retry hint, the first frame: the server sends it once the stream is subscribed to the
        feed, so every change made from now on reaches this stream (wait for it, not for time)."""
        first = next(self.frames())
        assert first.retry is not None, first
        return self

    def changes(self) -> Iterator[Frame]:
        """Only the frames that carry a change (skip heartbeats and the retry hint)."""
        return (frame for frame in self.frames() if frame.id is not None)

    def close(self) -> None:
        self.connection.close()
