"""The dashboard page in real headless Chromium, against the real mounted app under gunicorn.

Each flow is what a person does: sign in with the token, watch an agent appear as its events arrive,
press Unblock, answer an agent's question, see a notification arrive, drag a card on the Linear board
(and see a refused move roll back), and see the connection indicator go to "Reconnecting…" while the
server is down and back to "Live" after it restarts on the same port. Linear is the in-memory stand-in
served over loopback HTTP. Screenshots of each step: test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.chromium import VIEWPORT, chromium, fresh_screenshots, screenshot, session_cookie
from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, STATES, issue_node, project_node, state_node
from tests.processes import REPO, free_port, gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event

pytestmark = pytest.mark.browser

BACKLOG, TODO, IN_PROGRESS, DONE = STATES[0], STATES[1], STATES[2], STATES[3]
EXPECT_MS = 10_000  # how long an expectation may wait for the page (it is usually milliseconds)


@pytest.fixture(scope="module")
def browser():
    fresh_screenshots()
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def linear():
    fake = FakeLinear(states=[state_node(state) for state in STATES], projects=[project_node()],
                      issues=[issue_node(f"issue-{n}", number=n, title=title, state=state, sort_order=n)
                              for n, (title, state) in enumerate([("Write the release notes", TODO),
                                                                  ("Fix the flaky login test", TODO),
                                                                  ("Ship the board", IN_PROGRESS)], start=1)],
                      api_key=LINEAR_API_KEY)
    with fake.serve() as url:
        fake.url = url
        yield fake


def server_env(tmp_path, linear=None) -> tuple[str, dict[str, str]]:
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN,
           "DASHBOARD_SECRET_KEY": "browser-tests-signing-key-0123456789", "SSE_HEARTBEAT_S": "1"}
    if linear is not None:
        env |= {"LINEAR_API_KEY": LINEAR_API_KEY, "LINEAR_API_URL": linear.url}
    return f"sqlite:///{tmp_path / 'dashboard.db'}", env


@contextlib.contextmanager
def serving_with_linear(tmp_path, linear):
    """Real gunicorn whose Linear is `linear`, its cache filled the way `make run` fills it: the real sync
    command against the stand-in."""
    database_url, env = server_env(tmp_path, linear)
    with gunicorn(database_url, env) as running:
        running.database_url = database_url
        synced = subprocess.run([sys.executable, "-m", "functions.linear_sync", "--full"], cwd=REPO,
                                env=os.environ | env | {"DATABASE_URL": database_url}, capture_output=True,
                                text=True, timeout=60)
        assert synced.returncode == 0, synced.stderr
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory, linear):
    with serving_with_linear(tmp_path_factory.mktemp("browser"), linear) as running:
        yield running


def open_page(browser, server, *, signed_in=True, viewport=VIEWPORT, url="/"):
    context = browser.new_context(viewport=viewport)
    if signed_in:
        context.add_cookies([session_cookie(server, DASHBOARD_TOKEN)])
    page = context.new_page()
    page.set_default_timeout(EXPECT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A console error is a problem too (a CSP refusal, say), except the browser's note on each non-2xx
    # answer: those are the flows under test (a wrong token, a refused move, a server that is down).
    page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
            and errors.append(message.text))
    page.goto(f"http://127.0.0.1:{server.port}{url}")
    page.errors = errors
    return page


def expect_live(page):
    from playwright.sync_api import expect

    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
    expect(page.locator("#connection")).to_have_text("Live")


def post_events(server, *events):
    status, body = server.request("POST", "/api/events", {"events": list(events)}, AGENT)
    assert status == 202, body


def test_signing_in_with_the_token_opens_the_dashboard_and_signing_out_closes_it(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, signed_in=False)
    expect(page.get_by_label("Dashboard token")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    screenshot(page, "01-sign-in")

    page.get_by_label("Dashboard token").fill("not-the-dashboard-token-at-all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not right.")

    page.get_by_label("Dashboard token").fill(DASHBOARD_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#dashboard")).to_be_visible()
    expect_live(page)
    expect(page.locator("#signin")).to_be_hidden()
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["ocd_session"]["httpOnly"] is True  # the page never sees the session itself
    screenshot(page, "02-signed-in")

    page.reload()  # the cookie keeps the session
    expect_live(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Dashboard token")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Dashboard token")).to_be_visible()  # the session is over, not just hidden
    assert page.errors == []
    page.context.close()


def test_an_agent_appears_live_when_its_events_arrive(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    expect_live(page)
    page.evaluate("window.stillTheSamePage = true")
    tree = page.locator("#agent-tree")
    expect(tree).not_to_contain_text("Release captain")

    post_events(server,
                event("agent.registered", {"id": "captain", "name": "Release captain", "type": "primary"}),
                event("agent.registered", {"id": "captain-docs", "name": "Docs writer", "type": "sub-agent",
                                           "parent_agent_id": "captain"}),
                event("agent.status", {"id": "captain", "status": "working"}, timestamp=int(time.time() * 1000)))

    captain = tree.locator('li.agent[data-agent-id="captain"]')
    expect(captain.locator(".agent-name").first).to_have_text("Release captain")
    expect(captain.locator(".agent-row").first.locator('[data-role="status"]')).to_have_text("working")
    expect(captain.locator(".heartbeat").first).to_contain_text("heartbeat just now")
    # The sub-agent sits under its primary agent.
    expect(captain.locator('ul li.agent[data-agent-id="captain-docs"] .agent-name')).to_have_text("Docs writer")
    # Its session's todos and messages come the same way.
    post_events(server,
                event("session.created", {"info": {"id": "ses-release", "title": "Release 2.0"}}, agent_id="captain"),
                event("todo.updated", {"sessionID": "ses-release", "todos": [
                    {"id": "1", "content": "Write the changelog", "status": "completed"},
                    {"id": "2", "content": "Tag v2.0.0", "status": "in_progress", "priority": "high"}]}),
                event("message.part.updated", {"part": {
                    "id": "part-1", "messageID": "msg-1", "sessionID": "ses-release", "type": "text",
                    "text": "The changelog is written."}}))
    expect(page.locator('#todo-list li[data-todo-id="ses-release:2"]')).to_contain_text("Tag v2.0.0")
    expect(page.locator("#message-list")).to_contain_text("The changelog is written.")
    expect(page.locator("#message-list")).to_contain_text("Release 2.0")
    assert page.evaluate("window.stillTheSamePage") is True  # it came over the stream, not a reload
    screenshot(page, "03-agent-appeared-live")
    assert page.errors == []
    page.context.close()


def test_a_blocked_task_is_on_top_and_unblock_frees_it(browser, server):
    from playwright.sync_api import expect

    # Without "blocked first" the urgent task in progress would lead: it outranks the blocked one.
    post_events(server,
                event("task.created", {"id": "t-stuck", "agent_id": "builder", "title": "Tag the release",
                                       "priority": "low"}),
                event("task.created", {"id": "t-busy", "agent_id": "builder", "title": "Refactor the feed",
                                       "priority": "urgent"}),
                event("task.updated", {"id": "t-busy", "status": "in_progress"}),
                event("task.updated", {"id": "t-stuck", "status": "blocked",
                                       "blocked_reason": "Which version number?"}))
    page = open_page(browser, server)
    expect_live(page)
    tasks = page.locator("#task-list > li")
    expect(tasks).to_have_count(2)
    first = tasks.first
    expect(first).to_have_attribute("data-task-id", "t-stuck")
    expect(first).to_contain_text("BLOCKED")
    expect(first).to_contain_text("Which version number?")
    screenshot(page, "04-blocked-task-on-top")

    page.get_by_role("button", name="Unblock “Tag the release”").click()
    task = page.locator('#task-list li[data-task-id="t-stuck"]')
    expect(task).to_have_attribute("data-status", "in_progress")
    expect(task.get_by_role("button", name="Unblock “Tag the release”")).to_have_count(0)
    expect(task.locator('[data-role="status"]')).to_have_text("in progress")
    expect(tasks.first).to_have_attribute("data-task-id", "t-busy")  # nothing is blocked now: urgent leads
    status, body = server.request("GET", "/api/agent/builder/tasks/t-stuck", headers=DASHBOARD)
    assert (status, body["task"]["status"]) == (200, "in_progress")
    screenshot(page, "05-task-unblocked")
    assert page.errors == []
    page.context.close()


# What the worker's activity does when an alert rule is due (shared.agents.alerts.fire_rules), run as a process
# of its own against the server's database: the page hears of it only through the feed.
FIRE_BLOCKED_ALERT = """
import sys
from shared.agents.alerts import fire_rules
from shared.clock import now
from shared.config import Settings
from shared.store.db import open_database, write_transaction
open_database(Settings.from_env())
with write_transaction():
    fire_rules("blocked", {"id": sys.argv[1], "agent_id": sys.argv[2], "priority": "high"}, now(), now(),
               title=sys.argv[3], body="builder has waited for an answer for 10 minutes")
