# optout: `make run` starts it, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# `make run`: the demo workspace, a demo admin who can sign in, and the service on
# http://127.0.0.1:8000 with the send worker (mail goes to var/outbox as .eml files).
DEMO_ADMIN ?= admin@demo.optout.dev
OPTOUT_DEMO_PASSWORD ?= optout-demo-password
export OPTOUT_DEMO_PASSWORD

.PHONY: run test test-fast lint bench bench-auto bench-workers bench-load bench-inbound bench-lock soak soak-claims clean

run: $(VENV)/.installed
	$(BIN)/optout demo
	$(BIN)/optout user add $(DEMO_ADMIN) --name "Demo Admin" --role admin \
	  --password-env OPTOUT_DEMO_PASSWORD
	@echo "Sign in at http://127.0.0.1:8000/login with workspace 'demo', $(DEMO_ADMIN)" \
	  "and password '$$OPTOUT_DEMO_PASSWORD' (set OPTOUT_DEMO_PASSWORD to choose another)."
	$(BIN)/optout serve --host 127.0.0.1 --port 8000

test: $(VENV)/.installed-test
	scripts/run-tests.sh

# The quick loop: the pure core and the SQLite half, no PostgreSQL, no browser.
PYTEST_ARGS ?=
# Bytecode is kept and two workers more than cores run, as `make test` does
# (scripts/run-tests.sh says why).
test-fast: $(VENV)/.installed-test
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest \
	  -n "$${OPTOUT_TEST_WORKERS:-$$(($$(nproc) + 2))}" \
	  --dist loadgroup -m "not postgres and not browser" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.enforcement
	$(BIN)/python -m bench.crm_sync
	$(BIN)/python -m bench.listing
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.inbound
	$(BIN)/python -m bench.lock_hold
	$(BIN)/python -m bench.auto_enroll

# Inbound mail through the product's inbound path (100,000 messages, 1,000,000 people), and
# the longest write-lock hold of a 500,000-row people import beside one-click unsubscribes.
bench-inbound: $(VENV)/.installed-test
	$(BIN)/python -m bench.inbound
bench-lock: $(VENV)/.installed-test
	$(BIN)/python -m bench.lock_hold

# 20 sequences enrolling by themselves on audiences of ~100,000 each, 1,000,000 people:
# what they add to a CRM sync page, a one-person write and an audience edit, and the time
# from a commit to the enrollment (`make bench-auto BENCH_AUTO_ARGS="--people 100000"`).
BENCH_AUTO_ARGS ?=
bench-auto: $(VENV)/.installed-test
	$(BIN)/python -m bench.auto_enroll $(BENCH_AUTO_ARGS)

# Worker scaling: 1, 2 and 4 `optout worker` processes drain BENCH_EMAILS due emails into
# a local SMTP server, on the throwaway PostgreSQL server of scripts/test-postgres.sh.
BENCH_EMAILS ?= 100000
BENCH_POSTGRES_PORT ?= 54329
bench-workers: $(VENV)/.installed-test
	$(BIN)/python -m bench.workers --emails $(BENCH_EMAILS) --database-url \
	  "$$(OPTOUT_TEST_POSTGRES_PORT=$(BENCH_POSTGRES_PORT) scripts/test-postgres.sh start)"

# The bounded load test of `optout serve` and a worker, on SQLite and on PostgreSQL.
bench-load: $(VENV)/.installed-test
	$(BIN)/python -m bench.load_service --database-url sqlite:///var/bench/load.sqlite3
	$(BIN)/python -m bench.load_service --database-url \
	  "$$(OPTOUT_TEST_POSTGRES_PORT=$(BENCH_POSTGRES_PORT) scripts/test-postgres.sh start)"

# Longer runs of the state machines than `make test` makes, per database: SOAK_RUNS runs of
# 40 steps of the decision index, SOAK_MODEL_RUNS runs of 50 steps of the whole delivery
# model. A failure prints its steps and a @reproduce_failure blob; `make soak SOAK_SEED=N`
# replays a whole soak (its seed is printed first).
SOAK_RUNS ?= 500
SOAK_MODEL_RUNS ?= 200
ifndef SOAK_SEED
SOAK_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
soak: $(VENV)/.installed-test
	@echo "soak seed $(SOAK_SEED): make soak SOAK_SEED=$(SOAK_SEED) replays this soak"
	OPTOUT_INDEX_MACHINE_RUNS=$(SOAK_RUNS) OPTOUT_DELIVERY_MODEL_RUNS=$(SOAK_MODEL_RUNS) \
	  scripts/run-tests.sh --hypothesis-seed=$(SOAK_SEED) \
	  tests/eligibility/test_index_stateful.py tests/system/test_delivery_model.py

# The claim/save race on PostgreSQL (R14) 20 times in a row beside a CPU load on every
# core; stops at the first failure. SOAK_CLAIMS_RUNS=N for another count.
SOAK_CLAIMS_RUNS ?= 20
soak-claims: $(VENV)/.installed-test
	scripts/soak-claims.sh $(SOAK_CLAIMS_RUNS)

$(VENV)/bin/python:
	@# Debian's python3 may lack ensurepip (python3-venv); then borrow the system pip.
	$(PYTHON) -m venv $(VENV) 2>/dev/null || \
	  { rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV) && \
	    $(PYTHON) -m pip --python $(BIN)/python install --quiet pip; }

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(VENV)/.installed $@

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
