"""A fresh load of the page at a 10 000-message session's address, in real headless Chromium.

One run: a fresh SQLite database with one session of --messages messages (written straight into the
database, as tests/test_browser_transcript.py does), the real mount under gunicorn with the project's
config, and Debian's Chromium driven by Playwright. For a phone (390x844) and a laptop (1440x900)
viewport, --runs times each:
  - cold: a new browser context (empty cache, a signed-in cookie) opens /?session=<id>;
  - warm: the same context opens it again (the versioned modules come from the cache).
Each load reports, from navigation start: the newest message shown (the page's `transcript-shown`
mark), when the sign-in check and the transcript request started, and how many JavaScript modules
were fetched and their bytes on the wire (transfer) and unpacked.

Run from the repository root: `.venv/bin/python bench/page_load.py [--messages N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.servers import SERVER_PYTHON, bench_env, free_port, gunicorn, prepare_database, verdict  # noqa: E402
from tests.chromium import CHROMIUM, FLAGS  # noqa: E402
from tests.test_browser_transcript import FILL  # noqa: E402

TARGET_MS = 300.0
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1440, "height": 900}}
SESSION = "ses-big"

# What one load did, read from the page's performance entries once the newest message is shown.
MEASURE = """() => {
  const resources = performance.getEntriesByType('resource');
  const modules = resources.filter((entry) => entry.name.endsWith('.js'));
  const first = (part) => resources.find((entry) => entry.name.includes(part));
  return {
    shown: performance.getEntriesByName('transcript-shown')[0].startTime,
    me: first('/api/auth/me')?.startTime ?? null,
    messages: first('/api/msgs?session_id=')?.startTime ?? null,
    answered: first('/api/msgs?session_id=')?.responseEnd ?? null,
    modules: modules.length,
    modulesDone: Math.max(0, ...modules.map((entry) => entry.responseEnd)),
    transfer: modules.reduce((sum, entry) => sum + entry.transferSize, 0),
    decoded: modules.reduce((sum, entry) => sum + entry.decodedBodySize, 0),
  };
}"""


def session_cookie(port: int, token: str) -> dict[str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/auth/login", body=json.dumps({"token": token}),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("Set-Cookie")
    name, _, rest = cookie.partition("=")
    return {"name": name, "value": rest.split(";")[0], "url": f"http://127.0.0.1:{port}"}


def load(page, url: str, newest: int) -> dict:
    page.goto(url)
    page.locator("#view li.turn").last.filter(has_text=f"message {newest}:").wait_for(timeout=60_000)
    page.wait_for_function("performance.getEntriesByName('transcript-shown').length > 0", timeout=60_000)
    return page.evaluate(MEASURE)


def measure(browser, port: int, token: str, viewport: dict, newest: int) -> dict[str, dict]:
    """One cold load in a new context (empty cache), then a warm one in the same context."""
    url = f"http://127.0.0.1:{port}/?session={SESSION}"
    context = browser.new_context(viewport=viewport)
    try:
        context.add_cookies([session_cookie(port, token)])
        page = context.new_page()
        cold = load(page, url, newest)
        page.goto("about:blank")
        return {"cold": cold, "warm": load(page, url, newest)}
    finally:
        context.close()


def describe(name: str, loads: list[dict]) -> str:
    median = {key: statistics.median(load[key] for load in loads if load[key] is not None)
              for key in ("shown", "me", "messages", "answered", "modulesDone", "modules", "transfer", "decoded")}
    shown = sorted(round(load["shown"]) for load in loads)
    return (f"  {name}: newest shown {shown} ms (median {median['shown']:.0f}); sign-in check sent at "
            f"{median['me']:.0f} ms, transcript asked at {median['messages']:.0f} and answered at "
            f"{median['answered']:.0f} ms; {median['modules']:.0f} modules, the last in at "
            f"{median['modulesDone']:.0f} ms, {median['transfer'] / 1024:.1f} KiB on the wire "
            f"({median['decoded'] / 1024:.1f} KiB unpacked)")


@contextlib.contextmanager
def served(env: dict[str, str], tmp: Path, ref: str | None) -> Iterator[int]:
    """gunicorn serving this checkout, or `ref`'s code (extracted with git archive); yields its port."""
    checkout = REPO_ROOT
    if ref:
        checkout = tmp / "baseline"
        checkout.mkdir()
        archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
    port = free_port()
    with gunicorn(env, port, None, tmp / f"gunicorn-{ref or 'this'}.log", checkout):
        yield port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", metavar="REF", help="also serve REF's code, loads alternating with this one's")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-page-load-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        env = bench_env(tmp)
        prepare_database(env)
        subprocess.run([SERVER_PYTHON, "-c", FILL, str(args.messages)], cwd=REPO_ROOT, env=env, check=True)
        servers = {"this": stack.enter_context(served(env, tmp, None))}
        if args.compare:
            servers[args.compare] = stack.enter_context(served(env, tmp, args.compare))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        stack.callback(browser.close)
        print(f"load average before: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
        for viewport_name, viewport in VIEWPORTS.items():
            results = {server: {"cold": [], "warm": []} for server in servers}
            for _ in range(args.runs):
                for server, port in servers.items():  # alternating, so both meet the same load
                    for kind, figures in measure(browser, port, env["DASHBOARD_TOKEN"], viewport,
                                                 args.messages - 1).items():
                        results[server][kind].append(figures)
            print(f"{viewport_name} {viewport['width']}x{viewport['height']}:")
            for server, loads in results.items():
                for kind, figures in loads.items():
                    print(describe(f"{server}, {kind}", figures))
            cold = statistics.median(load["shown"] for load in results["this"]["cold"])
            verdict(f"page load at a {args.messages}-message session, {viewport_name}, cold cache: newest shown",
                    f"{cold:.0f} ms", f"<= {TARGET_MS:.0f} ms", cold <= TARGET_MS)
        print(f"load average after: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