"""


def test_a_notification_arrives_live_and_can_be_marked_read(browser, server):
    from playwright.sync_api import expect

    post_events(server, event("task.created", {"id": "t-alert", "agent_id": "builder", "title": "Sign the build",
                                               "priority": "high"}))
    page = open_page(browser, server)
    expect_live(page)
    count = page.locator("#notifications-count")
    expect(count).to_be_hidden()

    fired = subprocess.run([sys.executable, "-c", FIRE_BLOCKED_ALERT, "t-alert", "builder", "Blocked: Sign the build"],
                           cwd=REPO, env=os.environ | {"DATABASE_URL": server.database_url}, capture_output=True,
                           text=True, timeout=60)
    assert fired.returncode == 0, fired.stderr
    expect(count).to_have_text("1")  # the seed's blocked-high rule, in-app and push
    expect(page.locator("#toasts")).to_contain_text("Blocked: Sign the build")
    page.get_by_role("button", name="Notifications").click()
    panel = page.locator("#notifications")
    expect(panel).to_be_visible()
    expect(panel.locator(".notification.unread")).to_contain_text("builder has waited for an answer")
    screenshot(page, "11-notification")
    panel.get_by_role("button", name="Mark read").click()
    expect(count).to_be_hidden()
    expect(panel.locator(".notification.unread")).to_have_count(0)
    status, body = server.request("GET", "/api/notifications?unread_only=true", headers=DASHBOARD)
    assert (status, body["notifications"]) == (200, [])
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.errors == []
    page.context.close()


def cached_states(server) -> dict[str, str]:
    """Each issue's state in the dashboard's Linear cache, by issue id."""
    status, board = server.request("GET", "/api/projects/proj-1/board", headers=DASHBOARD)
    assert status == 200, board
    return {issue["id"]: issue["state_id"] for col in board["columns"] for issue in col["issues"]}


def column(page, state):
    return page.locator(f'#board-columns .column[data-state-id="{state["id"]}"]')


def test_dragging_a_card_moves_the_issue_in_linear_and_a_refused_move_rolls_back(browser, server, linear):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    expect_live(page)
    card = page.locator('.card[data-issue-id="issue-1"]')
    expect(column(page, TODO).locator(".card")).to_have_count(2)
    expect(card).to_contain_text("Write the release notes")
    screenshot(page, "06-board")

    card.drag_to(column(page, IN_PROGRESS))
    expect(column(page, IN_PROGRESS).locator('.card[data-issue-id="issue-1"]:not(.moving)')).to_be_visible()
    expect(column(page, TODO).locator(".card")).to_have_count(1)
    moved = [request for request in linear.requests if "issueUpdate(" in request["query"]]
    assert moved[-1]["variables"] == {"id": "issue-1", "stateId": IN_PROGRESS["id"]}
    assert cached_states(server)["issue-1"] == IN_PROGRESS["id"]
    screenshot(page, "07-card-moved")

    # Linear no longer knows "Done" (deleted there since the last sync): it refuses the move.
    done = next(node for node in linear.data["workflowStates"] if node["id"] == DONE["id"])
    linear.data["workflowStates"].remove(done)
    try:
        page.locator('.card[data-issue-id="issue-2"]').drag_to(column(page, DONE))
        message = page.locator("#board-message")
        expect(message).to_contain_text("ENG-2 could not move to Done, so it is back in Todo")
        expect(column(page, TODO).locator('.card[data-issue-id="issue-2"]')).to_be_visible()
        expect(column(page, DONE).locator(".card")).to_have_count(0)
        screenshot(page, "08-refused-move-rolled-back")
    finally:
        linear.data["workflowStates"].append(done)
    assert cached_states(server)["issue-2"] == TODO["id"]  # the cache was left as it was

    # Without a mouse: the card's "Move to" list moves it the same way.
    page.get_by_label("Move ENG-2 to").select_option(label="Backlog")
    expect(column(page, BACKLOG).locator('.card[data-issue-id="issue-2"]:not(.moving)')).to_be_visible()
    expect(page.locator("#board-message")).to_be_hidden()  # the last failure's message is gone
    assert cached_states(server)["issue-2"] == BACKLOG["id"]
    assert page.errors == []
    page.context.close()


# While the server is down: an agent registers (straight into the database, as a second server on it
# would), and the feed is pruned past it, as the retention job does after a week. A page resuming from
# before that is sent `event: reset`, and only by loading again can it learn of the agent.
WHILE_THE_SERVER_IS_DOWN = """
import json
import sys
from functions.events.contract import parse_events
from functions.events.ingest import ingest
from shared.config import Settings
from shared.store.db import open_database
from shared.store.feed import prune_changes
open_database(Settings.from_env())
ingest(parse_events(json.loads(sys.argv[1])))
prune_changes(-60)
"""


def test_the_indicator_shows_reconnecting_while_the_server_is_down_and_live_after_it_restarts(browser, tmp_path):
    from playwright.sync_api import expect

    database_url, env = server_env(tmp_path)
    # A stop waits for open requests, and the page's stream never ends by itself: give it one second
    # (gunicorn's own setting, from its environment) rather than the configured ten.
    env["GUNICORN_CMD_ARGS"] = "--graceful-timeout 1"
    port = free_port()
    with gunicorn(database_url, env, workers=1, port=port) as first:
        post_events(first, event("agent.registered", {"id": "before", "name": "Here before", "type": "primary"}))
        page = open_page(browser, first)
        expect_live(page)
        page.evaluate("window.stillTheSamePage = true")
        # One change over the stream, so the page has an event id to resume from.
        post_events(first, event("agent.status", {"id": "before", "status": "working"}))
        expect(page.locator('#agent-tree li[data-agent-id="before"] [data-role="status"]')).to_have_text("working")
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(timeout=15)
        indicator = page.locator("#connection")
        expect(indicator).to_have_attribute("data-state", "reconnecting")
        expect(indicator).to_have_text("Reconnecting…")
        screenshot(page, "09-reconnecting")

    meanwhile = {"events": [event("agent.registered", {"id": "while-down", "name": "Came while down",
                                                       "type": "primary"})]}
    done = subprocess.run([sys.executable, "-c", WHILE_THE_SERVER_IS_DOWN, json.dumps(meanwhile)], cwd=REPO,
                          env=os.environ | {"DATABASE_URL": database_url}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    with gunicorn(database_url, env, workers=1, port=port) as second:
        expect_live(page)
        expect(page.locator('#agent-tree li[data-agent-id="while-down"]')).to_contain_text("Came while down")
        # The stream goes on after the reset: a change made now reaches the page too.
        post_events(second, event("agent.registered", {"id": "after-restart", "name": "Back again",
                                                       "type": "primary"}))
        expect(page.locator('#agent-tree li[data-agent-id="after-restart"]')).to_contain_text("Back again")
        assert page.evaluate("window.stillTheSamePage") is True  # state reloaded, not the page
        screenshot(page, "10-live-again")
        assert page.errors == []
        page.context.close()


def test_a_question_is_answered_from_the_page_with_the_control_its_type_needs(browser, server):
    from playwright.sync_api import expect

    post_events(server,
                event("task.created", {"id": "t-q-text", "agent_id": "asker", "title": "Configure staging"}),
                event("task.created", {"id": "t-q-perm", "agent_id": "asker", "title": "Clean the build"}),
                event("task.created", {"id": "t-q-pick", "agent_id": "asker", "title": "Tag it"}),
                event("task.updated", {"id": "t-q-text", "status": "blocked",
                                       "question": {"type": "question", "text": "Which database URL?"}}),
                event("task.updated", {"id": "t-q-perm", "status": "blocked",
                                       "question": {"type": "permission", "text": "May I delete build/?"}}))
    page = open_page(browser, server)
    expect_live(page)
    text = page.locator('#task-list li[data-task-id="t-q-text"]')
    perm = page.locator('#task-list li[data-task-id="t-q-perm"]')
    pick = page.locator('#task-list li[data-task-id="t-q-pick"]')
    expect(perm.get_by_role("group", name="Allow or deny: May I delete build/?")).to_be_visible()
    expect(perm.get_by_role("button", name="Unblock “Clean the build”")).to_have_count(0)  # the answer unblocks
    # A question asked while the page is open arrives over the stream, with its controls.
    post_events(server, event("task.updated", {"id": "t-q-pick", "status": "blocked", "question": {
        "type": "choice", "text": "Which tag?", "choices": ["v1.2.0", "v1.3.0-rc1"]}}))
    expect(pick.get_by_role("group", name="Choose: Which tag?")).to_be_visible()
    text.get_by_role("textbox", name="Answer to: Which database URL?").fill("postgres://staging.internal/app")
    screenshot(page, "20-questions-asked")

    pick.get_by_role("button", name="v1.3.0-rc1").click()
    expect(pick).to_have_attribute("data-status", "in_progress")
    expect(pick).to_contain_text("Which tag? — “v1.3.0-rc1”, answered by dashboard")
    # The half-written answer survived the redraws the other answer caused.
    expect(text.get_by_role("textbox", name="Answer to: Which database URL?")).to_have_value(
        "postgres://staging.internal/app")
    perm.get_by_role("button", name="Deny").click()
    expect(perm).to_contain_text("May I delete build/? — Deny, answered by dashboard")
    text.get_by_role("button", name="Send answer").click()
    expect(text).to_have_attribute("data-status", "in_progress")
    expect(text).to_contain_text("— “postgres://staging.internal/app”, answered by dashboard")
    screenshot(page, "21-questions-answered")

    status, body = server.request("GET", "/api/agent/asker/inbox", headers=AGENT)
    assert status == 200
    assert [(entry["task_id"], entry["answer"], entry["answered_by"]) for entry in body["answers"]] == [
        ("t-q-pick", {"choice": "v1.3.0-rc1"}, "dashboard"), ("t-q-perm", {"permission": False}, "dashboard"),
        ("t-q-text", {"response": "postgres://staging.internal/app"}, "dashboard")]
    assert page.errors == []
    page.context.close()
