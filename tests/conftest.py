"""Fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from OPTOUT_TEST_POSTGRES_URL (scripts/run-tests.sh starts a
throwaway server). Without it the PostgreSQL half is skipped with one line that
says why, except in CI (CI=true), where it fails: a green CI must have run it.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from tests import cpu_report
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)


def pytest_configure(config: pytest.Config) -> None:
    cpu_report.register(config)


def missing(reason: str) -> NoReturn:
    """Skip a test whose server or browser is missing here; in CI (CI=true), fail it: a
    green CI must have run every test."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def postgres_server_url() -> str:
    url = os.environ.get("OPTOUT_TEST_POSTGRES_URL", "")
    if not url:
        missing("no PostgreSQL for tests: OPTOUT_TEST_POSTGRES_URL is unset (make test starts one)")
    return url


def worker_name() -> str:
    """The pytest-xdist worker running this process ("gw0", "gw1", ...), or "main"."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def unique_database_name(kind: str) -> str:
    """A PostgreSQL database name no other test, worker or run on the server can take."""
    return f"optout_{kind}_{worker_name()}_{uuid.uuid4().hex[:12]}"


@functools.cache
def postgres_admin(server: str) -> Engine:
    """One autocommit connection pool per process for CREATE and DROP DATABASE."""
    return create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def postgres_database_url(server: str, name: str) -> str:
    url = sa.make_url(server).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def create_postgres_database(server: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` (empty, or a copy of `template`) and return its URL. A copy
    is taken file by file, which on the test server (fsync off) beats writing it through
    the WAL; the template must have no open connection."""
    admin = postgres_admin(server)
    with admin.connect() as connection:
        if template is None:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        else:
            version = connection.dialect.server_version_info or (0,)
            strategy = " STRATEGY FILE_COPY" if version >= (15,) else ""
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
    return postgres_database_url(server, name)


def drop_postgres_database(server: str, name: str) -> None:
    with postgres_admin(server).connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_private(source: Path, target: Path) -> None:
    """Copy a SQLite file into a new file readable by its owner only, as `create_engine`
    would have created it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    shutil.copyfile(source, target)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session (per xdist worker) that tests copy: a copy
    takes a millisecond where running every migration takes about a second."""
    path = tmp_path_factory.mktemp("sqlite-template") / "optout.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    leftover = path.with_name(path.name + "-wal")
    assert not leftover.exists() or leftover.stat().st_size == 0, "template WAL not checkpointed"
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session (per xdist worker); tests get
    `CREATE DATABASE ... TEMPLATE` copies of it. Nothing connects to it after migrating."""
    server = postgres_server_url()
    name = unique_database_name("template")
    engine = create_engine(create_postgres_database(server, name))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    try:
        yield name
    finally:
        drop_postgres_database(server, name)


class SpareDatabases:
    """Copies of the worker's migrated PostgreSQL template, each made while the test before
    it runs: `CREATE DATABASE ... TEMPLATE` waits for a checkpoint of the whole server
    (half a second to more than a second with other tests writing), which a test then no
    longer waits for. One background thread makes the copies and drops the used ones, in
    order; a drop that failed fails the session's end."""

    def __init__(self, server: str, template: str) -> None:
        self.server = server
        self.template = template
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spare-database")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def _copy(self) -> str:
        name = unique_database_name("test")
        create_postgres_database(self.server, name, template=self.template)
        return name

    def take(self) -> str:
        """The name of a new copy, for this test alone; the next copy starts at once."""
        ready = self._next or self._thread.submit(self._copy)
        self._next = None
        name = ready.result()  # a failed copy raises here, in the test that needed it
        self._next = self._thread.submit(self._copy)
        return name

    def give_back(self, name: str) -> None:
        self._drops.append(self._thread.submit(drop_postgres_database, self.server, name))

    def close(self) -> None:
        # The copy nobody took (a failed copy left nothing behind to drop).
        if self._next is not None and self._next.exception() is None:
            self.give_back(self._next.result())
        self._thread.shutdown(wait=True)
        for drop in self._drops:
            drop.result()


@pytest.fixture(scope="session")
def postgres_spares(postgres_template: str) -> Iterator[SpareDatabases]:
    spares = SpareDatabases(postgres_server_url(), postgres_template)
    try:
        yield spares
    finally:
        spares.close()


