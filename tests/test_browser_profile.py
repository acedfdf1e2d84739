"""An agent's profile and notifications a person can act on, in real headless Chromium against real
gunicorn: clicking an agent opens its profile (family, status, soul_md rendered safely, skills, tasks,
sessions, cost); a notification names its agent and task and opens it, settles when its task is
answered, and all can be marked read. Screenshots: test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.processes import REPO, gunicorn
from tests.support import DASHBOARD, event
from tests.test_browser import FIRE_BLOCKED_ALERT, expect_live, post_events, server_env
from tests.test_browser_page import LAPTOP, PHONE, no_horizontal_scroll, open_at, screen

pytestmark = pytest.mark.browser

SOUL = """# Who I am

I lead **releases**. I never skip the changelog.

- careful
- quick

<script>window.pwned = 'soul'</script>
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database_url, env = server_env(tmp_path_factory.mktemp("profile"))
    with gunicorn(database_url, env) as running:
        running.database_url = database_url
        post_events(running,
                    event("agent.registered", {"id": "lead", "name": "Lead engineer", "type": "primary",
                                               "soul_md": SOUL, "skills": ["git", {"name": "deploy",
                                                                                   "description": "ships"}]}),
                    event("agent.registered", {"id": "lead-docs", "name": "Docs helper", "type": "sub-agent",
                                               "parent_agent_id": "lead"}),
                    event("agent.status", {"id": "lead", "status": "working"}),
                    event("task.created", {"id": "t-done", "agent_id": "lead", "title": "Cut the branch"}),
                    event("task.updated", {"id": "t-done", "status": "completed"}),
                    event("task.created", {"id": "t-now", "agent_id": "lead", "title": "Write the notes"}),
                    event("task.updated", {"id": "t-now", "status": "in_progress"}),
                    event("session.created", {"info": {"id": "ses-lead", "title": "Release day"}}, agent_id="lead"),
                    event("message.updated", {"info": {"id": "m-cost", "sessionID": "ses-lead", "role": "assistant",
                                                       "cost": 0.42, "tokens": {"input": 100, "output": 50},
                                                       "modelID": "claude-test", "time": {"created": 1764670000000}}},
                          agent_id="lead"))
        yield running


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_clicking_an_agent_opens_its_profile(browser, server, viewport):
    from playwright.sync_api import expect

    page = open_at(browser, server, viewport)
    expect_live(page)
    page.get_by_role("link", name="Lead engineer: profile").click()
    expect(page).to_have_url(re.compile(r"/agents/lead$"))
    profile = page.locator("#view .profile")
    expect(profile.get_by_role("heading", name="Lead engineer")).to_be_visible()
    expect(profile.locator('[data-role="status"]')).to_have_text("working")
    expect(profile.locator(".heartbeat time .absolute")).to_be_visible()
    soul = profile.locator("section.profile-block", has_text="Soul")
    expect(soul.get_by_role("heading", name="Who I am")).to_be_visible()
    expect(soul.locator("strong")).to_have_text("releases")
    expect(soul).to_contain_text("<script>window.pwned = 'soul'</script>")  # text, not a script
    assert page.evaluate("window.pwned ?? null") is None
    assert page.locator("#view script").count() == 0
    expect(profile.locator(".skills li")).to_have_text(["git", "deploy"])
    expect(profile.locator("section.profile-block", has_text="Family").get_by_role("link", name="Docs helper"))\
        .to_be_visible()
    expect(profile.locator("section.profile-block", has_text="Current task")).to_contain_text("Write the notes")
    expect(profile.locator(".profile-task")).to_have_count(3)  # the current one, then the history of two
    expect(profile.locator("section.profile-block", has_text="Cost")).to_contain_text("$0.42")
    assert no_horizontal_scroll(page)
    screen(page, "50-profile-" + ("laptop" if viewport == LAPTOP else "phone"))

    # Its sessions open their transcripts; a sub-agent's link opens the sub-agent's profile.
    profile.get_by_role("link", name="Release day").click()
    expect(page.locator("#view").get_by_role("heading", name="Release day")).to_be_visible()
    page.go_back()
    profile.get_by_role("link", name="Docs helper").click()
    expect(page.locator("#view .profile").get_by_role("heading", name="Docs helper")).to_be_visible()
    expect(page.locator("#view .profile")).to_contain_text("Parent: Lead engineer")
    assert page.errors == []
    page.context.close()


def fire(server, task_id: str, title: str) -> None:
    fired = subprocess.run([sys.executable, "-c", FIRE_BLOCKED_ALERT, task_id, "lead", title], cwd=REPO,
                           env=os.environ | {"DATABASE_URL": server.database_url}, capture_output=True, text=True,
                           timeout=60)
    assert fired.returncode == 0, fired.stderr


@pytest.mark.parametrize("viewport", [PHONE], ids=["phone"])
def test_a_notification_opens_what_it_is_about_settles_when_answered_and_all_can_be_read(browser, server, viewport):
    from playwright.sync_api import expect

    post_events(server,
                *[event("task.created", {"id": task_id, "agent_id": "lead", "title": title, "priority": "high"})
                  for task_id, title in (("t-ask", "Pick the version"), ("t-other", "Sign the tag"),
                                         ("t-third", "Post the news"))],
                event("task.updated", {"id": "t-ask", "status": "blocked", "question": {
                    "type": "choice", "text": "Which version?", "choices": ["2.0.0", "2.0.0-rc1"]}}),
                event("task.updated", {"id": "t-other", "status": "blocked", "blocked_reason": "needs a key"}))
    page = open_at(browser, server, viewport)
    expect_live(page)
    fire(server, "t-ask", "Blocked: Pick the version")
    fire(server, "t-other", "Blocked: Sign the tag")
    count = page.locator("#notifications-count")
    expect(count).to_have_text("2")
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    panel = page.locator("#notifications")
    asked = panel.locator(".notification", has_text="Blocked: Pick the version")
    expect(asked.get_by_role("link", name="Open Lead engineer · Pick the version")).to_be_visible()
    screen(page, "51-notifications-phone")

    # Answering the task settles its notification (the feed says so; nobody marks it read by hand).
    page.keyboard.press("Escape")
    page.locator('#task-list li[data-task-id="t-ask"]').get_by_role("button", name="2.0.0-rc1").click()
    expect(count).to_have_text("1")
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    expect(asked).not_to_have_class(re.compile("unread"))

    # A notification opens what it is about: the task, picked out where it can be acted on.
    panel.get_by_role("link", name="Open Lead engineer · Sign the tag").click()
    expect(page).to_have_url(re.compile(r"/agents/lead\?task=t-other$"))
    expect(panel).to_be_hidden()
    task = page.locator('#task-list li[data-task-id="t-other"]')
    expect(task).to_have_class(re.compile("selected"))
    expect(task).to_be_in_viewport()
    expect(count).to_be_hidden()

    # Mark all read.
    fire(server, "t-third", "Blocked: Post the news")
    expect(count).to_have_text("1")
    page.get_by_role("button", name=re.compile("^Notifications")).click()
    panel.get_by_role("button", name="Mark all read").click()
    expect(count).to_be_hidden()
    expect(panel.get_by_role("button", name="Mark all read")).to_be_hidden()
    status, body = server.request("GET", "/api/notifications?unread_only=true", headers=DASHBOARD)
    assert (status, body["notifications"]) == (200, [])
    assert no_horizontal_scroll(page)
    assert page.errors == []
    page.context.close()
