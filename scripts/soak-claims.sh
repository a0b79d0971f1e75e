#!/usr/bin/env bash
# Run the test of changes committed while workers claim (R14) on PostgreSQL again and
# again beside a CPU load, and stop at the first failure: the claim/save deadlock it used
# to hit shows only when the workers, the saves and the server are slowed down unevenly.
#
#   scripts/soak-claims.sh [RUNS] [LOAD_PROCESSES]     (defaults: 20 runs, one per core)
#
# Uses OPTOUT_TEST_POSTGRES_URL, or starts the test server as `make test` does. Prints
# each run's outcome and seconds, then the total.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
load=${2:-$(nproc)}
test_id='tests/sending/test_concurrency.py::test_R14_changes_committed_while_workers_claim_always_win[postgresql]'

if [[ -z ${OPTOUT_TEST_POSTGRES_URL:-} ]]; then
  OPTOUT_TEST_POSTGRES_URL=$(scripts/test-postgres.sh start) || exit 1
  export OPTOUT_TEST_POSTGRES_URL
fi

burners=()
for _ in $(seq "$load"); do
  .venv/bin/python -c 'while True: pass' &
  burners+=($!)
done
stop_load() { kill "${burners[@]}" 2>/dev/null; wait "${burners[@]}" 2>/dev/null; }
trap stop_load EXIT

echo "soak: $runs runs of $test_id beside $load busy processes"
passed=0
for run in $(seq "$runs"); do
  began=$SECONDS
  log=$(mktemp)
  if CI=true .venv/bin/python -m pytest -q -p no:cacheprovider "$test_id" >"$log" 2>&1; then
    outcome=passed
    passed=$((passed + 1))
  else
    outcome=FAILED
  fi
  printf 'run %2d: %s in %d s\n' "$run" "$outcome" $((SECONDS - began))
  if [[ $outcome == FAILED ]]; then
    tail -n 40 "$log"
    rm -f "$log"
    echo "soak: $passed of $runs passed before the first failure"
    exit 1
  fi
  rm -f "$log"
done
echo "soak: $passed of $runs passed in a row"
