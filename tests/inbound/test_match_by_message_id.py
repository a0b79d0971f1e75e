"""Inbound mail is matched to the email it answers through an index on the sent emails'
Message-IDs, never by reading every email sent (R5, R7, R36): a workspace that has sent
for a year holds millions of them. SQLite, which keeps no statistics on a column's
values unless asked, is told that nearly every email is sent; PostgreSQL plans by the
statistics its autovacuum keeps, which a test's few rows do not give, so the plan is
checked on SQLite."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from optout.inbound import process_message
from tests.factories import World
from tests.inbound.helpers import OPTIONS, corpus, readdress, sent_world


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_R5_a_reply_finds_the_email_it_answers_by_an_index_on_message_ids(world: World) -> None:
    s = sent_world(world)
    sent: list[tuple[str, Any]] = []

    def keep(_c: object, _cur: object, statement: str, params: Any, *_: object) -> None:
        if "outbound_emails.message_id IN" in statement:
            sent.append((statement, params))

    raw = readdress(corpus("reply_gmail.eml"), In_Reply_To=s.message_ids["ann"])
    sa.event.listen(world.db, "before_cursor_execute", keep)
    try:
        result = process_message(world.db, raw=raw, now=world.now, source="test", options=OPTIONS)
    finally:
        sa.event.remove(world.db, "before_cursor_execute", keep)
    assert (result.outcome, result.match_by) == ("replied", "in_reply_to")
    assert sent, "the match by Message-ID was not asked"
    for statement, params in sent:
        plan = _plan(world.db, statement, params)
        assert "ix_outbound_emails_message_id" in plan, plan


def _plan(db: sa.Connection, statement: str, params: Any) -> str:
    rows = db.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
    return "\n".join(str(row[3]) for row in rows)
