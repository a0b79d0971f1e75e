"""Nobody who opted out is emailed, and nobody is emailed twice: a model of the whole
system (R1, R3, R4, R5, R7, R13, R14, R16, R28, R33, R35).

A hypothesis state machine runs one workspace through the product's own ways in: people,
companies, links, deals and contact roles created and edited; exclusions saved, edited
and toggled; opt-outs by every channel (the hosted unsubscribe page, the one-click POST,
the List-Unsubscribe mailto, a reply asking to unsubscribe, a HubSpot sync saying opted
out, a CSV import, a manual opt-out); hard bounces at the SMTP server and in bounce
reports; replies and out-of-office answers; enrollments by hand and from an audience;
pauses and ruleset switches; the clock moving; and worker passes (the worker's own
`run_once`, as the CLI calls it) delivering over a real SMTP server on loopback, which
judges every message before it accepts it (tests/system/rig.py).

After every step: no message was accepted for a person who was ineligible when its
claim committed, or whose address had been opted out or bounced; no step of an
enrollment was delivered twice; opted-out and bounced addresses have no active
enrollment and no queued email; opt-outs stay; every ended enrollment and every
cancelled email has its event.
"""

from __future__ import annotations

import io
import itertools
import os
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.crm import connections, sync
from optout.db import tables as t
from optout.errors import OptoutError
from optout.inbound import InboundOptions
from optout.inbound.process import process_message
from optout.normalize import normalize_email
from optout.sending.worker import run_once
from optout.services import workspaces
from optout.services.directory import companies, opportunities, people
from optout.services.enrollments import enrolling, refresh
from optout.services.exclusions import saves
from optout.services.imports import people_files
from optout.services.sequences import audiences, definitions, rulesets
from optout.services.suppression import optouts
from tests.inbound.helpers import corpus, reply
from tests.state_machine_parts import runs_of_part, seeded_part
from tests.system.rig import CRM_ENV, Accepted, Rig, rig

ACTOR = "model@optout"
SENDER = "Sam Seller <sam@acme-sales.com>"
# 100 runs of 50 steps on each database: 10,000 steps per CI run; `make soak` runs more
# (OPTOUT_DELIVERY_MODEL_RUNS). The runs are shared by PARTS tests, which xdist spreads
# over its workers.
STEPS_PER_RUN = 50
RUNS = int(os.environ.get("OPTOUT_DELIVERY_MODEL_RUNS", "100"))
PARTS = 4
_slugs = itertools.count()

DOMAINS = ("acme.com", "globex.io", "initech.com", "hooli.io")
MAIL_DOMAINS = (*DOMAINS, "gmail.com")
LOCAL_PARTS = ("ann", "bob", "cy", "dee", "Ed")
TITLES = ("CTO", "Head of Sales", "Sales Intern", "VP Engineering", "")
STATUSES = ("", "Customer", "Lead", "Do Not Contact")
STAGES = ("negotiation", "closedwon", "prospecting")
PEOPLE_RULES = (
    'person.title contains "sales"',
    'person.status = "Do Not Contact"',
    "person.email_domain = globex.io",
    "person.has_opportunity = true",
    "person.fields.tier = gold",
    "person.last_replied_at within last 7 days",
    "person.email_domain is personal",
    'not person.title contains "cto"',
    "person.created_at older than 3 days",  # comes to match as time passes
)
COMPANY_RULES = (
    "company.domain in (acme.com, initech.com)",
    "company.domain = hooli.io",
    "company.last_replied_at within last 30 days",
    "opportunity.stage = negotiation",
    "opportunity.is_closed = false",
    'company.name contains "globex"',
    "company.created_at older than 10 days",
)
MANUAL = (
    definitions.Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi"),
    definitions.Step(kind="wait", wait_seconds=86_400),
    definitions.Step(kind="email", subject="Following up", body_text="Any news?"),
    definitions.Step(kind="wait", wait_seconds=2 * 86_400),
    definitions.Step(kind="email", subject="Last one", body_text="Closing the loop."),
)
FROM_AUDIENCE = (
    definitions.Step(kind="wait", wait_seconds=3_600),  # a delay node (R32)
    definitions.Step(kind="email", subject="Welcome", body_text="Hi"),
    definitions.Step(kind="email", subject="Straight after", body_text="And one more thing."),
)
CLOCK_MOVES = st.sampled_from(
    [timedelta(minutes=minutes) for minutes in (5, 60, 1_440, 2_880, 11_520, 44_640)]
)
REPLIES = {
    "unsubscribe": ("Please unsubscribe me and stop emailing me.", {}),
    "interested": ("Sounds interesting, can we talk on Tuesday?", {}),
    "out_of_office": (
        "I am out of the office until Monday with no access to email.",
        {"Auto-Submitted": "auto-replied", "Subject": "Automatic reply: out of office"},
    ),
}


