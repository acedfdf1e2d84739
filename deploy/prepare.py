"""Get the database ready before serving: `python -m deploy.prepare [--new-api-key] [--new-token]`.

Creates or upgrades the schema, and generates the agents' API key and the dashboard token when none
is configured. A generated secret is printed here once; only its SHA-256 digest is stored. A key for
signing short-lived tokens is generated too (kept in the database, never printed) unless
DASHBOARD_SECRET_KEY is set.
"""

from __future__ import annotations

import argparse
import logging
import sys

from shared.config import Settings, settings_for_command
from shared.store.db import database, open_database, write_transaction
from shared.store.migrations import LATEST_VERSION, migrate
from shared.web.auth import AGENT, DASHBOARD, ensure_credentials, ensure_signing_key

LABELS = {
    AGENT: ("API key for agents (DASHBOARD_API_KEY)", "send as `Authorization: Bearer <key>` to /api/events"),
    DASHBOARD: ("Dashboard token (DASHBOARD_TOKEN)", "send as `Authorization: Bearer <token>` to the other routes"),
}


def prepare(settings: Settings, rotate: frozenset[str] = frozenset()) -> dict[str, str]:
    """Create or upgrade the schema and make sure the credentials exist; the secrets generated now, by
    kind (AGENT, DASHBOARD), which are never readable again."""
    open_database(settings)
    applied = migrate()
    print(f"database ready: schema version {LATEST_VERSION}" + (f", applied {applied}" if applied else ""))
    with database.connection_context(), write_transaction():
        created = ensure_credentials(settings, rotate=rotate)
        ensure_signing_key(settings)
    return created


def print_credentials(created: dict[str, str]) -> None:
    for kind, secret in created.items():
        label, usage = LABELS[kind]
        print(f"\n  {label}: {secret}\n  ({usage}; shown only this once — keep it safe)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--new-api-key", action="store_true", help="replace the generated agents' API key")
    parser.add_argument("--new-token", action="store_true", help="replace the generated dashboard token")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rotate = frozenset(kind for kind, wanted in ((AGENT, args.new_api_key), (DASHBOARD, args.new_token)) if wanted)
    print_credentials(prepare(settings_for_command(), rotate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
