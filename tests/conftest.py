"""Fixtures that build real things: a real database (a SQLite file, or PostgreSQL with TEST_DATABASE_URL),
migrated, and the real apps over it."""

from __future__ import annotations

import os
import shutil

import pytest
from falcon import testing

import functions.events
from deploy import mount
from shared.config import Settings
from shared.store.db import database, open_database
from shared.store.migrations import migrate
from tests.databases import ON_POSTGRES, TEST_DATABASE_URL, PostgresDatabases, close_pool, database_url_in
from tests.support import API_KEY, DASHBOARD_TOKEN


@pytest.fixture(scope="session")
def postgres_databases():
    """On PostgreSQL, what creates each test's database (see tests/databases.py); None on SQLite."""
    if not ON_POSTGRES:
        yield None
        return
    databases = PostgresDatabases(TEST_DATABASE_URL)
    yield databases
    databases.drop_all()


@pytest.fixture
def database_url(tmp_path, postgres_databases) -> str:
    url = database_url_in(tmp_path, postgres_databases)
    yield url
    close_pool(url)
    if postgres_databases is not None:
        postgres_databases.release(url)


@pytest.fixture
def empty_database_url(tmp_path, postgres_databases) -> str:
    """A database no migration has touched (on SQLite, a file that does not exist yet)."""
    url = database_url_in(tmp_path, postgres_databases, name="empty.db", migrated=False)
    yield url
    close_pool(url)


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(
        database_url=database_url,
        api_key=API_KEY,
        dashboard_token=DASHBOARD_TOKEN,
        max_body_bytes=256 * 1024,
        temporal_address=None,  # tests that want Temporal ask for the `temporal` fixture
    )


@pytest.fixture
def db(settings):
    """The migrated database; the test's own queries connect on demand."""
    open_database(settings)
    migrate()
    yield database
    database.close()


@pytest.fixture
def events_client(settings, db) -> testing.TestClient:
    return testing.TestClient(functions.events.create_app(settings))


@pytest.fixture
def mounted_client(settings, db) -> testing.TestClient:
    return testing.TestClient(mount.create_app(settings))


# What the reliability tests measured (events acked, statuses seen, ...), printed when the run ends.
FIGURES = pytest.StashKey[list]()


@pytest.fixture
def figures(request):
    """`figures(title, {name: value})` records a test's measured figures for the run's closing summary."""
    def record(title: str, values: dict) -> None:
        request.config.stash.setdefault(FIGURES, []).append((title, values))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for title, values in config.stash.get(FIGURES, []):
        terminalreporter.write_sep("-", f"figures: {title}")
        for name, value in values.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def temporal():
    """One real Temporal dev server for the whole test run (see tests/temporal_support.py)."""
    from tests.temporal_support import TemporalHarness

    harness = TemporalHarness()
    yield harness
    harness.close()


@pytest.fixture
def fast_settings(temporal, settings, db):
    """Settings on the dev server, with thresholds of seconds."""
    from tests.temporal_support import FAST

    return temporal.settings_for(settings, **FAST)


@pytest.fixture
def fast(temporal, fast_settings):
    """`fast_settings`, with a worker running for the test."""
    with temporal.worker(fast_settings):
        yield fast_settings


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` that runs the opencode hook (hooks/) in its tests. Missing, they skip — but not in CI
    (`.ci/run` sets CI=1 and installs Debian's nodejs), where skipping would hide them."""
    path = shutil.which("node")
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("node is missing, but CI must run the hook's tests (.ci/run installs Debian's nodejs)")
        pytest.skip("node is not installed here: the opencode hook's tests need Node 18+ (CI installs it)")
    return path


@pytest.fixture(scope="module")
def browser():
    """Real headless Chromium for a module's browser tests (tests/chromium.py)."""
    from tests.chromium import chromium

    with chromium() as running:
        yield running