# Rows and accepted messages are chosen by a position drawn from a fixed range, taken modulo
# how many there are: the shape of every draw is then the same whatever the database and
# the SMTP server hold, so hypothesis sees one consistent choice tree across runs.
POSITIONS = st.integers(0, 255)
T = TypeVar("T")


def _choose(data: st.DataObject, items: Sequence[T]) -> T | None:
    position = data.draw(POSITIONS)
    return items[position % len(items)] if items else None


def address_of(raw: str) -> str:
    return normalize_email(raw).address


class DeliveryModel(RuleBasedStateMachine):
    def __init__(self, rig: Rig) -> None:
        super().__init__()
        self.rig = rig
        self.engine: Engine = rig.engine
        self.now = utcnow().replace(microsecond=0)  # the web app and the sync read the clock
        self.ws = 0
        self.contacts: dict[str, str] = {}  # address -> HubSpot contact id
        self.crm_changes = 0
        self.connection_id = 0
        self.exclusion_names: list[str] = []
        self.sequence_ids: dict[str, int] = {}
        self.ruleset_ids: dict[str, int] = {}

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.begin() as db:
            yield db

    def teardown(self) -> None:
        if self.ws:
            with self.write() as db:
                db.execute(t.workspaces.delete().where(t.workspaces.c.id == self.ws))

    # The workspace -------------------------------------------------------------------------

    @initialize(
        exclusions_on=st.sampled_from([True, True, False]),
        cooldown=st.sampled_from([0, 7]),
        cap=st.sampled_from([None, 2]),
        audience=st.sampled_from([None, 'not person.title contains "intern"']),
    )
    def workspace(
        self, exclusions_on: bool, cooldown: int, cap: int | None, audience: str | None
    ) -> None:
        slug = f"model-{next(_slugs)}-{uuid.uuid4().hex[:6]}"
        with self.write() as db:
            self.ws = workspaces.create(db, slug=slug, name="Model Co", now=self.now).id
            self.ruleset_ids["Manual"] = rulesets.create(
                db, workspace_id=self.ws, name="Manual", now=self.now, max_active_per_company=cap
            )
            self.ruleset_ids["Automatic"] = rulesets.create(
                db,
                workspace_id=self.ws,
                name="Automatic",
                now=self.now,
                exclusions_enabled=exclusions_on,
                reenroll_cooldown_days=cooldown,
            )
            audiences.create(
                db, workspace_id=self.ws, name="Everyone", filter=audience, now=self.now
            )
            for name, ruleset, steps, source in (
                ("Manual", "Manual", MANUAL, None),
                ("Automatic", "Automatic", FROM_AUDIENCE, "Everyone"),
            ):
                self.sequence_ids[name] = definitions.create(
                    db,
                    workspace_id=self.ws,
                    name=name,
                    ruleset=ruleset,
                    audience=source,
                    steps=steps,
                    from_address=SENDER,
                    now=self.now,
                )
            self.connection_id = connections.connect(
                db,
                workspace_id=self.ws,
                kind="hubspot",
                base_url=self.rig.hubspot.url,
                secrets={
                    "token": "OPTOUT_TEST_HUBSPOT_TOKEN",
                    "webhook_secret": "OPTOUT_TEST_HUBSPOT_SECRET",
                },
                settings={"requests_per_10s": None, "search_per_second": None},
                now=self.now,
            ).id
        self.rig.hubspot.clear()
        self.rig.smtp.start_run(workspace_id=self.ws)
        # A starting team, imported as a CSV and enrolled at once, so sends start early.
        team = "\n".join(
            f"{local}@{domain},{domain if domain in DOMAINS else ''},{title}"
            for local, domain, title in zip(
                LOCAL_PARTS, (*DOMAINS, "gmail.com"), TITLES, strict=True
            )
        )
        with self.write() as db:
            people_files.import_people(
                db,
                workspace_id=self.ws,
                source=io.StringIO(f"Email,Website,Title\n{team}\n"),
                mapping={"Email": "email", "Website": "company_domain", "Title": "title"},
                actor=ACTOR,
                now=self.now,
            )
            enrolling.enroll(
                db,
                workspace_id=self.ws,
                sequence_id=self.sequence_ids["Manual"],
                people=self._ids(t.people, db),
                actor=ACTOR,
                now=self.now,
            )
        note(f"workspace {slug}: exclusions {exclusions_on}, cooldown {cooldown}, cap {cap}")

    def _ids(self, table: sa.Table, db: Connection | None = None) -> list[int]:
        query = sa.select(table.c.id).where(table.c.workspace_id == self.ws).order_by(table.c.id)
        if db is not None:
            return list(db.scalars(query))
        with self.engine.connect() as reader:
            return list(reader.scalars(query))

    def _pick(self, data: st.DataObject, table: sa.Table) -> int | None:
        return _choose(data, self._ids(table))

    def _suppressed(self, address: str, how: str) -> None:
        self.rig.smtp.suppressed.setdefault(address_of(address), how)
        note(f"{address}: {how}")

    @property
    def accepted(self) -> list[Accepted]:
        return self.rig.smtp.accepted

    # People, companies, deals --------------------------------------------------------------

    @rule(
        local=st.sampled_from(LOCAL_PARTS),
        domain=st.sampled_from(MAIL_DOMAINS),
        title=st.sampled_from(TITLES),
        with_company=st.booleans(),
    )
    def add_person(self, local: str, domain: str, title: str, with_company: bool) -> None:
        with self.write() as db:
            company_id = None
            if with_company and domain in DOMAINS:
                try:
                    company_id = companies.get_id(db, workspace_id=self.ws, domain=domain)
                except OptoutError:
                    company_id = None
            people.create(
                db,
                workspace_id=self.ws,
                email=f"{local}@{domain}",
                company_id=company_id,
                title=title,
                first_name=local.title(),
                now=self.now,
            )

    @rule(
        data=st.data(),
        change=st.sampled_from(["title", "status", "company_id", "fields"]),
    )
    def edit_person(self, data: st.DataObject, change: str) -> None:
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        value: object
        if change == "company_id":
            value = self._pick(data, t.companies) if data.draw(st.booleans()) else None
        elif change == "fields":
            value = {"tier": data.draw(st.sampled_from(["gold", "silver"]))}
        else:
            value = data.draw(st.sampled_from(TITLES if change == "title" else STATUSES))
        with self.write() as db:
            people.update(
                db,
                workspace_id=self.ws,
                person_id=person_id,
                changes={change: value},
                actor=ACTOR,
                now=self.now,
            )

    @rule(
        data=st.data(),
        change=st.sampled_from(["add", "replied", "link", "unlink"]),
        domain=st.sampled_from(DOMAINS),
        days_ago=st.none() | st.integers(0, 60),
    )
    def company_change(
        self, data: st.DataObject, change: str, domain: str, days_ago: int | None
    ) -> None:
        """A company is added, someone there replies (or the date is cleared), or two
        companies are linked or unlinked."""
        if change == "add":
            try:
                with self.write() as db:
                    companies.create(db, workspace_id=self.ws, domain=domain, now=self.now)
            except OptoutError:
                pass  # it exists
            return
        one, other = self._pick(data, t.companies), self._pick(data, t.companies)
        if one is None or other is None:
            return
        try:
            with self.write() as db:
                if change == "replied":
                    when = None if days_ago is None else self.now - timedelta(days=days_ago)
                    companies.update(
                        db,
                        workspace_id=self.ws,
                        company_id=one,
                        changes={"last_replied_at": when},
                        actor=ACTOR,
                        now=self.now,
                    )
                elif change == "link":
                    companies.link(
                        db, workspace_id=self.ws, parent_id=one, child_id=other, now=self.now
                    )
                else:
                    companies.unlink(db, workspace_id=self.ws, child_id=other, now=self.now)
        except OptoutError:
            return  # a cycle, or no parent to leave

    @rule(
        data=st.data(),
        change=st.sampled_from(["new", "edit", "contact"]),
        stage=st.sampled_from(STAGES),
    )
    def deal_change(self, data: st.DataObject, change: str, stage: str) -> None:
        """A deal is opened at a company, moves stage or closes, or gains a contact role."""
        closed = stage == "closedwon"
        target = self._pick(data, t.companies if change == "new" else t.opportunities)
        person_id = self._pick(data, t.people)
        if target is None or person_id is None:
            return
        try:
            with self.write() as db:
                if change == "new":
                    opportunities.create(
                        db,
                        workspace_id=self.ws,
                        company_id=target,
                        now=self.now,
                        stage=stage,
                        is_closed=closed,
                        is_won=closed,
                    )
                elif change == "edit":
                    opportunities.update(
                        db,
                        workspace_id=self.ws,
                        opportunity_id=target,
                        changes={"stage": stage, "is_closed": closed, "is_won": closed},
                        now=self.now,
                    )
                else:
                    opportunities.add_contact(
                        db,
                        workspace_id=self.ws,
                        opportunity_id=target,
                        person_id=person_id,
                        now=self.now,
                    )
        except OptoutError:
            return  # a contact of that deal already

    # Exclusions ----------------------------------------------------------------------------

    @rule(
        level=st.sampled_from(["people", "company"]),
        data=st.data(),
        enforced=st.booleans(),
        unenroll=st.booleans(),
    )
    def save_exclusion(
        self, level: str, data: st.DataObject, enforced: bool, unenroll: bool
    ) -> None:
        text = data.draw(st.sampled_from(PEOPLE_RULES if level == "people" else COMPANY_RULES))
        name = f"Rule {len(self.exclusion_names)}"
        with self.write() as db:
            saves.create(
                db,
                workspace_id=self.ws,
                name=name,
                level=level,
                filter=text,
                actor=ACTOR,
                now=self.now,
                exclude_from_sequences=enforced,
                unenroll_existing_on_save=unenroll,
                confirm=True,
            )
        self.exclusion_names.append(name)
        note(f"{name} ({level}, enforced {enforced}, unenroll {unenroll}): {text}")

    @precondition(lambda self: bool(self.exclusion_names))
    @rule(data=st.data(), level=st.sampled_from(["people", "company"]))
    def edit_exclusion(self, data: st.DataObject, level: str) -> None:
        name = data.draw(st.sampled_from(self.exclusion_names))
        text = data.draw(st.sampled_from(PEOPLE_RULES if level == "people" else COMPANY_RULES))
        with self.write() as db:
            saves.update(
                db,
                workspace_id=self.ws,
                name=name,
                actor=ACTOR,
                now=self.now,
                level=level,
                filter=text,
                exclude_from_sequences=data.draw(st.booleans()),
                unenroll_existing_on_save=data.draw(st.booleans()),
                confirm=True,
            )
        note(f"{name} now ({level}): {text}")

    @precondition(lambda self: bool(self.exclusion_names))
    @rule(data=st.data())
    def toggle_exclusion(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.exclusion_names))
        with self.write() as db:
            current = saves.get(db, workspace_id=self.ws, name=name)
            saves.set_enabled(
                db,
                workspace_id=self.ws,
                name=name,
                enabled=not current.enabled,
                actor=ACTOR,
                now=self.now,
                confirm=True,
            )

    # Enrollments and sequences -------------------------------------------------------------

    @rule(data=st.data())
    def enroll_by_hand(self, data: st.DataObject) -> None:
        ids = self._ids(t.people)
        positions = data.draw(st.lists(POSITIONS, min_size=1, max_size=4))
        if not ids:
            return
        chosen = sorted({ids[i % len(ids)] for i in positions})
        with self.write() as db:
            enrolling.enroll(
                db,
                workspace_id=self.ws,
                sequence_id=self.sequence_ids["Manual"],
                people=chosen,
                actor=ACTOR,
                now=self.now,
            )

    @rule()
    def enroll_from_audience(self) -> None:
        with self.write() as db:
            refresh.refresh(
                db, workspace_id=self.ws, sequence="Automatic", actor=ACTOR, now=self.now
            )

    @rule(data=st.data(), sequence=st.sampled_from(["Manual", "Automatic"]))
    def unenroll(self, data: st.DataObject, sequence: str) -> None:
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        with self.write() as db:
            enrolling.unenroll(
                db,
                workspace_id=self.ws,
                sequence_id=self.sequence_ids[sequence],
                person_ids=[person_id],
                actor=ACTOR,
                now=self.now,
            )

    @rule(
        sequence=st.sampled_from(["Manual", "Automatic"]),
        status=st.sampled_from(["active", "paused"]),
    )
    def pause_or_resume(self, sequence: str, status: str) -> None:
        with self.write() as db:
            definitions.set_status(
                db, workspace_id=self.ws, name=sequence, status=status, actor=ACTOR, now=self.now
            )

    @rule(ruleset=st.sampled_from(["Manual", "Automatic"]), on=st.booleans())
    def switch_ruleset_exclusions(self, ruleset: str, on: bool) -> None:
        """Nobody is unenrolled here: every send re-checks under the ruleset as it is then."""
        with self.write() as db:
            rulesets.update(
                db,
                workspace_id=self.ws,
                ruleset_id=self.ruleset_ids[ruleset],
                changes={"exclusions_enabled": on},
                actor=ACTOR,
                now=self.now,
                confirm=True,  # the admin has read which rules stop applying, and goes on
            )

    # Opt-outs and bounces, by every channel ------------------------------------------------

    @rule(data=st.data(), one_click=st.booleans())
    def unsubscribe_link(self, data: st.DataObject, one_click: bool) -> None:
        """The recipient opens the link and presses the button, or their mail client
        sends the RFC 8058 one-click POST."""
        message = _choose(data, self.accepted)
        if message is None:
            return
        path = urllib.parse.urlsplit(message.unsubscribe_url).path
        if one_click:
            answer = self.rig.web.post(path, data={"List-Unsubscribe": "One-Click"})
        else:
            page = self.rig.web.get(path)
            assert page.status_code == 200, page.text
            answer = self.rig.web.post(path, data={})
        assert answer.status_code == 200, answer.text
        self._suppressed(message.recipient, "an unsubscribe link")

    @rule(data=st.data(), kind=st.sampled_from([*REPLIES, "mailto", "bounce_report"]))
    def answer(self, data: st.DataObject, kind: str) -> None:
        """The recipient answers an email: asks to stop, is interested, is away, or uses the
        List-Unsubscribe mailto; or their server reports a hard bounce (RFC 3464)."""
        message = _choose(data, self.accepted)
        if message is None:
            return
        mid = message.message_id
        if kind == "bounce_report":
            raw = (
                corpus("bounce_postfix_dsn.eml")
                .replace(b"<6e5d4c3b-2a19-5087-96a5-b4c3d2e1f0a9@acme-sales.com>", mid.encode())
                .replace(b"dee@globex.io", message.recipient.encode())
            )
        elif kind == "mailto":
            address, _, query = message.unsubscribe_mailto.removeprefix("mailto:").partition("?")
            subject = urllib.parse.parse_qs(query)["subject"][0]
            raw = reply(
                sender=message.recipient, to=address, subject=subject, body="", now=self.now
            )
        else:
            body, headers = REPLIES[kind]
            raw = reply(
                sender=message.recipient,
                body=body,
                in_reply_to=message.message_id,
                headers={k: v for k, v in headers.items() if k != "Subject"},
                subject=headers.get("Subject", "Re: Hello"),
                now=self.now,
            )
        with self.write() as db:
            result = process_message(
                db,
                raw=raw,
                now=self.now,
                source="model",
                workspace_id=self.ws,
                options=InboundOptions(tokens=self.rig.tokens),
            )
        note(f"{kind} from {message.recipient}: {result.outcome}")
        if kind in ("unsubscribe", "mailto"):
            assert result.outcome == "opted_out", (result.outcome, result.reason)
            self._suppressed(message.recipient, f"an inbound {kind}")
        if kind == "bounce_report":
            assert result.outcome == "bounced", (result.outcome, result.reason)
            self._suppressed(message.recipient, "a bounce report")

    @rule(
        local=st.sampled_from(LOCAL_PARTS),
        domain=st.sampled_from(MAIL_DOMAINS),
        change=st.sampled_from(["opt_out", "opted_in", "title", "status"]),
    )
    def crm_sync(self, local: str, domain: str, change: str) -> None:
        """A HubSpot contact is created or changed, then the workspace syncs."""
        address = address_of(f"{local}@{domain}")
        hubspot = self.rig.hubspot
        props = {
            "opt_out": {"hs_email_optout": True},
            "opted_in": {"hs_email_optout": False},  # never clears an opt-out here (R33)
            "title": {"jobtitle": "Head of Sales"},
            "status": {"hs_lead_status": "Do Not Contact"},
        }[change]
        # The portal stamps its changes on the model's clock, as a CRM does on the real one:
        # each change a millisecond after the one before, never two at the same instant.
        self.crm_changes += 1
        at = self.now + timedelta(milliseconds=self.crm_changes)
        if address in self.contacts:
            hubspot.update("contacts", self.contacts[address], at=at, **props)
        else:
            self.contacts[address] = hubspot.create(
                "contacts", at=at, email=address, firstname=local, **props
            )
        with self.engine.connect() as db:
            connection = connections.by_id(db, connection_id=self.connection_id)
            fields = connections.mappings(db, connection_id=self.connection_id)
        clock = self.rig.crm_clock
        connector = connections.connector_for(
            connection, fields, CRM_ENV, clock=clock, sleep=clock.sleep
        )
        try:
            [report] = sync.sync_workspace(
                self.engine,
                workspace_id=self.ws,
                connectors={self.connection_id: connector},
                now=lambda: self.now,
            )
        finally:
            connector.close()
        assert report.status == "ok", report.error
        if change == "opt_out":
            with self.engine.connect() as db:
                ledger = optouts.ledger(db, workspace_id=self.ws, email=address)
            assert any(row["kind"] == "opt_out" for row in ledger), (address, report)
            self._suppressed(address, "a HubSpot sync")

    @rule(
        local=st.sampled_from(LOCAL_PARTS),
        domain=st.sampled_from(MAIL_DOMAINS),
        opt_out=st.booleans(),
        title=st.sampled_from(TITLES),
    )
    def csv_import(self, local: str, domain: str, opt_out: bool, title: str) -> None:
        address = f"{local}@{domain}"
        source = io.StringIO(f"Email,Unsubscribed,Job title\n{address},{opt_out},{title}\n")
        with self.write() as db:
            report = people_files.import_people(
                db,
                workspace_id=self.ws,
                source=source,
                mapping={"Email": "email", "Unsubscribed": "email_opt_out", "Job title": "title"},
                actor=ACTOR,
                now=self.now,
            )
        assert report.applied, report.errors
        if opt_out:
            self._suppressed(address, "a CSV import")

    @rule(data=st.data())
    def opt_out_by_hand(self, data: st.DataObject) -> None:
        person_id = self._pick(data, t.people)
        if person_id is None:
            return
        with self.write() as db:
            address = people.get(db, workspace_id=self.ws, person_id=person_id)["email"]
            optouts.opt_out(
                db, workspace_id=self.ws, email=address, actor=ACTOR, channel="manual", now=self.now
            )
        self._suppressed(address, "a manual opt-out")

    @rule(local=st.sampled_from(LOCAL_PARTS), domain=st.sampled_from(MAIL_DOMAINS))
    def mailbox_disappears(self, local: str, domain: str) -> None:
        """The next delivery to this address is refused permanently (a hard bounce)."""
        self.rig.smtp.refuse_once.add(address_of(f"{local}@{domain}"))

    # Time and the worker -------------------------------------------------------------------

    @rule(move=CLOCK_MOVES)
    def time_passes(self, move: timedelta) -> None:
        self.now += move
        note(f"clock now {self.now}")
        self.worker_pass()

    @rule()
    def worker_pass(self) -> None:
        self.rig.smtp.now = self.now
        result = run_once(self.engine, mailer=self.rig.mailer, now=self.now)
        note(f"worker at {self.now}: sent {result.sent}, cancelled {result.cancelled}")

    # What must hold after every step -------------------------------------------------------

    @invariant()
    def every_accepted_message_was_allowed(self) -> None:
        assert not self.rig.smtp.violations, "\n".join(self.rig.smtp.violations)

    @invariant()
    def suppressions_hold_and_every_ending_has_its_event(self) -> None:
        if not self.ws:
            return
        with self.engine.connect() as db:
            problems = db.execute(
                PROBLEMS, {"ws": self.ws, "known": list(self.rig.smtp.suppressed)}
            ).all()
        assert not problems, "\n".join(f"{what}: {detail}" for what, detail in problems)


