"""Linear's details on the page, in real headless Chromium against real gunicorn and the Linear stand-in:
the board opens on the project that moved last, its header shows status, progress and the production URL
(editable), cards show estimate, labels, assignee and the agent working on them, and a Linear comment
reaches the feed without a reload."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.chromium import screenshot
from tests.fake_linear import FakeLinear
from tests.linear_support import LINEAR_API_KEY, STATES, issue_node, project_node, state_node
from tests.processes import REPO
from tests.support import DASHBOARD, event
from tests.test_browser import EXPECT_MS, expect_live, open_page, post_events, serving_with_linear

pytestmark = pytest.mark.browser

# A one-pixel picture stands in for Linear's avatar (the page must not reach out of this machine).
AVATAR = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="

APPLY_COMMENT = """
from shared.config import Settings
from shared.linear import cache
from shared.store.db import open_database, write_transaction
from tests.linear_support import comment_data
open_database(Settings.from_env())
with write_transaction():
    cache.apply_comment(comment_data("comment-live", "Deployed to staging, please check"))
"""


@pytest.fixture(scope="module")
def linear():
    busy = issue_node("issue-1", number=1, title="Ship the cycle view", state=STATES[2], project_id="proj-busy",
                      project_name="Zeta", updated_at="2026-11-30T10:00:00.000Z", labels=("feature", "ui"))
    busy["assignee"]["avatarUrl"] = AVATAR
    quiet = issue_node("issue-2", number=2, title="Old chore", project_id="proj-quiet", project_name="Alpha",
                       updated_at="2026-11-01T10:00:00.000Z")
    fake = FakeLinear(states=[state_node(state) for state in STATES],
                      projects=[project_node("proj-quiet", "Alpha", updated_at="2026-11-02T10:00:00.000Z"),
                                project_node("proj-busy", "Zeta", progress=0.6, updated_at="2026-11-03T10:00:00.000Z")],
                      issues=[busy, quiet], api_key=LINEAR_API_KEY)
    with fake.serve() as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory, linear):
    with serving_with_linear(tmp_path_factory.mktemp("browser-linear"), linear) as running:
        yield running


def test_the_board_opens_on_the_project_that_moved_last_with_its_header_and_rich_cards(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    page.evaluate("localStorage.removeItem('ocd.project')")
    page.reload()
    expect_live(page)
    # Alpha comes first by name; Zeta's issue moved last, so Zeta's board is the one shown.
    expect(page.locator("#project-select")).to_have_value("proj-busy")
    header = page.locator("#project-header")
    expect(header).to_contain_text("Started")
    expect(header).to_contain_text("60%")
    expect(header).to_contain_text("No production URL")

    card = page.locator('.card[data-issue-id="issue-1"]')
    expect(card).to_contain_text("3 pts")
    expect(card.locator(".label")).to_have_text(["feature", "ui"])
    expect(card.locator(".assignee")).to_contain_text("Ada Lovelace")
    expect(card.locator(".avatar img")).to_have_count(1, timeout=EXPECT_MS)  # the picture replaced the initials

    # An agent takes the issue on: its card says so, live.
    post_events(server, event("agent.registered", {"id": "builder", "name": "Builder", "type": "primary"},
                              agent_id="builder"),
                event("task.created", {"id": "t-cycle", "agent_id": "builder", "title": "Ship the cycle view",
                                       "linear_issue_id": "issue-1"}, agent_id="builder"))
    expect(card.locator(".card-agent")).to_contain_text("Builder")
    screenshot(page, "linear-01-board-details")
    assert page.errors == []
    page.context.close()


def test_the_production_url_is_edited_on_the_board_header(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    expect_live(page)
    header = page.locator("#project-header")
    header.get_by_role("button", name="Edit").click()
    header.get_by_role("textbox", name="Production URL").fill("https://zeta.example.com")
    header.get_by_role("button", name="Save").click()
    expect(header.get_by_role("link", name="Production")).to_have_attribute("href", "https://zeta.example.com")
    status, body = server.request("GET", "/api/projects/proj-busy", headers=DASHBOARD)
    assert (status, body["project"]["prod_url"]) == (200, "https://zeta.example.com")

    header.get_by_role("button", name="Edit").click()
    header.get_by_role("textbox", name="Production URL").fill("javascript:alert(1)")
    header.get_by_role("button", name="Save").click()
    expect(page.locator("#toasts")).to_contain_text("The production URL was not saved")
    assert server.request("GET", "/api/projects/proj-busy", headers=DASHBOARD)[1]["project"]["prod_url"] \
        == "https://zeta.example.com"
    page.context.close()


def test_a_linear_comment_reaches_the_feed_without_a_reload(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    expect_live(page)
    written = subprocess.run([sys.executable, "-c", APPLY_COMMENT], cwd=REPO,
                             env=os.environ | {"DATABASE_URL": server.database_url}, capture_output=True, text=True,
                             timeout=60)
    assert written.returncode == 0, written.stderr
    expect(page.locator("#message-list")).to_contain_text("Deployed to staging, please check")
    assert page.errors == []
    page.context.close()
