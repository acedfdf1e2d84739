#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server: `tests/with_postgres.sh pytest -q`.
#
# initdb makes a cluster in a temporary directory, pg_ctl serves it on 127.0.0.1 (a free port) and a
# unix socket in that directory, TEST_DATABASE_URL names its maintenance database for the command, and
# the server and its files are gone afterwards, whatever the command did. Durability is switched off
# (fsync, synchronous_commit, full_page_writes): nothing here outlives the run, and it makes creating a
# database per test cheap. Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`);
# as root, the server runs as the `postgres` user, since PostgreSQL refuses to run as root.
set -euo pipefail

bindir="${PG_BINDIR:-}"
if [[ -z "$bindir" ]]; then
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        bindir="$(dirname "$(command -v initdb)")"
    else
        bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    fi
fi
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    echo "with_postgres: no PostgreSQL server binaries found (apt-get install postgresql, or set PG_BINDIR)" >&2
    exit 2
fi

run_as=()
if [[ "$(id -u)" == 0 ]]; then
    run_as=(runuser -u postgres --)
fi

cluster="$(mktemp -d "${TMPDIR:-/tmp}/dashboard-postgres.XXXXXX")"
chmod 755 "$cluster"
[[ "$(id -u)" == 0 ]] && chown postgres "$cluster"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

stop() {
    "${run_as[@]}" "$bindir/pg_ctl" -D "$cluster/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$cluster"
}
trap stop EXIT

"${run_as[@]}" "$bindir/initdb" -D "$cluster/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$cluster/initdb.log" 2>&1 || { cat "$cluster/initdb.log" >&2; exit 1; }
"${run_as[@]}" "$bindir/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$cluster \
     -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { cat "$cluster/server.log" >&2; exit 1; }

echo "with_postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres" "$@"
