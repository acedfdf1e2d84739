"""The page everywhere, in real headless Chromium against real gunicorn: on a phone (390x844) and on a
laptop (1440x900). What a person needs comes first and fits the screen; times say when, not only how long
ago. Screenshots: test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.chromium import SCREENSHOTS, screenshot
from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, STATES, issue_node, project_node, state_node
from tests.processes import REPO, gunicorn
from tests.support import event
from tests.test_browser import EXPECT_MS, expect_live, open_page, post_events, server_env

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}
TOUCH_TARGET_PX = 44


@pytest.fixture(scope="module")
def linear():
    issues = [issue_node(f"issue-{n}", number=n, title=title, state=STATES[n % 3], sort_order=n, labels=("ui",))
              for n, title in enumerate(["Make the page fit a phone", "A very long title that goes on and on and "
                                         "on until it has to wrap somewhere sensible", "Ship"], start=1)]
    fake = FakeLinear(states=[state_node(state) for state in STATES], projects=[project_node(progress=0.4)],
                      issues=issues, api_key=LINEAR_API_KEY)
    with fake.serve() as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory, linear):
    database_url, env = server_env(tmp_path_factory.mktemp("page"), linear)
    with gunicorn(database_url, env) as running:
        running.database_url = database_url
        synced = subprocess.run([sys.executable, "-m", "functions.linear_sync", "--full"], cwd=REPO,
                                env=os.environ | env | {"DATABASE_URL": database_url}, capture_output=True,
                                text=True, timeout=60)
        assert synced.returncode == 0, synced.stderr
        # A primary agent with a crowd of sub-agents (the tree is long), and one task waiting for a person.
        post_events(running,
                    event("agent.registered", {"id": "lead", "name": "Release lead", "type": "primary"}),
                    *[event("agent.registered", {"id": f"helper-{n}", "name": f"Helper number {n}",
                                                 "type": "sub-agent", "parent_agent_id": "lead"}) for n in range(12)],
                    event("agent.status", {"id": "lead", "status": "working"}),
                    event("task.created", {"id": "t-wait", "agent_id": "lead", "title": "Pick the version"}),
                    event("task.created", {"id": "t-busy", "agent_id": "lead", "title": "Write the notes",
                                           "priority": "urgent"}),
                    event("task.updated", {"id": "t-busy", "status": "in_progress"}),
                    event("task.updated", {"id": "t-wait", "status": "blocked", "question": {
                        "type": "choice", "text": "Which version?", "choices": ["2.0.0", "2.0.0-rc1"]}}),
                    event("session.created", {"info": {"id": "ses-1", "title": "Release 2.0"}}, agent_id="lead"),
                    event("message.part.updated", {"part": {
                        "id": "part-1", "messageID": "msg-1", "sessionID": "ses-1", "type": "text",
                        "text": "A-very-long-unbroken-line-" * 20}}))
        yield running


def open_at(browser, server, viewport, url="/"):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_MS)  # a loaded machine may take more than the default 5 s
    return open_page(browser, server, viewport=viewport, url=url)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def small_touch_targets(page) -> list[str]:
    """The visible controls smaller than a finger (44 px) either way, described."""
    return page.evaluate("""(least) => [...document.querySelectorAll(
        'button, select, input, textarea, summary, .sections a')]
      .filter((element) => element.checkVisibility() && element.getClientRects().length)
      .map((element) => [element, element.getBoundingClientRect()])
      .filter(([, box]) => box.height < least || box.width < least)
      .map(([element, box]) => `${element.tagName} "${(element.textContent || element.getAttribute('aria-label')
        || '').trim().slice(0, 30)}" ${Math.round(box.width)}x${Math.round(box.height)}`)""", TOUCH_TARGET_PX)


def screen(page, name: str) -> None:
    """What the screen shows (a long transcript's full page is slow to capture)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), timeout=60_000)


def top(page, selector) -> float:
    return page.locator(selector).first.bounding_box()["y"]


def test_on_a_phone_the_page_fits_puts_the_blocked_task_first_and_every_panel_is_a_tap_away(browser, server):
    from playwright.sync_api import expect

    page = open_at(browser, server, PHONE)
    expect_live(page)
    blocked = page.locator('#task-list li[data-task-id="t-wait"]')
    expect(blocked.get_by_role("group", name="Choose: Which version?")).to_be_visible()
    expect(page.locator("#board-columns .card")).to_have_count(3)
    expect(page.locator("#message-list")).to_contain_text("A-very-long-unbroken-line")
    screenshot(page, "30-phone")

    assert no_horizontal_scroll(page), page.evaluate("document.documentElement.scrollWidth")
    sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    assert sign_out["x"] + sign_out["width"] <= PHONE["width"]  # on the screen, not past its edge
    # What needs the person comes first: the blocked task and its question, before the agent tree.
    assert top(page, '#task-list li[data-task-id="t-wait"]') < top(page, "#agents")
    assert top(page, "#tasks") < top(page, "#agents") < top(page, "#board")
    assert small_touch_targets(page) == []

    # The tab bar reaches every panel; it counts the task waiting.
    tabs = page.get_by_role("navigation", name="Sections")
    expect(tabs).to_be_visible()
    expect(tabs.get_by_role("link", name=re.compile("Needs you"))).to_contain_text("1")
    tabs.get_by_role("link", name="Board").click()
    expect(page.locator("#board-title")).to_be_in_viewport()
    screenshot(page, "31-phone-board")
    tabs.get_by_role("link", name="Agents").click()
    expect(page.locator("#agents-title")).to_be_in_viewport()

    # Times show when, without a hover: the absolute time is on the screen beside "… ago".
    heartbeat = page.locator('li.agent[data-agent-id="lead"] .heartbeat time').first
    expect(heartbeat.locator(".absolute")).to_be_visible()
    expect(heartbeat).to_have_text(re.compile(r"heartbeat .* \(.*\d{1,2}:\d{2}.*\)"))

    # The notifications panel fits too.
    page.get_by_role("button", name="Notifications").click()
    expect(page.locator("#notifications")).to_be_visible()
    panel = page.locator("#notifications").bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= PHONE["width"]
    assert no_horizontal_scroll(page)
    assert page.errors == []
    page.context.close()


def test_on_a_laptop_the_panels_sit_side_by_side_with_no_tab_bar(browser, server):
    from playwright.sync_api import expect

    page = open_at(browser, server, LAPTOP)
    expect_live(page)
    expect(page.locator('#task-list li[data-task-id="t-wait"]')).to_be_visible()
    expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()
    expect(page.locator(".topbar .brand")).to_be_visible()
    assert top(page, "#agents") == top(page, "#tasks")  # one row of panels
    assert no_horizontal_scroll(page)
    expect(page.locator('#task-list li[data-task-id="t-wait"] time .absolute')).to_be_visible()
    screenshot(page, "32-laptop")
    assert page.errors == []
    page.context.close()
