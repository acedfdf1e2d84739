"""The real bundle: gunicorn with the project's config, two workers, real HTTP from two threads."""

from __future__ import annotations

import threading

from tests.processes import gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event

EVENTS_PER_THREAD = 60


def test_events_posted_from_two_threads_at_once_are_all_read_back(database_url):
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
    with gunicorn(database_url, env) as server:
        statuses: list[int] = []

        def post_events(thread: int) -> None:
            for n in range(EVENTS_PER_THREAD):
                todo = {"id": "1", "content": f"thread {thread} step {n}", "status": "in_progress"}
                status, _ = server.request("POST", "/api/events", event(
                    "todo.updated", {"sessionID": f"ses-{thread}-{n}", "todos": [todo]},
                    id=f"t{thread}-{n}"), AGENT)
                statuses.append(status)

        threads = [threading.Thread(target=post_events, args=(t,)) for t in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [202] * (2 * EVENTS_PER_THREAD), server.log()

        contents, cursor = [], None
        while True:
            path = "/api/todos?limit=50" + (f"&cursor={cursor}" if cursor else "")
            status, body = server.request("GET", path, headers=DASHBOARD)
            assert status == 200
            contents += [todo["content"] for todo in body["todos"]]
            if not (cursor := body["next_cursor"]):
                break
        expected = {f"thread {t} step {n}" for t in range(2) for n in range(EVENTS_PER_THREAD)}
        assert sorted(contents) == sorted(expected)

        # Sent again (a client retry), the same events are acknowledged and applied once.
        status, body = server.request("POST", "/api/events", {"events": [
            event("todo.updated", {"sessionID": "ses-0-0", "todos": []}, id="t0-0")]}, AGENT)
        assert (status, body) == (202, {"accepted": 0, "duplicates": 1, "unknown": 0})
        status, body = server.request("GET", "/api/nowhere", headers=DASHBOARD)
        assert status == 404 and body["error"]["code"] == "not_found"
