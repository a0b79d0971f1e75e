"""Spam complaints per sequence on the dashboard (R36): each sequence's last sends, the
share a complaint report was matched to, beside Gmail's 0.1% and 0.3% lines."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.web.pages import reads
from tests.factories import World
from tests.inbound.helpers import send_due, sent_world
from tests.inbound.test_complaints import process, report
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"
PEOPLE = ("ann@acme.com", "ben@acme.com", "cat@acme.com", "dan@acme.com")


def test_R36_complaint_rate_counts_each_sequences_last_sends(world: World) -> None:
    s = sent_world(world, PEOPLE)
    idle = world.sequence("Never sent")
    assert process(s, report(s, "yahoo_cfl.eml", "ann")).outcome == "complained"
    assert process(s, report(s, "not_spam.eml", "ben")).outcome == "not_spam"  # not counted
    [rate] = reads.complaint_rates(world.db, workspace_id=s.ws)
    assert (rate.sequence_id, rate.name, rate.sends, rate.complaints) == (s.seq, "Outbound", 4, 1)
    assert (rate.rate, rate.level) == (0.25, "above_limit")
    assert idle not in {r.sequence_id for r in reads.complaint_rates(world.db, workspace_id=s.ws)}
    # Step 2 goes to the three left; the window keeps only the most recent sends.
    assert len(send_due(world.db, world.now + timedelta(days=2, hours=4))) == 3
    counted = {
        window: (r.sends, r.complaints)
        for window in (3, 6, 1000)
        for r in reads.complaint_rates(world.db, workspace_id=s.ws, window=window)
    }
    assert counted == {3: (3, 0), 6: (6, 0), 1000: (7, 1)}


def test_R36_complaint_levels_follow_gmails_lines() -> None:
    def level(complaints: int) -> str:
        return reads.ComplaintRate(1, "s", 1000, complaints).level

    assert [level(n) for n in (0, 0, 1, 2, 3, 9)] == [
        "ok",
        "ok",
        "above_target",
        "above_target",
        "above_limit",
        "above_limit",
    ]
    assert reads.ComplaintRate(1, "s", 0, 0).rate == 0.0


def test_R36_dashboard_shows_complaint_rates_beside_gmails_lines(
    web: Web,
    engine: Engine,
    committed: Callable[[], AbstractContextManager[World]],
    now: datetime,
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        s = sent_world(world, PEOPLE)
        process(s, report(s, "microsoft_jmrp.eml", "cat"))
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        slug = world.workspace.slug
    try:
        token = csrf_token_in(web.http.get("/login").text)
        signed_in = web.http.post(
            "/login",
            data={"workspace": slug, "email": user, "password": PASSWORD, "csrf_token": token},
        )
        assert signed_in.status_code == 303
        page = web.http.get("/")
        assert page.status_code == 200
        section = page.text[page.text.index('id="complaint-rates"') :]
        section = section[: section.index("</section>")]
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))
        assert "Spam complaints per sequence" in text
        assert "last 1,000 emails sent" in text
        assert "stay below 0.1% and never to reach 0.3%" in text
        assert re.search(r"Outbound 4 1 25\.00% At or above Gmail's 0\.3% limit", text), text
        assert "R36" not in page.text
    finally:
        with engine.begin() as db:
            db.execute(t.users.delete().where(t.users.c.email == user))
