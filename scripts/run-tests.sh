#!/usr/bin/env bash
# Run the whole suite on SQLite and on a throwaway PostgreSQL server, in two more
# processes than cores (pytest-xdist: OPTOUT_TEST_WORKERS=N for N processes, 0 for one).
# With CI=true a missing PostgreSQL is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${OPTOUT_TEST_POSTGRES_URL:-} ]]; then
  errors=$(mktemp)
  if url=$(scripts/test-postgres.sh start 2>"$errors"); then
    export OPTOUT_TEST_POSTGRES_URL=$url
  elif [[ ${CI:-} == true ]]; then
    echo "CI: could not start the test PostgreSQL server:" >&2
    cat "$errors" >&2
    rm -f "$errors"
    exit 1
  else
    echo "PostgreSQL tests will be skipped: $(tail -n 1 "$errors")"
  fi
  rm -f "$errors"
fi

# Bytecode is kept (in the git-ignored __pycache__ folders) even where the environment
# says not to write it: without it, every worker of every run rewrites the asserts of
# every test module and compiles every module it imports (about 8 s of CPU per worker),
# and every `optout` process a test starts compiles the app again.
unset PYTHONDONTWRITEBYTECODE

# Every worker shares the one server: each test database (and each worker's migrated
# template) has a name of its own. `loadgroup` hands tests out one by one, except those
# marked `xdist_group`, which run together on one worker. The log ends with the 25
# slowest tests. OPTOUT_TEST_CPU_REPORT=path also writes each test's CPU to that CSV and
# ends the log with the tests and the files that took the most (tests/cpu_report.py).
# Two workers more than cores: a test spends much of its time waiting (on a browser, a
# server in its own process, SMTP, a poll), and the others use the cores meanwhile; on
# 2 cores, 4 workers ran the 516 sending and CLI tests in 951 s against 1,217 s for 2
# (0.78x), with the same 365 s of CPU, on a machine loaded by other work (load 9-13).
workers=${OPTOUT_TEST_WORKERS:-$(($(nproc) + 2))}
.venv/bin/python -m pytest -n "$workers" --dist loadgroup --durations=25 "$@"
