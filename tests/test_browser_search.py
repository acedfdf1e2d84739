"""The page's search box, usage panel, live timeline and activity chart, in real headless Chromium against
the real mounted app under gunicorn (like tests/test_browser.py; screenshots in test-artifacts/browser/).

What a person does: searches for a word and opens the hit in its session, at its message, with the
session's own cost; reads today's and this week's cost per agent and per model; watches events arrive
in the timeline (filtered by agent) and in the chart of events per minute, live.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.chromium import screenshot
from tests.processes import gunicorn
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event
from tests.test_browser import expect_live, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN,
           "DASHBOARD_SECRET_KEY": "browser-tests-signing-key-0123456789", "SSE_HEARTBEAT_S": "1"}
    with gunicorn(f"sqlite:///{tmp_path_factory.mktemp('search-page') / 'dashboard.db'}", env) as running:
        yield running


def post(server, *events):
    status, body = server.request("POST", "/api/events", {"events": list(events)}, AGENT)
    assert status == 202, body


def now_ms() -> int:
    return int(time.time() * 1000)


def session(session_id, agent_id):
    return event("session.created", {"info": {"id": session_id, "title": f"Session {session_id}",
                                              "time": {"created": now_ms()}}}, agent_id=agent_id,
                 timestamp=now_ms())


def assistant(message_id, session_id, agent_id, text, *, model="claude-sonnet-4", cost=0.0, output=0):
    info = {"id": message_id, "sessionID": session_id, "role": "assistant", "modelID": model,
            "time": {"created": now_ms()}, "cost": cost,
            "tokens": {"input": 1000, "output": output, "reasoning": 0, "cache": {"read": 0, "write": 0}}}
    part = {"id": f"part-{message_id}", "messageID": message_id, "sessionID": session_id, "type": "text", "text": text}
    return [event("message.updated", {"info": info}, agent_id=agent_id, timestamp=now_ms()),
            event("message.part.updated", {"part": part}, agent_id=agent_id, timestamp=now_ms())]


def test_a_search_hit_opens_its_session_at_the_message_with_the_sessions_cost(browser, server):
    from playwright.sync_api import expect

    post(server, session("ses_walrus", "searcher"),
         *assistant("msg_old", "ses_walrus", "searcher", "Looked at the logs; nothing yet.", cost=0.25),
         *assistant("msg_hit", "ses_walrus", "searcher", "The walrus migration failed on step three: the "
                    "index <b>was</b> missing.", cost=0.5))
    page = open_page(browser, server)
    expect_live(page)
    page.get_by_label("Search messages, tool output, todos, tasks and issues").fill("walrus migration")
    page.get_by_label("Search messages, tool output, todos, tasks and issues").press("Enter")
    hit = page.locator("#search-results .hit")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text(["walrus", "migration"])
    expect(hit).to_contain_text("index <b>was</b> missing")  # text, never markup
    screenshot(page, "search-01-hit")

    hit.locator("a").click()  # the session's transcript opens at the message
    expect(page).to_have_url(re.compile(r"\?session=ses_walrus&message=\d+$"))
    found = page.locator("#view li.turn.target")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("The walrus migration failed")
    expect(page.locator("#view .session-usage")).to_have_text("This session: $0.75 · 2000 tokens · 2 messages")
    screenshot(page, "search-02-opened")
    page.go_back()  # to the dashboard, where the search box is

    page.get_by_label("Search messages, tool output, todos, tasks and issues").fill('"')
    page.get_by_label("Search messages, tool output, todos, tasks and issues").press("Enter")
    expect(page.locator("#search-error")).to_contain_text("no word to search for")
    assert page.errors == []


def test_a_search_link_opens_the_session_at_the_message_on_a_fresh_page(browser, server):
    from playwright.sync_api import expect

    post(server, session("ses_link", "linker"), *assistant("msg_link", "ses_link", "linker", "A pelican report."))
    status, body = server.request("GET", "/api/search?q=pelican", headers=DASHBOARD)
    assert status == 200, body
    page = open_page(browser, server)
    page.goto(f"http://127.0.0.1:{server.port}{body['hits'][0]['link']}")
    expect(page.locator("#view li.turn.target")).to_contain_text("A pelican report.")
    assert page.errors == []


def test_the_usage_panel_shows_today_and_this_week_per_agent_and_per_model(browser, server):
    from playwright.sync_api import expect

    post(server, session("ses_cost_a", "spender"), session("ses_cost_b", "saver"),
         *assistant("cost_1", "ses_cost_a", "spender", "one", model="claude-opus-4", cost=1.5, output=500),
         *assistant("cost_2", "ses_cost_b", "saver", "two", model="gpt-5", cost=0.1, output=20))
    page = open_page(browser, server)
    expect_live(page)
    spender = page.locator(".usage-agent tr[data-usage-key='spender']")
    expect(spender).to_contain_text("$1.50")
    expect(spender).to_contain_text("1500")
    expect(page.locator(".usage-model tr[data-usage-key='gpt-5']")).to_contain_text("$0.10")
    expect(page.locator(".usage-totals dd[data-period='today']")).to_contain_text("tokens")
    # live: a re-sent message with higher figures replaces its old ones
    post(server, *assistant("cost_1", "ses_cost_a", "spender", "one, longer", model="claude-opus-4", cost=2.5,
                            output=900)[:1])
    expect(spender).to_contain_text("$2.50")
    expect(spender).to_contain_text("1900")
    screenshot(page, "search-03-usage")
    assert page.errors == []


def test_the_timeline_and_the_chart_follow_the_stream_and_filter_by_agent(browser, server):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    expect_live(page)
    post(server, *[event("agent.heartbeat", {"id": "chart-a"}, id=f"beat-a-{n}", agent_id="chart-a",
                         timestamp=now_ms()) for n in range(3)],
         event("agent.heartbeat", {"id": "chart-b"}, id="beat-b-0", agent_id="chart-b", timestamp=now_ms()))
    expect(page.locator("#timeline-list [data-event-id='beat-b-0']")).to_have_count(1)
    expect(page.locator("#activity-chart polyline[data-agent='chart-a']")).to_have_attribute("data-total", "3")
    expect(page.locator("#activity-legend [data-agent='chart-b']")).to_contain_text("chart-b: 1")

    page.locator("#timeline-agent").select_option("chart-b")
    expect(page.locator("#timeline-list [data-event-id='beat-a-0']")).to_have_count(0)
    expect(page.locator("#timeline-list .timeline-event")).to_have_count(1)
    post(server, event("agent.heartbeat", {"id": "chart-b"}, id="beat-b-1", agent_id="chart-b", timestamp=now_ms()))
    expect(page.locator("#timeline-list .timeline-event")).to_have_count(2)  # live, within the filter
    expect(page.locator("#activity-chart polyline[data-agent='chart-b']")).to_have_attribute("data-total", "2")
    screenshot(page, "search-04-timeline")
    assert page.errors == []
