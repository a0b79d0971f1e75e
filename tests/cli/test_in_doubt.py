"""`optout in-doubt`: list the emails in doubt, release or cancel one, set the policy."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db import tables as t
from optout.db.engine import create_engine
from optout.services.sequences.definitions import Step
from tests.cli.conftest import Cli
from tests.sending.lost_answers import worker_pass
from tests.sending.smtp_server import DroppingAfterData, smtp_server

STEPS = (Step(kind="email", subject="Hello", body_text="Hi"),)


def test_R35_in_doubt_commands_list_release_cancel_and_set_the_policy(cli: Cli) -> None:
    with cli.seed() as world:
        ann = world.person("ann@acme.com")
        ben = world.person("ben@acme.com")
        world.enroll(world.sequence("Outbound", steps=STEPS), [ann, ben])
    engine = create_engine(cli.url)
    try:
        with smtp_server(DroppingAfterData(times=2)) as port:
            assert worker_pass(engine, port, cli.now).in_doubt == 2
    finally:
        engine.dispose()

    listed = cli.json("in-doubt", "list")
    assert listed["resend_after_minutes"] is None
    ids = {item["to"]: item["email_id"] for item in listed["items"]}
    assert set(ids) == {"ann@acme.com", "ben@acme.com"}
    shown = cli.ok("in-doubt", "list").stdout
    assert "ann@acme.com" in shown
    assert "held until someone decides" in shown

    assert cli.json("in-doubt", "release", str(ids["ann@acme.com"]))["status"] == "queued"
    assert "is cancelled" in cli.ok("in-doubt", "cancel", str(ids["ben@acme.com"])).stdout
    refused = cli.run("in-doubt", "cancel", str(ids["ben@acme.com"]))
    assert refused.exit_code != 0
    assert "not in doubt" in refused.output
    o = t.outbound_emails
    assert cli.scalar(sa.select(o.c.status).where(o.c.person_id == ann)) == "queued"
    assert cli.scalar(sa.select(o.c.status).where(o.c.person_id == ben)) == "cancelled"
    actor = cli.scalar(sa.select(t.events.c.actor).where(t.events.c.kind == "email_cancelled"))
    assert actor == "tester@cli"

    assert cli.json("in-doubt", "policy", "--resend-after", "45") == {"resend_after_minutes": 45}
    assert "after 45 minutes" in cli.ok("in-doubt", "policy").stdout
    assert cli.json("in-doubt", "policy", "--hold") == {"resend_after_minutes": None}
