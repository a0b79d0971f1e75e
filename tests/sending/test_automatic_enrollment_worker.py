"""The running worker enrolls a new member of an actively enrolling audience between its
sending passes, and the first email goes out over real SMTP without waiting for the next
pass (R41, R26)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.config import Settings
from optout.db import tables as t
from optout.sending.transports import SmtpTransport
from optout.sending.worker import Mailer, run_forever
from optout.services.directory import people
from optout.services.enrollments import automatic
from optout.services.sequences import auto_enroll, definitions
from tests.factories import World
from tests.sending.smtp_server import HOST, Recorder, smtp_server

KEYS = ("auto-enroll-worker-key-0123456789",)
STEPS = (definitions.Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi"),)
# Far longer than the test waits: anything sent came from the enrollment between passes.
POLL_SECONDS = 3600.0
PATIENCE_SECONDS = 120.0


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_R41_a_new_member_is_enrolled_and_emailed_while_the_worker_waits_for_its_next_pass(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.begin() as db:
        world = World(db, utcnow())
        world.ruleset()
        world.audience("CTOs", filter='person.title contains "cto"')
        definitions.create(
            db,
            workspace_id=world.ws,
            name="Tech",
            ruleset="Default",
            audience="CTOs",
            steps=STEPS,
            from_address="Sam Seller <sam@acme-sales.com>",
            now=world.now,
        )
        auto_enroll.switch(
            db, workspace_id=world.ws, sequence="Tech", on=True, actor="admin", now=world.now
        )
        ws = world.ws
    recorder = Recorder()
    stop = threading.Event()
    with (
        smtp_server(recorder) as port,
        SmtpTransport(HOST, port, security="none", timeout=10, retries=2) as transport,
    ):
        mailer = Mailer(Settings(database_url="unused://", secret_keys=KEYS), transport)
        worker = threading.Thread(
            target=run_forever,
            args=(fresh_engine,),
            kwargs={"mailer": mailer, "stop": stop, "poll_seconds": POLL_SECONDS},
        )
        worker.start()
        try:
            # The first pass has run (nobody to send to) and the worker now waits an hour.
            time.sleep(1)
            with fresh_engine.begin() as db:
                people.create(
                    db,
                    workspace_id=ws,
                    email="pat@initech.net",
                    first_name="Pat",
                    title="CTO",
                    now=utcnow(),
                )
            assert _wait_for(lambda: len(recorder.received) == 1, PATIENCE_SECONDS)
        finally:
            stop.set()
            worker.join(timeout=60)
    (message,) = recorder.received
    assert message.recipients == ["pat@initech.net"]
    with fresh_engine.connect() as db:
        e = t.enrollments
        assert db.scalar(sa.select(e.c.enrolled_by)) == automatic.ACTOR
