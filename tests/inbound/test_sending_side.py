"""A refusal of our own side is nobody's bounce (R7): our sender refused (5.1.7, 5.1.8,
"sender address rejected", a refusal after MAIL FROM, SPF or DMARC), our server on a
blocklist or rate-limited, and reports that say the message was relayed or expanded.
Each is processed through the inbound path for a person we emailed: nobody is marked,
no soft bounce is counted, the sequence goes on, and a refusal is recorded against the
sending side with the email it refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.inbound import process_message
from tests.factories import World
from tests.inbound.helpers import CORPUS, OPTIONS, sent_world

SENDING_SIDE = sorted(p.name for p in (CORPUS / "sending_side").glob("*.eml"))
NO_FAILURE = {"rfc3464_relayed.eml", "rfc3464_expanded.eml"}


@pytest.mark.parametrize("name", SENDING_SIDE)
def test_R7_a_refusal_of_our_side_marks_nobody(world: World, name: str) -> None:
    sent = sent_world(world)
    raw = (CORPUS / "sending_side" / name).read_bytes()
    result = process_message(
        world.db, raw=raw, now=world.now, source="test", workspace_id=world.ws, options=OPTIONS
    )
    db = world.db
    assert result.kind == "bounce", result.evidence
    assert db.scalar(sa.select(sa.func.count()).select_from(t.suppressions)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(t.inbound_soft_bounces)) == 0
    assert sent.status("ann") == "in_progress"
    e = t.events
    refused = db.execute(
        sa.select(e.c.email_id, e.c.person_id, e.c.detail).where(e.c.kind == "sending_refused")
    ).all()
    if name in NO_FAILURE:
        assert result.outcome == "ignored"
        assert refused == []
        return
    assert result.outcome == "sending_refused"
    ((email_id, person_id, detail),) = refused
    assert email_id == result.email_id
    assert person_id is None
    assert detail["email"] == "ann@acme.com"
    assert detail["why"]
