#!/usr/bin/env bash
# Run the whole suite on SQLite and on a throwaway PostgreSQL server.
# With CI=true a missing PostgreSQL is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${OPTOUT_TEST_POSTGRES_URL:-} ]]; then
  if url=$(scripts/test-postgres.sh start 2>/tmp/optout-test-postgres.err); then
    export OPTOUT_TEST_POSTGRES_URL=$url
  elif [[ ${CI:-} == true ]]; then
    echo "CI: could not start the test PostgreSQL server:" >&2
    cat /tmp/optout-test-postgres.err >&2
    exit 1
  else
    echo "PostgreSQL tests will be skipped: $(tail -n 1 /tmp/optout-test-postgres.err)"
  fi
fi

.venv/bin/python -m pytest "$@"
