#!/usr/bin/env bash
# The two test passes of `make test` side by side: every test on SQLite, and the tests that use
# the registry again on PostgreSQL ($1, the server's URL). Each pass is one pytest process that
# waits much of its time on subprocesses, the database and the browser, so two of them keep
# both cores of a small machine busy; their outputs are printed one after the other, and the
# target fails if either pass failed.
set -uo pipefail
pg_url=$1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ECONTRACT_TEST_DATABASE_URL=$pg_url bash scripts/run-pytest.sh -m registry -p no:cacheprovider --durations=40 >"$log" 2>&1 &
pg_pid=$!
bash scripts/run-pytest.sh --durations=40
sqlite_status=$?
wait "$pg_pid"
pg_status=$?
echo "=== the registry tests on PostgreSQL ==="
cat "$log"
echo "SQLite pass: exit $sqlite_status; PostgreSQL pass: exit $pg_status"
[ "$sqlite_status" -eq 0 ] && [ "$pg_status" -eq 0 ]
