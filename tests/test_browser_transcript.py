"""A session's transcript in real headless Chromium against real gunicorn: markdown rendered (and never
markup, whatever the message says), long text folded, tool calls opened, the files changed listed, new
messages arriving live, deep links to a message, and a 10 000-message session opened at its newest and
scrolled back to its oldest. Screenshots: test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.processes import REPO, gunicorn
from tests.support import event
from tests.test_browser import expect_live, post_events, server_env
from tests.test_browser_page import LAPTOP, PHONE, no_horizontal_scroll, open_at, screen

pytestmark = pytest.mark.browser

SESSION = "ses-notes"
MARKDOWN = """# Plan for the release

Steps, **in order**:

1. Write the notes
2. Tag `v2.0.0`
   - sign it

| Step | Owner | Done |
|------|:-----:|-----:|
| Notes | docs | yes |

```python
print("tagged")
```

See [the guide](https://example.com/guide) first.
"""
LONG = "A long answer. " * 600 + "THE-VERY-END"
HOSTILE = "\n".join([
    "<script>window.pwned = 'script'</script>",
    '<img src="x" onerror="window.pwned = \'img\'">',
    "[click me](javascript:window.pwned='link')",
    "[also me]( JaVaScRiPt:window.pwned='link2')",
    "[data](data:text/html,<script>window.pwned='data'</script>)",
    '<div onmouseover="window.pwned=\'div\'"><b>nested <i>html</i></b></div>',
    "<iframe src=\"javascript:window.pwned='frame'\"></iframe>",
    '<a href="javascript:window.pwned=1">raw anchor</a>',
    "```html\n<script>window.pwned='fence'</script>\n```",
    "**<svg onload=\"window.pwned='svg'\">**",
])
# Under the 32 KiB cut, so its end ("deep") arrives.
HUGE = "HUGE-START " + ("*[`_~<script>" * 1500) + "\n" + ("- " * 2500) + "\n" + ("> " * 2000) + "deep"


def say(session: str, message: str, text: str, *, role: str = "assistant", at: float | None = None) -> list[dict]:
    """An opencode message with one text part: message.updated, then message.part.updated."""
    millis = int((at or time.time()) * 1000)
    return [event("message.updated", {"info": {"id": message, "sessionID": session, "role": role,
                                               "time": {"created": millis}, "modelID": "claude-test"}},
                  agent_id="writer", timestamp=millis),
            event("message.part.updated", {"part": {"id": f"{message}-text", "messageID": message, "sessionID": session,
                                                    "type": "text", "text": text}}, agent_id="writer",
                  timestamp=millis)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database_url, env = server_env(tmp_path_factory.mktemp("transcript"))
    with gunicorn(database_url, env) as running:
        running.database_url = database_url
        start = time.time() - 600
        post_events(running,
                    event("agent.registered", {"id": "writer", "name": "Release writer", "type": "primary"}),
                    event("session.created", {"info": {"id": SESSION, "title": "Release notes"}}, agent_id="writer"),
                    *say(SESSION, "m-ask", "Please write the **release notes**.", role="user", at=start),
                    *say(SESSION, "m-plan", MARKDOWN, at=start + 1),
                    event("message.part.updated", {"part": {
                        "id": "m-plan-tool", "messageID": "m-plan", "sessionID": SESSION, "type": "tool",
                        "callID": "call-1", "tool": "bash", "state": {
                            "status": "completed", "title": "git tag", "input": {"command": "git tag v2.0.0"},
                            "output": "tagged v2.0.0 at 1a2b3c"}}}, agent_id="writer"),
                    *say(SESSION, "m-long", LONG, at=start + 2),
                    *say(SESSION, "m-hostile", HOSTILE, at=start + 3),
                    *say(SESSION, "m-huge", HUGE, at=start + 4),
                    event("session.diff", {"sessionID": SESSION, "diff": [
                        {"file": "CHANGELOG.md", "additions": 12, "deletions": 1, "status": "modified"},
                        {"file": "docs/release.md", "additions": 40, "deletions": 0, "status": "added"}]},
                        agent_id="writer"))
        yield running


def message_row_id(server, external_id: str) -> int:
    from tests.support import DASHBOARD

    status, body = server.request("GET", f"/api/msgs?session_id={SESSION}&limit=500", headers=DASHBOARD)
    assert status == 200, body
    return next(row["id"] for row in body["messages"] if row["external_id"] == external_id)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_transcript_renders_markdown_folds_long_text_opens_tool_calls_and_lists_the_files(browser, server,
                                                                                                viewport):
    from playwright.sync_api import expect

    page = open_at(browser, server, viewport, f"/?session={SESSION}")
    expect_live(page)
    view = page.locator("#view")
    expect(view.get_by_role("heading", name="Release notes")).to_be_visible()
    plan = view.locator("li.turn", has_text="Plan for the release")
    expect(plan.get_by_role("heading", name="Plan for the release")).to_be_visible()
    expect(plan.locator("ol > li").first).to_have_text("Write the notes")
    expect(plan.locator("ol li ul li")).to_have_text("sign it")
    expect(plan.locator("strong")).to_have_text("in order")
    expect(plan.locator("table th")).to_have_text(["Step", "Owner", "Done"])
    expect(plan.locator("table td.align-right")).to_have_text("yes")
    code = plan.locator("figure.code-block")
    expect(code.locator("figcaption")).to_have_text("python")  # the language is shown
    expect(code.locator("pre code")).to_have_text('print("tagged")')
    assert "monospace" in code.locator("pre").evaluate("(element) => getComputedStyle(element).fontFamily")
    expect(plan.get_by_role("link", name="the guide")).to_have_attribute("href", "https://example.com/guide")

    # A tool call opens to its input and its output.
    tool = plan.locator("details.tool-call")
    expect(tool.locator(".tool-input")).to_be_hidden()
    tool.locator("summary").click()
    expect(tool.locator(".tool-input")).to_contain_text('"command": "git tag v2.0.0"')
    expect(tool.locator(".tool-output")).to_have_text("tagged v2.0.0 at 1a2b3c")

    # A long message is folded until "Show all".
    long = view.locator("li.turn", has_text="A long answer.")
    expect(long).not_to_contain_text("THE-VERY-END")
    long.get_by_role("button", name=re.compile("Show all")).click()
    expect(long).to_contain_text("THE-VERY-END")

    # The files the session changed.
    view.get_by_text("Files changed (2)").click()
    expect(view.locator(".files-changed .file")).to_have_text([re.compile(r"CHANGELOG\.md.*\+12.*\u22121"),
                                                             re.compile(r"docs/release\.md.*added.*\+40")])
    assert no_horizontal_scroll(page)
    screenshot_name = "40-transcript-" + ("laptop" if viewport == LAPTOP else "phone")
    screen(page, screenshot_name)

    # A new message arrives live at the bottom.
    post_events(server, *say(SESSION, "m-live", "Tagged and **pushed**."))
    expect(view.locator("li.turn").last).to_contain_text("Tagged and pushed.")
    assert page.errors == []
    page.context.close()


def test_message_text_can_never_become_markup_or_script(browser, server):
    from playwright.sync_api import expect

    page = open_at(browser, server, LAPTOP, f"/?session={SESSION}")
    view = page.locator("#view")
    hostile = view.locator("li.turn", has_text="raw anchor")
    expect(hostile).to_contain_text("<script>window.pwned = 'script'</script>")  # shown as text
    expect(hostile).to_contain_text('<img src="x" onerror=')
    screen(page, "41-transcript-hostile")
    huge = view.locator("li.turn", has_text="HUGE-START")
    huge.get_by_role("button", name=re.compile("Show all")).click()
    expect(huge).to_contain_text("deep")
    for element in view.locator("li.turn").all():
        element.hover()
    for details in view.locator("details").all():
        details.locator("summary").first.click()
    found = page.evaluate("""() => {
      const view = document.getElementById('view');
      const elements = [...view.querySelectorAll('*')];
      return {
        pwned: window.pwned ?? null,
        // what the hostile text names, had it become markup
        dangerous: elements.filter((e) => ['SCRIPT', 'IMG', 'IFRAME', 'SVG', 'OBJECT', 'EMBED', 'STYLE', 'I', 'B']
          .includes(e.tagName.toUpperCase())).map((e) => e.outerHTML.slice(0, 80)),
        handlers: elements.flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith('on'))
          .map((a) => a.name)),
        links: [...view.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'))
          .filter((href) => !/^(https?:|mailto:|\\/)/i.test(href)),
      };
    }""")
    assert found == {"pwned": None, "dangerous": [], "handlers": [], "links": []}
    # The hostile links stay visible as text that goes nowhere.
    expect(hostile.locator(".unsafe-link")).to_have_text(["click me", "also me", "data"])
    assert page.errors == []
    page.context.close()


def test_a_link_to_a_message_opens_the_transcript_there(browser, server):
    from playwright.sync_api import expect

    target = message_row_id(server, "m-long")
    page = open_at(browser, server, PHONE, "/")
    expect_live(page)
    # From the dashboard's feed: a message's session opens its transcript at that message.
    page.locator(f'#message-list li[data-message-id="{target}"] a.session-link').click()
    expect(page).to_have_url(re.compile(rf"\?session={SESSION}&message={target}$"))
    turn = page.locator(f'#view li.turn[data-message-id="{target}"]')
    expect(turn).to_have_class(re.compile("target"))
    expect(turn).to_be_in_viewport()
    page.reload()  # the address alone opens it
    expect(turn).to_have_class(re.compile("target"))
    expect(turn).to_be_in_viewport()
    page.go_back()
    expect(page.locator("#panels")).to_be_visible()
    assert page.errors == []
    page.context.close()


# 10 000 messages in one session, written straight into the server's database (as many events would).
FILL = """
import sys
from shared.config import Settings
from shared.store.db import open_database, write_transaction
from shared.store.models import Message, Session
open_database(Settings.from_env())
count, start = int(sys.argv[1]), 1_700_000_000
with write_transaction():
    Session.insert(id="ses-big", name="A very long session", started_at=start, updated_at=start).execute()
    rows = [{"type": "chat", "role": "assistant" if n % 2 else "user", "session_id": "ses-big",
             "content": f"message {n}: " + "some words to read " * (n % 7), "created_at": start + n // 3,
             "updated_at": start + n // 3, "external_id": f"big-{n}", "read": 0} for n in range(count)]
    for at in range(0, count, 500):
        Message.insert_many(rows[at:at + 500]).execute()
"""
BIG = 10_000


def shown_numbers(page) -> list[int]:
    return page.evaluate("""() => [...document.querySelectorAll('#view li.turn')]
      .map((turn) => Number(turn.textContent.match(/message (\\d+):/)[1]))""")


def test_a_ten_thousand_message_session_opens_at_its_newest_and_scrolls_back_to_its_oldest(browser, server, figures):
    from playwright.sync_api import expect

    filled = subprocess.run([sys.executable, "-c", FILL, str(BIG)], cwd=REPO, capture_output=True, text=True,
                            env=os.environ | {"DATABASE_URL": server.database_url}, timeout=120)
    assert filled.returncode == 0, filled.stderr
    page = open_at(browser, server, LAPTOP, "/?session=ses-big")
    view = page.locator("#view")
    expect(view.locator("li.turn").last).to_contain_text(f"message {BIG - 1}:")
    shown_ms = page.evaluate("performance.getEntriesByName('transcript-shown')[0].startTime")
    # The same from the dashboard: following a link to the session, without loading the page.
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect_live(page)
    page.evaluate("""() => { const link = document.createElement('a'); link.href = '/?session=ses-big';
      link.dataset.route = ''; link.id = 'to-big'; link.textContent = 'big'; document.body.prepend(link); }""")
    page.evaluate("""() => { performance.clearMarks();
      addEventListener('click', () => { window.clickedAt = performance.now(); }, { capture: true, once: true }); }""")
    page.locator("#to-big").click()
    expect(view.locator("li.turn").last).to_contain_text(f"message {BIG - 1}:")
    in_page_ms = page.evaluate("performance.getEntriesByName('transcript-shown')[0].startTime - window.clickedAt")

    # Scrolling up reads older pages until the first message, in order, with nothing twice.
    started = time.monotonic()
    first = view.locator("li.turn", has_text="message 0:")
    while not first.count():
        page.mouse.wheel(0, -100_000)
        page.wait_for_function("() => !document.querySelector('#view .transcript-edge').textContent"
                               ".includes('Loading')", timeout=30_000)
        assert time.monotonic() - started < 600, "never reached the oldest message"
    scroll_s = time.monotonic() - started
    expect(view.locator(".transcript-edge").first).to_have_text("The start of the session.")
    numbers = shown_numbers(page)
    assert numbers == list(range(len(numbers))) and len(numbers) >= 100
    # The newest were let go on the way (the page holds a bounded number); scrolling down brings them back.
    page.mouse.wheel(0, 10_000_000)
    expect(view.locator("li.turn", has_text=f"message {numbers[-1] + 1}:")).to_have_count(1)
    more = shown_numbers(page)
    assert more == list(range(more[0], more[0] + len(more))) and more[-1] > numbers[-1]
    figures("transcript of a 10 000-message session", {
        "newest shown, from navigation (page load) ms": round(shown_ms),
        "newest shown, from an in-page link ms": round(in_page_ms),
        "scrolled back to the oldest (100 pages) s": round(scroll_s, 1)})
    assert page.errors == []
    page.context.close()
