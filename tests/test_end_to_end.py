"""From a CSV to a sent email to a one-click unsubscribe, over the real parts: a database
of each kind, the worker, an SMTP server (aiosmtpd), the web app under uvicorn, HTTP
(R1, R3, R23, R26, R28)."""

from __future__ import annotations

import email
import io
from datetime import datetime, timedelta
from email import policy

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.sending.transports import SmtpTransport
from optout.sending.worker import Mailer, run_once
from optout.services import workspaces
from optout.services.enrollments import enrolling
from optout.services.imports import people_files
from optout.services.sequences import definitions, rulesets
from optout.web.app import create_app
from tests.sending.smtp_server import Recorder, smtp_server
from tests.web.conftest import serving

T0 = datetime(2026, 11, 2, 9, 0)
KEYS = ("end-to-end-secret-key-0123456789",)
PEOPLE_CSV = """Email,First name,Title,Company domain
ann@acme.com,Ann,CTO,acme.com
ben@acme.com,Ben,VP Engineering,acme.com
"""


def _seed(engine: Engine) -> tuple[int, int]:
    with engine.begin() as db:
        ws = workspaces.create(db, slug="acme-sales", name="Acme Sales", now=T0)
        report = people_files.import_people(
            db,
            workspace_id=ws.id,
            source=io.StringIO(PEOPLE_CSV),
            mapping={
                "Email": "email",
                "First name": "first_name",
                "Title": "title",
                "Company domain": "company_domain",
            },
            actor="ops@acme-sales.com",
            now=T0,
        )
        assert (report.applied, report.created) == (True, 2)
        rulesets.create(db, workspace_id=ws.id, name="Default", now=T0)
        sequence_id = definitions.create(
            db,
            workspace_id=ws.id,
            name="Intro",
            ruleset="Default",
            from_address="Sam <sam@acme-sales.com>",
            steps=[
                definitions.Step("email", subject="Hi {{ person.first_name }}", body_text="One"),
                definitions.Step("wait", wait_seconds=2 * 86400),
                definitions.Step("email", subject="Following up", body_text="Two"),
            ],
            now=T0,
        )
        p = t.people
        ids = list(db.scalars(sa.select(p.c.id).where(p.c.workspace_id == ws.id)))
        done = enrolling.enroll(
            db, workspace_id=ws.id, sequence_id=sequence_id, people=ids, actor="ops", now=T0
        )
        assert done.enrolled == 2
        return ws.id, sequence_id


def test_R3_import_enroll_send_one_click_unsubscribe_then_next_pass_skips_only_that_person(
    fresh_engine: Engine,
) -> None:
    _, sequence_id = _seed(fresh_engine)
    handler = Recorder()
    with smtp_server(handler) as smtp_port:
        probe = create_app(Settings(database_url="unused://", secret_keys=KEYS), fresh_engine)
        with serving(probe) as base_url:
            settings = Settings(database_url="unused://", secret_keys=KEYS, base_url=base_url)
            transport = SmtpTransport("127.0.0.1", smtp_port, security="none", timeout=5)
            mailer = Mailer(settings, transport)
            first = run_once(fresh_engine, mailer=mailer, now=T0)
            assert first.sent == 2
            to_ann = next(r for r in handler.received if r.recipients == ["ann@acme.com"])
            message = email.message_from_bytes(to_ann.content, policy=policy.default)
            header = str(message["List-Unsubscribe"])
            link = header[header.index("<") + 1 : header.index(">")]
            assert link.startswith(base_url + "/u/")

            with httpx.Client(follow_redirects=False, timeout=10) as http:
                page = http.get(link)
                assert page.status_code == 200
                assert "Unsubscribe" in page.text
                clicked = http.post(
                    link,
                    content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            assert clicked.status_code == 200
            assert "location" not in clicked.headers

            second = run_once(fresh_engine, mailer=mailer, now=T0 + timedelta(days=2))
            transport.close()
    assert second.sent == 1
    followups = [r.recipients for r in handler.received if b"Subject: Following up" in r.content]
    assert followups == [["ben@acme.com"]]
    e, p = t.enrollments, t.people
    with fresh_engine.connect() as db:
        statuses = dict(
            db.execute(
                sa.select(p.c.email, e.c.status)
                .join(p, p.c.id == e.c.person_id)
                .where(e.c.sequence_id == sequence_id)
            ).all()
        )
    assert statuses == {"ann@acme.com": "opted_out", "ben@acme.com": "finished"}
