"""A language model stand-in on loopback: an OpenAI-compatible `POST /v1/chat/completions` that plays one
scripted opencode session, streamed exactly as OpenAI streams (what opencode's `@ai-sdk/openai-compatible`
provider reads).

opencode asks it three kinds of things, told apart by the conversation they carry, never by counting
requests (opencode also asks for a session title, with no tools, whenever it likes):
- a **title** (no tools offered): a short text;
- the **sub-agent**'s turn (its prompt, sent by opencode's task tool, carries `SUBAGENT_MARK`): a short text;
- the **main session**: each reply is the next step of `MAIN_SCRIPT` after the tool calls already answered
  since the person's last message — a todo list written, a script written, a shell command (which needs
  permission) that runs it, a
  question to the person (when opencode offers its question tool), a sub-agent, the todo list updated,
  and a closing text. A person's message carrying `FAIL_MARK` is answered with HTTP 400, which opencode
  reports as `session.error`.

Every reply carries `usage` (`REPLY_USAGE`), so opencode can count tokens and cost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUBAGENT_MARK = "[sub-agent task]"
FAIL_MARK = "[fail this call]"
SCRIPT_FILE = "script.sh"  # in the project folder
SCRIPT_TEXT = "#!/bin/sh\necho scripted-bash-ran\n"
BASH_COMMAND = f"sh {SCRIPT_FILE}"
TITLE = "Scripted session"
FINAL_TEXT = "All done: the script ran and the sub-agent checked it."
SUBAGENT_TEXT = "Sub-agent report: the script's output looks right."
REPLY_USAGE = {"prompt_tokens": 1200, "completion_tokens": 40, "total_tokens": 1240}

FIRST_TODOS = [
    {"content": "Write the script", "status": "in_progress", "priority": "high"},
    {"content": "Run the script", "status": "pending", "priority": "medium"},
]
FINAL_TODOS = [
    {"content": "Write the script", "status": "completed", "priority": "high"},
    {"content": "Run the script", "status": "completed", "priority": "medium"},
]
QUESTION = {"question": "Which shell should the script target?", "header": "Shell",
            "options": [{"label": "bash", "description": "GNU bash"}, {"label": "sh", "description": "POSIX sh"}]}
SUBAGENT_TASK = {"description": "Check the script", "prompt": f"{SUBAGENT_MARK} Check the script's output.",
                 "subagent_type": "general"}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Failure:
    status: int
    message: str


# The main session's steps, in order; a step whose tool opencode does not offer is skipped.
MAIN_SCRIPT: list[ToolCall] = [
    ToolCall("todowrite", {"todos": FIRST_TODOS}),
    ToolCall("write", {"filePath": SCRIPT_FILE, "content": SCRIPT_TEXT}),
    ToolCall("bash", {"command": BASH_COMMAND, "description": "Run the script"}),
    ToolCall("question", {"questions": [QUESTION]}),
    ToolCall("task", SUBAGENT_TASK),
    ToolCall("todowrite", {"todos": FINAL_TODOS}),
]


def reply_for(body: dict[str, Any]) -> ToolCall | Text | Failure:
    """The reply to one chat completion request, chosen by the conversation it carries."""
    messages = body.get("messages") or []
    offered = {tool["function"]["name"] for tool in body.get("tools") or [] if tool.get("type") == "function"}
    if not offered:
        return Text(TITLE)
    last_user = max((i for i, message in enumerate(messages) if message.get("role") == "user"), default=-1)
    prompt = _text(messages[last_user]) if last_user >= 0 else ""
    if FAIL_MARK in prompt:
        return Failure(400, "The scripted model refuses this request, as the script says.")
    if any(SUBAGENT_MARK in _text(message) for message in messages if message.get("role") == "user"):
        return Text(SUBAGENT_TEXT)
    called = [call["function"]["name"] for message in messages[last_user + 1:]
              for call in message.get("tool_calls") or []]
    steps = [step for step in MAIN_SCRIPT if step.name in offered]
    return steps[len(called)] if len(called) < len(steps) else Text(FINAL_TEXT)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def stream_chunks(reply: ToolCall | Text, call_id: str) -> Iterator[dict[str, Any]]:
    """The reply as OpenAI's stream chunks: the content (or the tool call, its arguments in fragments),
    then the finish with `usage` in the same last chunk."""
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> dict[str, Any]:
        body = {"id": f"chatcmpl-{call_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": "scripted", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            body["usage"] = usage
        return body

    if isinstance(reply, Text):
        yield chunk({"role": "assistant", "content": ""})
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            yield chunk({"content": word if i == len(words) - 1 else word + " "})
        yield chunk({}, "stop", REPLY_USAGE)
        return
    arguments = json.dumps(reply.arguments)
    yield chunk({"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": call_id, "type": "function", "function": {"name": reply.name, "arguments": ""}}]})
    middle = len(arguments) // 2
    for fragment in (arguments[:middle], arguments[middle:]):
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
    yield chunk({}, "tool_calls", REPLY_USAGE)


@dataclass
class ScriptedModel:
    """The stand-in, serving on a free loopback port from `start()` until `close()`."""

    requests: list[dict[str, Any]] = field(default_factory=list)  # every request body, in arrival order
    replies: list[ToolCall | Text | Failure] = field(default_factory=list)  # what each was answered
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> ScriptedModel:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                reply = reply_for(body)
                with model.lock:
                    model.requests.append(body)
                    model.replies.append(reply)
                    number = len(model.requests)
                if isinstance(reply, Failure):
                    self._json(reply.status, {"error": {"message": reply.message, "type": "invalid_request_error",
                                                        "param": None, "code": None}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in stream_chunks(reply, f"call_{number}"):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _json(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # the test prints what matters itself
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="scripted-model", daemon=True).start()
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def tools_offered(self) -> set[str]:
        """The tools opencode offered in its main session's requests."""
        with self.lock:
            return {tool["function"]["name"] for body in self.requests for tool in body.get("tools") or []}