def _problems() -> sa.CompoundSelect:
    """Everything that must never be, as (what, which) rows, in one query per step."""
    p, e, o, s, ev = t.people, t.enrollments, t.outbound_emails, t.suppressions, t.events
    ws, known = sa.bindparam("ws"), sa.bindparam("known", expanding=True)
    suppressed = sa.exists().where(s.c.workspace_id == ws, s.c.email == p.c.email)
    label = sa.literal
    return sa.union_all(
        # R1, R7: an opt-out or a bounce ends every enrollment and cancels every email.
        sa.select(
            label("opted-out or bounced person still in a sequence"),
            sa.cast(e.c.id, sa.String),
        )
        .join(e, e.c.person_id == p.c.id)
        .where(p.c.workspace_id == ws, sa.or_(p.c.email.in_(known), suppressed))
        .where(
            sa.or_(
                e.c.status.in_(t.ACTIVE_STATUSES),
                sa.exists().where(o.c.enrollment_id == e.c.id, o.c.status == "queued"),
            )
        ),
        # R33: nothing clears an opt-out or a bounce behind the user's back.
        sa.select(label("opt-out or bounce that did not stay"), p.c.email).where(
            p.c.workspace_id == ws, p.c.email.in_(known), ~suppressed
        ),
        # R35: every ending and every cancellation is an event.
        sa.select(label("enrollment ended without an event"), sa.cast(e.c.id, sa.String)).where(
            e.c.workspace_id == ws,
            e.c.status.not_in(t.ACTIVE_STATUSES),
            ~sa.exists().where(
                ev.c.enrollment_id == e.c.id,
                ev.c.kind.in_(["enrollment_ended", "enrollment_finished"]),
            ),
        ),
        sa.select(label("email cancelled without an event"), sa.cast(o.c.id, sa.String)).where(
            o.c.workspace_id == ws,
            o.c.status == "cancelled",
            ~sa.exists().where(ev.c.email_id == o.c.id, ev.c.kind == "email_cancelled"),
        ),
    )


PROBLEMS = _problems()


@pytest.fixture
def servers(fresh_engine: Engine) -> Iterator[Rig]:
    with rig(fresh_engine) as opened:
        yield opened


@pytest.mark.parametrize("part", range(1, PARTS + 1), ids=lambda part: f"part{part}of{PARTS}")
def test_R1_R28_nobody_opted_out_or_ineligible_is_emailed_and_nobody_twice(
    servers: Rig, part: int, request: pytest.FixtureRequest
) -> None:
    run_state_machine_as_test(
        seeded_part(lambda: DeliveryModel(servers), request, part),
        settings=settings(
            max_examples=runs_of_part(RUNS, PARTS, part),
            stateful_step_count=STEPS_PER_RUN,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            print_blob=True,
            # No shrinking: a failure prints its whole step list and seed at once, and CI
            # stays bounded.
            phases=[Phase.explicit, Phase.generate],
        ),
    )
