"""A fresh load of the page, in real headless Chromium against real gunicorn: at a transcript's address
the first page is asked for alongside the sign-in check and shows the linked message; signed out, the
sign-in shows and no transcript data does; after a release that changes a module, the page runs the new
one, never a mix of the two. How fast it is: bench/page_load.py and docs/benchmarks.md.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.processes import REPO, free_port, gunicorn
from tests.test_browser import DASHBOARD_TOKEN, expect_live, open_page, post_events, server_env
from tests.test_browser_page import LAPTOP, PHONE, open_at
from tests.test_browser_transcript import message_row_id, say

pytestmark = pytest.mark.browser

SESSION = "ses-notes"
# The code a server runs: a copy of these can be changed as a release would change them.
CODE = ("functions", "shared", "deploy", "hooks", "worker")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database_url, env = server_env(tmp_path_factory.mktemp("page-load"))
    with gunicorn(database_url, env) as running:
        post_events(running, *[event for n in range(80) for event in say(
            SESSION, f"m-{n}", f"Note number {n} of the release.", role="user" if n % 2 else "assistant",
            at=1_700_000_000 + n)])
        yield running


def requests_made(page, part: str) -> list[dict]:
    return page.evaluate("""(part) => performance.getEntriesByType('resource')
      .filter((entry) => entry.name.includes(part))
      .map((entry) => ({ name: entry.name, start: entry.startTime, end: entry.responseEnd,
        status: entry.responseStatus }))""", part)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_fresh_load_at_a_message_asks_for_it_alongside_the_sign_in_check_and_shows_it(browser, server,
                                                                                       viewport):
    from playwright.sync_api import expect

    target = message_row_id(server, "m-10")
    page = open_at(browser, server, viewport, "/")
    # The (first) sign-in check is held unanswered: the page must ask for the messages around the link meanwhile.
    held = []
    page.context.route("**/api/auth/me", lambda route: route.continue_() if held else held.append(route))
    page.goto(f"http://127.0.0.1:{server.port}/?session={SESSION}&message={target}")
    around = f"/api/msgs?session_id={SESSION}&from_id={target}&limit="
    page.wait_for_function("""(part) => performance.getEntriesByType('resource')
      .filter((entry) => entry.name.includes(part)).length === 2""", arg=around)  # older and newer, once each
    assert len(held) == 1
    held[0].continue_()
    turn = page.locator(f'#view li.turn[data-message-id="{target}"]')
    expect(turn).to_have_class(re.compile("target"))
    expect(turn).to_contain_text("Note number 10 of the release.")
    expect(turn).to_be_in_viewport()
    assert len(requests_made(page, around)) == 2  # the early answers were used, not asked again
    assert page.errors == []
    page.context.close()


def test_a_signed_out_fresh_load_shows_the_sign_in_and_no_transcript_data(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server, signed_in=False, viewport=PHONE, url=f"/?session={SESSION}")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#signin-note")).to_have_text("Sign in to watch and steer your agents.")
    # Its early request was answered (refused), and nothing of the session reached the screen or the document.
    page.wait_for_function(f"""() => performance.getEntriesByType('resource')
      .some((entry) => entry.name.includes('/api/msgs?session_id={SESSION}') && entry.responseEnd > 0)""")
    assert {request["status"] for request in requests_made(page, "/api/msgs")} == {401}
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.locator("#view li.turn").count() == 0
    assert "Note number" not in page.content()
    # Signing in then shows the transcript (asked again, now that someone is signed in).
    page.locator("#signin-token").fill(DASHBOARD_TOKEN)
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#view li.turn").last).to_contain_text("Note number 79 of the release.")
    assert page.errors == []
    page.context.close()


def test_after_a_release_changes_a_module_the_page_runs_the_new_one_and_no_old_one(browser, tmp_path):

    checkout = tmp_path / "release"
    for folder in CODE:
        shutil.copytree(REPO / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dom = checkout / "functions" / "dashboard" / "page" / "assets" / "dom.js"
    database_url, env = server_env(tmp_path)
    port = free_port()
    with gunicorn(database_url, env, port=port, checkout=checkout) as first:
        page = open_page(browser, first)  # the first release, its modules now in the browser's cache
        expect_live(page)
        old = page.evaluate("document.querySelector('script[src$=\"/app.js\"]').src")
        assert page.evaluate("window.release") is None
    # The release: one module changes, the server restarts on the same address.
    dom.write_text(dom.read_text() + '\nwindow.release = "second";\n')
    with gunicorn(database_url, env, port=port, checkout=checkout):
        page.evaluate("performance.clearResourceTimings()")
        page.goto(f"http://127.0.0.1:{port}/")
        expect_live(page)
        assert page.evaluate("window.release") == "second"
        new = page.evaluate("document.querySelector('script[src$=\"/app.js\"]').src")
        old_base, new_base = old.rsplit("/", 1)[0], new.rsplit("/", 1)[0]
        assert new_base != old_base
        modules = [request["name"] for request in requests_made(page, ".js")]
        assert modules and all(name.startswith(new_base + "/") for name in modules), modules
        assert page.errors == []
        page.context.close()
