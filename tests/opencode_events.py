"""opencode's bus events as the plugin forwards them, shaped exactly as opencode's published types say
(the `types.gen.d.ts` of @opencode-ai/sdk 1.19.3, and its v2 types): `data` is the event's `properties`."""

from __future__ import annotations

import time
from typing import Any

from tests.support import event

AGENT_ID = "opencode-shop"


def ms() -> int:
    return int(time.time() * 1000)


def oc(type: str, properties: dict[str, Any], agent_id: str = AGENT_ID) -> dict[str, Any]:
    """One opencode event as the plugin sends it (timestamped now)."""
    return event(type, properties, agent_id=agent_id, timestamp=ms())


def session(session_id: str, title: str = "New session - 2026-12-02T10:00:00.000Z", parent: str | None = None,
            kind: str = "session.created") -> dict[str, Any]:
    info = {"id": session_id, "projectID": "prj_shop", "directory": "/home/me/shop", "title": title,
            "version": "1.18.33", "time": {"created": ms(), "updated": ms()}}
    if parent:
        info["parentID"] = parent
    return oc(kind, {"info": info})


def prompt(session_id: str, message_id: str, text: str) -> list[dict[str, Any]]:
    """The person's prompt: the user message, then its text part."""
    return [oc("message.updated", {"info": {
                "id": message_id, "sessionID": session_id, "role": "user", "time": {"created": ms()},
                "agent": "build", "model": {"providerID": "fake", "modelID": "scripted"}}}),
            oc("message.part.updated", {"part": {
                "id": f"prt_{message_id}", "sessionID": session_id, "messageID": message_id, "type": "text",
                "text": text}})]


def status(session_id: str, type: str) -> dict[str, Any]:
    return oc("session.status", {"sessionID": session_id, "status": {"type": type}})


def idle(session_id: str) -> list[dict[str, Any]]:
    """How opencode ends a turn: the status goes idle, then session.idle."""
    return [status(session_id, "idle"), oc("session.idle", {"sessionID": session_id})]


def permission_asked(session_id: str, request_id: str, command: str = "rm -rf build") -> dict[str, Any]:
    return oc("permission.asked", {
        "id": request_id, "sessionID": session_id, "permission": "bash", "patterns": [command],
        "metadata": {"command": command}, "always": [command.split()[0] + " *"],
        "tool": {"messageID": "msg_assistant", "callID": f"call_{request_id}"}})


def permission_replied(session_id: str, request_id: str, reply: str = "once") -> dict[str, Any]:
    return oc("permission.replied", {"sessionID": session_id, "requestID": request_id, "reply": reply})


def question_asked(session_id: str, request_id: str, *questions: dict[str, Any]) -> dict[str, Any]:
    return oc("question.asked", {"id": request_id, "sessionID": session_id, "questions": list(questions),
                                 "tool": {"messageID": "msg_assistant", "callID": f"call_{request_id}"}})


def question_info(question: str, *labels: str, multiple: bool = False) -> dict[str, Any]:
    return {"question": question, "header": question[:30],
            "options": [{"label": label, "description": f"use {label}"} for label in labels],
            "multiple": multiple}


def question_replied(session_id: str, request_id: str, *answers: list[str]) -> dict[str, Any]:
    return oc("question.replied", {"sessionID": session_id, "requestID": request_id, "answers": list(answers)})


def question_rejected(session_id: str, request_id: str) -> dict[str, Any]:
    return oc("question.rejected", {"sessionID": session_id, "requestID": request_id})
