"""Every PostgreSQL session optout opens runs without JIT compiling, which cost more than
the whole of a one-person enrollment at 1,000,000 people; options the database URL sets
are kept beside it."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db.engine import create_engine
from tests.conftest import postgres_server_url


def _settings(url: str) -> tuple[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return (
                str(db.exec_driver_sql("SHOW jit").scalar()),
                str(db.exec_driver_sql("SHOW statement_timeout").scalar()),
            )
    finally:
        engine.dispose()


def test_sessions_run_without_jit_and_keep_the_urls_options() -> None:
    server = sa.make_url(postgres_server_url())
    assert _settings(server.render_as_string(hide_password=False)) == ("off", "0")
    with_options = server.update_query_dict({"options": "-c statement_timeout=5000"})
    assert _settings(with_options.render_as_string(hide_password=False)) == ("off", "5s")
