"""A feedback-loop report posted to `POST /api/v1/inbound` (R36): the route reads the
site's link keys, so the CFBL-Feedback-ID finds the person; not-spam changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa

from optout.db import tables as t
from optout.mail.tokens import UnsubscribeTokens
from tests.factories import World
from tests.inbound.helpers import sent_world
from tests.inbound.test_complaints import FOREIGN_ID, email_of, report
from tests.web.api.conftest import Api
from tests.web.conftest import KEYS

Committed = Callable[[], AbstractContextManager[World]]


def test_R36_inbound_route_takes_complaint_reports(api: Api, committed: Committed) -> None:
    feedback_ids = UnsubscribeTokens(KEYS).feedback_ids
    with committed() as world:
        keys = api.keys(world)
        s = sent_world(world)
        ids = {
            name: feedback_ids.issue(
                workspace_id=s.ws, sequence_id=s.seq, email_id=email_of(world.db, s.ids[name])[0]
            )
            for name in ("ann", "ben")
        }
        redacted = report(
            s, "cfbl_redacted_headers_only.eml", "ann", message_id=FOREIGN_ID, cfbl_id=ids["ann"]
        )
        not_spam = report(s, "not_spam.eml", "ben", cfbl_id=ids["ben"])
        ws = s.ws
    http = api.client(keys.member, **{"Content-Type": "message/rfc822"})
    complained = http.post("/inbound", content=redacted)
    kept = http.post("/inbound", content=not_spam)
    assert complained.status_code == 200, complained.text
    assert (complained.json()["kind"], complained.json()["outcome"]) == ("complaint", "complained")
    assert complained.json()["match_by"] == "cfbl_feedback_id"
    assert (kept.json()["kind"], kept.json()["outcome"]) == ("complaint", "not_spam")
    x = t.suppressions
    with api.engine.connect() as db:
        rows = db.execute(sa.select(x.c.email, x.c.kind).where(x.c.workspace_id == ws)).all()
    assert rows == [("ann@acme.com", "complaint")]