@contextmanager
def migrated_database(request: pytest.FixtureRequest, kind: str, folder: Path) -> Iterator[str]:
    """The URL of a new migrated database of `kind` ("sqlite" or "postgresql"), a copy of
    the session's template: the SQLite file goes in `folder`; the PostgreSQL database is
    dropped afterwards."""
    if kind == "sqlite":
        path = folder / "optout.sqlite3"
        copy_private(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    spares: SpareDatabases = request.getfixturevalue("postgres_spares")
    name = spares.take()
    try:
        yield postgres_database_url(spares.server, name)
    finally:
        spares.give_back(name)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated database of each kind, shared by the session (by one xdist worker)."""
    with migrated_database(request, request.param, tmp_path_factory.mktemp("shared")) as url:
        shared = create_engine(url)
        yield shared
        shared.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A new, empty, migrated database for one test: for code that commits, like the
    worker and the web app, where a rolled-back transaction would hide the data."""
    with migrated_database(request, request.param, tmp_path) as url:
        fresh = create_engine(url)
        yield fresh
        fresh.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def world(db: Connection, now: datetime) -> World:
    return World(db, now)


def needs_postgresql(item: pytest.Item) -> bool:
    """A test of the PostgreSQL half: a `postgresql` parameter (of `engine`, `fresh_engine`
    and the like), or, with no database parameter, a test that asks for the server itself
    or through one of its fixtures."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = {value for value in params.values() if isinstance(value, str)}
    if values & {"postgresql", "sqlite"}:
        return "postgresql" in values
    info = getattr(item, "_fixtureinfo", None)
    definitions = getattr(info, "name2fixturedefs", {}).values()
    functions = [getattr(item, "function", None), *(d.func for ds in definitions for d in ds)]
    return any(_mentions(function, f"{postgres_server_url.__name__}(") for function in functions)


def _mentions(function: object, text: str) -> bool:
    return callable(function) and text in _source(function)


@functools.cache
def _source(function: object) -> str:
    """A function's source, read once per process: the same fixtures serve thousands of
    tests, and reading a function's source parses its file's lines again each time."""
    try:
        return inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


# The longest tests, by test function, with about how many seconds each of its cases takes
# on the 2-core CI machine. They are handed out first: one of them started near the end of
# a run keeps its worker busy while the others sit idle. A browser test not listed counts
# as BROWSER_SECONDS; every other test keeps its place after these.
LONGEST_FIRST = {
    # system/test_busy_database.py
    "test_R3_one_click_opt_outs_are_never_lost_beside_long_writes": 80,
    # browser/test_every_page.py
    "test_every_page_fits_the_window_passes_axe_and_logs_nothing": 70,
    # system/test_delivery_model.py
    "test_R1_R28_nobody_opted_out_or_ineligible_is_emailed_and_nobody_twice": 60,
    # web/api/test_openapi_fuzz.py
    "test_R34_generated_requests_never_get_a_server_error": 60,
    # sending/test_mailbox_limits_concurrency.py
    "test_R37_four_workers_send_each_mailbox_s_daily_limit_spaced_by_its_gap": 33,
    # eligibility/test_index_stateful.py
    "test_R14_decision_index_stays_true_under_random_writes_and_clock_moves": 25,
    # eligibility/test_index_readers.py
    "test_R29_explain_reads_the_same": 20,
    # inbound/test_bounce_corpus.py
    "test_R7_real_bounces_from_real_servers_are_caught": 18,
    # eligibility/test_parity.py
    "test_R16_eligible_set_sql_agrees_with_decide": 15,
}
BROWSER_SECONDS = 15


def expected_seconds(item: pytest.Item, browser_folder: Path) -> int:
    known = LONGEST_FIRST.get(getattr(item, "originalname", item.name))
    if known is not None:
        return known
    return BROWSER_SECONDS if browser_folder in item.path.parents else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the PostgreSQL half and the browser tests, so `make test-fast` can leave them
    out with `-m "not postgres and not browser"`; put the longest tests first (xdist hands
    tests out in this order: `--dist loadgroup` keeps it for tests not in a group)."""
    browser_folder = Path(__file__).parent / "browser"
    for item in items:
        if needs_postgresql(item):
            item.add_marker(pytest.mark.postgres)
        if browser_folder in item.path.parents:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: -expected_seconds(item, browser_folder))
