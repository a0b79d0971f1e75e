"""Inbound throughput: `python -m bench.inbound [--people N] [--messages N] [--profile N]
[--via smtp --connections K [K ...]]`.

A mixed corpus of answers to emails really sent from the generated workspace (replies,
unsubscribe requests in words, List-Unsubscribe mailto messages, auto-replies, bounces in
the shapes of several mail servers, ARF spam-complaint reports) goes through the product's
inbound path, `optout.inbound.process.process_messages`, `--batch` messages a transaction
as the ways in that receive many at once run it (`--batch 1`: one each, as a lone message
is), on a copy of the cached workspace (`bench.load`), settled first as the worker keeps
it (statistics, every rule's stored matches; kept beside it and reused). The same-run
baseline is the classification alone (`optout.inbound.classify.classify`) of the same
messages, parsed beforehand.

With `--via smtp` the same corpus also goes through the real SMTP listener, `optout inbound
smtp` in its own process, from K connections at once (`bench.inbound_listener`), once per K
given, each on a fresh copy of the same settled workspace after the direct arm's. Each
message must be answered 250 and leave one row whose class, outcome and match are what the
direct arm gave. Both arms then take the clock's time as the moment the mail arrives (the
listener reads the clock) and the emails answered as sent two days before it.

The sent emails are written set-based: a sequence of its own, one enrollment per chosen
person with step 1 sent (a Message-ID of ours) and step 3 queued. Each message answers one
of them: the templates are the corpus files of tests/inbound/corpus/ (and two ARF shapes
written here), re-addressed per message: the person's address for the template's, our
Message-ID for the template's, a Message-ID of its own, and for the mailto a token issued
for the person. Whatever the product recognizes is what is measured: the report counts
the classes and outcomes it gave.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import io
import json
import os
import pstats
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench import inbound_listener
from bench.generate import NOW, WORKSPACE_ID, Params
from bench.load import ROOT, Progress, prepare
from optout.clock import utcnow
from optout.db import statistics
from optout.db.engine import create_engine
from optout.inbound.classify import classify
from optout.inbound.parse import parse_message
from optout.inbound.process import (
    BATCH,
    InboundOptions,
    InboundResult,
    Incoming,
    process_messages,
)
from optout.mail.tokens import UnsubscribeTokens
from optout.services import decision_index

CORPUS = ROOT / "tests" / "inbound" / "corpus"
KEYS = ("bench-inbound-secret-0123456789abcdef",)
WORKSPACE_SLUG = "bench"  # the generated workspace (bench.generate)
SENT_AT = NOW - timedelta(days=2)
RECEIVED_AT = NOW  # within the 30-day window of matching by address
# Share of each group in the mix, out of 100.
MIX = {
    "reply": 30,
    "unsubscribe": 10,
    "mailto": 10,
    "auto_reply": 20,
    "bounce": 20,
    "complaint": 10,
}
OUR_MESSAGE_ID = re.compile(
    rb"<[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@acme-sales\.com>"
)
ADDRESS = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
OURS = (b"acme-sales.com", b"mailer-daemon", b"postmaster", b"microsoftexchange")


# ARF (RFC 5965) reports in two shapes feedback loops send: the whole message returned
# (Yahoo, AOL), and its headers only (text/rfc822-headers, e.g. Comcast, Mail.ru).
ARF_FULL = b"""\
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@acme-sales.com
Subject: FW: Quick question
Date: Mon, 2 Nov 2026 12:00:00 +0000
Message-ID: <arf-full-0001@arf.mail.yahoo.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
 boundary="----=_Part_ARF_full"

------=_Part_ARF_full
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 192.0.2.25 on
Mon, 2 Nov 2026 09:00:00 +0000. For more information about this format please see
http://www.mipassoc.org/arf/.

------=_Part_ARF_full
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <sam@acme-sales.com>
Original-Rcpt-To: <zoe@yahoo.com>
Arrival-Date: Mon, 2 Nov 2026 09:00:00 +0000
Reported-Domain: acme-sales.com
Source-IP: 192.0.2.25

------=_Part_ARF_full
Content-Type: message/rfc822
Content-Disposition: inline

Return-Path: <sam@acme-sales.com>
From: Sam Seller <sam@acme-sales.com>
To: Zoe Zimmer <zoe@yahoo.com>
Subject: Quick question, Zoe
Date: Mon, 2 Nov 2026 09:00:00 +0000
Message-ID: <1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d@acme-sales.com>
List-Unsubscribe: <https://links.example.com/u/gAAAAABpQx3Z0s7vK2m1>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi Zoe, how is it going?

Unsubscribe: https://links.example.com/u/gAAAAABpQx3Z0s7vK2m1

------=_Part_ARF_full--
"""

ARF_HEADERS = b"""\
From: Comcast Feedback Loop <feedbackloop@comcastfbl.senderscore.net>
To: fbl@acme-sales.com
Subject: Email Feedback Report for IP 192.0.2.25
Date: Mon, 2 Nov 2026 12:00:00 +0000
Message-ID: <arf-headers-0001@comcastfbl.senderscore.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type="feedback-report";
 boundary="=_arf_headers_boundary"

--=_arf_headers_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

Comcast received a complaint about a message sent from your network.

--=_arf_headers_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SenderScore-FBL/1.0
Version: 1
Original-Rcpt-To: zoe@yahoo.com
Received-Date: Mon, 2 Nov 2026 09:00:00 +0000
Source-IP: 192.0.2.25

--=_arf_headers_boundary
Content-Type: text/rfc822-headers

Return-Path: <sam@acme-sales.com>
From: Sam Seller <sam@acme-sales.com>
To: zoe@yahoo.com
Subject: Quick question, Zoe
Date: Mon, 2 Nov 2026 09:00:00 +0000
Message-ID: <1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d@acme-sales.com>

--=_arf_headers_boundary--
"""


@dataclass(frozen=True)
class Template:
    name: str
    group: str  # a key of MIX
    raw: bytes
    person: bytes  # the address of the person the template answers for


def _person_of(raw: bytes, group: str) -> bytes:
    """The address a template stands for: its sender for what people write, the most
    named address that is not ours nor the reporter's for bounces and complaints."""
    head = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    sender = re.search(rb"^From:.*$", head, re.I | re.M)
    sender_addresses = ADDRESS.findall(sender.group(0)) if sender else []
    if group not in ("bounce", "complaint") and sender_addresses:
        return sender_addresses[0].lower()
    counts = Counter(
        a.lower()
        for a in ADDRESS.findall(raw)
        if not any(o in a.lower() for o in OURS) and a.lower() not in
        {s.lower() for s in sender_addresses}
    )  # fmt: skip
    if not counts:
        raise ValueError("a template names no address to re-address")
    return counts.most_common(1)[0][0]


def templates() -> list[Template]:
    """The corpus files by group, plus the ARF shapes above. Hostile messages are left out:
    they answer nothing; complaint files that appear in the corpus are taken too."""
    manifest: dict[str, dict[str, str]] = json.loads((CORPUS / "manifest.json").read_text())
    found: list[Template] = []
    for name, entry in sorted(manifest.items()):
        if name.startswith("hostile_"):
            continue
        kind = entry["kind"]
        group = "mailto" if entry.get("rule") == "unsubscribe_mailto" else kind
        if group not in MIX:
            group = "complaint" if "complaint" in kind or "arf" in name else ""
        if not group:
            continue
        raw = (CORPUS / name).read_bytes()
        found.append(Template(name, group, raw, _person_of(raw, group)))
    for name, raw in (("arf_full_message (bench)", ARF_FULL), ("arf_headers (bench)", ARF_HEADERS)):
        if not any(t.group == "complaint" and t.raw == raw for t in found):
            found.append(Template(name, "complaint", raw, b"zoe@yahoo.com"))
    return found


def plan(count: int, pool: list[Template]) -> list[Template]:
    """`count` templates in the proportions of MIX, each group's templates in turn."""
    groups = {g: [t for t in pool if t.group == g] for g in MIX}
    total = sum(MIX[g] for g in MIX if groups[g])
    chosen: list[Template] = []
    turns = Counter[str]()
    for i in range(count):
        # The group whose share is furthest behind, so any prefix keeps the mix.
        group = max(
            (g for g in MIX if groups[g]),
            key=lambda g: MIX[g] / total * (i + 1) - turns[g],
        )
        chosen.append(groups[group][turns[group] % len(groups[group])])
        turns[group] += 1
    return chosen


def _replace_header(head: bytes, name: bytes, value: bytes) -> bytes:
    pattern = re.compile(rb"^" + re.escape(name) + rb":.*(?:\n[ \t].*)*$", re.I | re.M)
    line = name + b": " + value
    head, count = pattern.subn(lambda _m: line, head, count=1)
    return head if count else line + b"\n" + head


def readdress(template: Template, *, index: int, email: str, message_id: str, token: str) -> bytes:
    """The template as the answer of `email` to our `message_id`."""
    raw = template.raw.replace(b"\r\n", b"\n")
    raw = re.sub(re.escape(template.person), email.encode(), raw, flags=re.I)
    raw = OUR_MESSAGE_ID.sub(message_id.encode(), raw)
    head, sep, body = raw.partition(b"\n\n")
    head = _replace_header(head, b"Message-ID", f"<bench-inbound-{index}@client.example>".encode())
    if template.group == "mailto":
        head = _replace_header(head, b"Subject", f"unsubscribe {token}".encode())
    return head + sep + body


@dataclass(frozen=True)
class Recipient:
    person_id: int
    email: str
    message_id: str


def add_sent_emails(
    engine: Engine, *, messages: int, people: int, sent_at: datetime = SENT_AT
) -> list[Recipient]:
    """A sequence of its own; `messages` people spread over the workspace, each enrolled
    with step 1 sent at `sent_at` (a Message-ID of ours) and step 3 queued: set-based."""
    step = max(1, people // messages)
    with engine.begin() as db:
        sequence_id = db.scalar(sa.text("SELECT coalesce(max(id), 0) + 1 FROM sequences"))
        db.execute(
            sa.text(
                "INSERT INTO sequences (id, workspace_id, name, ruleset_id, status, "
                "from_address, reply_to, created_at) VALUES (:id, :ws, 'Inbound benchmark', "
                "(SELECT min(id) FROM rulesets WHERE workspace_id = :ws), 'active', "
                "'sales@bench.example', '', :now)"
            ),
            {"id": sequence_id, "ws": WORKSPACE_ID, "now": sent_at},
        )
        for position, kind in enumerate(("email", "wait", "email")):
            db.execute(
                sa.text(
                    "INSERT INTO sequence_steps (sequence_id, position, kind, wait_seconds, "
                    "subject, body_text, body_html) VALUES (:seq, :pos, :kind, :wait, "
                    ":subject, :body, '')"
                ),
                {
                    "seq": sequence_id, "pos": position, "kind": kind,
                    "wait": 3 * 86_400 if kind == "wait" else 0,
                    "subject": "Quick question" if kind == "email" else "",
                    "body": "A short note." if kind == "email" else "",
                },
            )  # fmt: skip
        steps = dict(
            db.execute(
                sa.text("SELECT position, id FROM sequence_steps WHERE sequence_id = :seq"),
                {"seq": sequence_id},
            ).all()
        )
        db.execute(
            sa.text(
                "INSERT INTO enrollments (workspace_id, sequence_id, person_id, status, source, "
                "next_position, next_run_at, enrolled_at, enrolled_by) "
                "SELECT workspace_id, :seq, id, 'in_progress', 'manual', 2, :next_run, :at, "
                "'bench' FROM people WHERE workspace_id = :ws AND id % :step = 0 "
                "ORDER BY id LIMIT :n"
            ),
            {
                "seq": sequence_id, "ws": WORKSPACE_ID, "step": step, "n": messages,
                "next_run": sent_at + timedelta(days=3), "at": sent_at - timedelta(hours=1),
            },
        )  # fmt: skip
        for position, status in ((0, "sent"), (2, "queued")):
            db.execute(
                sa.text(
                    "INSERT INTO outbound_emails (workspace_id, enrollment_id, step_id, "
                    "person_id, status, due_at, attempts, sent_at, message_id, "
                    "handed_over_at, accepted_at) "
                    "SELECT workspace_id, id, :step, person_id, :status, :due, :attempts, "
                    ":sent, CASE WHEN :status = 'sent' THEN '<bench-' || id || "
                    "'@bench.example>' END, :sent, :sent "
                    "FROM enrollments WHERE sequence_id = :seq"
                ),
                {
                    "seq": sequence_id, "step": steps[position], "status": status,
                    "due": sent_at if status == "sent" else sent_at + timedelta(days=3),
                    "attempts": 1 if status == "sent" else 0,
                    "sent": sent_at if status == "sent" else None,
                },
            )  # fmt: skip
        rows = db.execute(
            sa.text(
                "SELECT e.person_id, p.email, o.message_id FROM enrollments e "
                "JOIN people p ON p.id = e.person_id "
                "JOIN outbound_emails o ON o.enrollment_id = e.id AND o.status = 'sent' "
                "WHERE e.sequence_id = :seq ORDER BY e.id"
            ),
            {"seq": sequence_id},
        ).all()
    return [Recipient(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def corpus(recipients: list[Recipient], pool: list[Template]) -> Iterator[tuple[str, bytes]]:
    """(template name, raw message) for each recipient, in the proportions of MIX."""
    tokens = UnsubscribeTokens(KEYS)
    for index, (template, to) in enumerate(
        zip(plan(len(recipients), pool), recipients, strict=True)
    ):
        token = ""
        if template.group == "mailto":
            token = tokens.issue(workspace_id=WORKSPACE_ID, person_id=to.person_id, email=to.email)
        yield (
            template.name,
            readdress(template, index=index, email=to.email, message_id=to.message_id, token=token),
        )


def measure_classify(
    recipients: list[Recipient], pool: list[Template]
) -> tuple[float, float, Counter[str]]:
    """Seconds in parse_message and in classify alone over the corpus, and the classes."""
    parse_seconds = classify_seconds = 0.0
    kinds: Counter[str] = Counter()
    for _, raw in corpus(recipients, pool):
        began = time.perf_counter()
        parsed = parse_message(raw)
        parsed_at = time.perf_counter()
        verdict = classify(parsed)
        classify_seconds += time.perf_counter() - parsed_at
        parse_seconds += parsed_at - began
        kinds[verdict.kind.value] += 1
    return parse_seconds, classify_seconds, kinds


def measure_process(
    engine: Engine,
    recipients: list[Recipient],
    pool: list[Template],
    *,
    batch: int,
    progress: Progress,
    profile: cProfile.Profile | None = None,
    now: datetime = RECEIVED_AT,
) -> tuple[float, float, Counter[tuple[str, str, str]]]:
    """Seconds in process_messages with its commit, `batch` messages a transaction
    (summed, and wall), and what it did."""
    options = InboundOptions(tokens=UnsubscribeTokens(KEYS))
    seconds = 0.0
    done: Counter[tuple[str, str, str]] = Counter()
    wall = time.perf_counter()
    messages = [Incoming(raw, "bench") for _, raw in corpus(recipients, pool)]
    for start in range(0, len(messages), batch):
        if profile is not None:
            profile.enable()
        began = time.perf_counter()
        with engine.begin() as db:
            results = process_messages(
                db, messages=messages[start : start + batch], now=now,
                workspace_id=WORKSPACE_ID, options=options,
            )  # fmt: skip
        seconds += time.perf_counter() - began
        if profile is not None:
            profile.disable()
        for result in results:
            assert isinstance(result, InboundResult), result
            done[(result.kind, result.outcome, result.match_by or "unmatched")] += 1
        n = start + len(results)
        if n % 10_000 < batch:
            progress.say(f"processed {n:,} messages, {n / seconds:.0f} /s")
    return seconds, time.perf_counter() - wall, done


def settle(engine: Engine, *, now: datetime) -> int:
    """The workspace as a running product keeps it: planner statistics, and every rule's
    stored matches computed (`decision_index.advance`, which the worker's pass runs); the
    generated workspace has none stored. Returns how many rules were computed."""
    with engine.begin() as db:
        statistics.analyze(db)
        return decision_index.advance(db, workspace_id=WORKSPACE_ID, now=now)


def settled(source_url: str, key: str, progress: Progress) -> str:
    """The generated workspace settled (`settle`), kept beside it as
    `inbound-<key>-settled.sqlite3` and reused while newer than the generated file."""
    source = sa.make_url(source_url).database
    assert source is not None
    kept = Path(source).with_name(f"inbound-{key}-settled.sqlite3")
    if kept.exists() and kept.stat().st_mtime > Path(source).stat().st_mtime:
        progress.say(f"reusing the settled workspace {kept.name}")
        return f"sqlite:///{kept}"
    with copy_of(source_url, f"inbound-{key}-settling") as url:
        engine = create_engine(url)
        try:
            began = time.perf_counter()
            rules = settle(engine, now=RECEIVED_AT)
            progress.say(
                f"statistics and the stored matches of {rules:,} rules, as the worker's pass "
                f"leaves them, in {time.perf_counter() - began:.1f} s (kept as {kept.name})"
            )
        finally:
            engine.dispose()
        with sqlite3.connect(sa.make_url(url).database) as copy, sqlite3.connect(kept) as out:
            copy.backup(out)
    return f"sqlite:///{kept}"


@contextlib.contextmanager
def copy_of(url: str, name: str) -> Iterator[str]:
    """A throwaway copy of a SQLite workspace, beside it, removed afterwards."""
    source = sa.make_url(url).database
    assert source is not None
    copy = Path(source).with_name(f"{name}.sqlite3")
    for stale in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
        stale.unlink(missing_ok=True)
    with sqlite3.connect(source) as original, sqlite3.connect(copy) as target:
        original.backup(target)
    try:
        yield f"sqlite:///{copy}"
    finally:
        for stale in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
            stale.unlink(missing_ok=True)


def params_for(people: int) -> Params:
    """The workspace `bench.run` builds at this size (its cached file is shared)."""
    exclusions = 1000 if people >= 100_000 else max(10, people // 100)
    return Params(people=people, companies=max(10, people // 10), exclusions=exclusions)


Load = tuple[float, float, float]


@dataclass
class ListenerArm:
    """One pass of the corpus through `optout inbound smtp` from `connections` at once."""

    connections: int
    seconds: float  # first MAIL FROM to last 250
    codes: Counter[int]  # DATA reply codes (0: the connection failed)
    errors: list[str]
    stored: inbound_listener.Stored
    load_before: Load
    load_after: Load
    commit: str = ""  # the product the listener started on


@dataclass
class Result:
    people: int
    messages: int
    batch: int
    process_seconds: float
    wall_seconds: float
    parse_seconds: float
    classify_seconds: float
    classes: Counter[str]
    outcomes: Counter[tuple[str, str, str]]
    setup_seconds: float
    load_before: Load = (0.0, 0.0, 0.0)
    load_after: Load = (0.0, 0.0, 0.0)
    listener: list[ListenerArm] = dataclasses.field(default_factory=list)
    commit: str = ""  # the product the direct arm ran

    @property
    def per_second(self) -> float:
        return self.messages / self.process_seconds

    @property
    def classify_per_second(self) -> float:
        return self.messages / self.classify_seconds

    @property
    def matched(self) -> int:
        return sum(n for (_, _, by), n in self.outcomes.items() if by != "unmatched")


def run(
    *,
    people: int,
    messages: int,
    progress: Progress,
    batch: int = BATCH,
    profile: cProfile.Profile | None = None,
    database_url: str | None = None,
    connections: Sequence[int] = (),
    spy: Path | None = None,
) -> Result:
    """`database_url`: a SQLite file for the workspace (default: the cache in var/bench/);
    `connections`: for each K, the same corpus through the SMTP listener from K connections
    at once, on its own fresh copy, after the direct arm; `spy`: a folder for py-spy's
    samples of the direct arm (`direct.txt`) and of each listener (`smtp<K>.txt`)."""
    messages = min(messages, people)
    params = params_for(people)
    source = prepare(params, url=database_url, reuse=True, progress=progress)
    base = settled(source, params.key(), progress)
    # The listener reads the clock: with it, both arms receive the mail now.
    received_at = utcnow().replace(microsecond=0) if connections else RECEIVED_AT
    sent_at = received_at - (RECEIVED_AT - SENT_AT)
    pool = templates()
    load_before = os.getloadavg()
    commit = product_commit()
    with copy_of(base, _copy_name(params, "direct")) as url:
        progress.say(f"working on a copy: {sa.make_url(url).database}")
        engine = create_engine(url)
        try:
            began = time.perf_counter()
            recipients = add_sent_emails(engine, messages=messages, people=people, sent_at=sent_at)
            setup = time.perf_counter() - began
            progress.say(f"{len(recipients):,} sent emails written set-based in {setup:.1f} s")
            parse_seconds, classify_seconds, classes = measure_classify(recipients, pool)
            progress.say(
                f"baseline: classify alone {len(recipients) / classify_seconds:.0f} /s "
                f"(parse {len(recipients) / parse_seconds:.0f} /s)"
            )
            with inbound_listener.recorded(os.getpid(), spy and spy / "direct.txt"):
                seconds, wall, outcomes = measure_process(
                    engine, recipients, pool, batch=batch, progress=progress,
                    profile=profile, now=received_at,
                )  # fmt: skip
            progress.say(f"direct: {len(recipients) / seconds:.1f} /s")
        finally:
            engine.dispose()
    result = Result(
        people, len(recipients), batch, seconds, wall, parse_seconds, classify_seconds,
        classes, outcomes, setup, load_before, os.getloadavg(), commit=commit,
    )  # fmt: skip
    for k in connections:
        arm = through_listener(
            base, params, recipients, pool, connections=k, sent_at=sent_at,
            progress=progress, spy=spy and spy / f"smtp{k}.txt",
        )  # fmt: skip
        result.listener.append(arm)
    return result


def through_listener(
    base: str,
    params: Params,
    recipients: list[Recipient],
    pool: list[Template],
    *,
    connections: int,
    sent_at: datetime,
    progress: Progress,
    spy: Path | None = None,
) -> ListenerArm:
    """The corpus through `optout inbound smtp` on a fresh copy of `base`."""
    with copy_of(base, _copy_name(params, f"smtp{connections}")) as url:
        engine = create_engine(url)
        try:
            again = add_sent_emails(
                engine, messages=len(recipients), people=params.people, sent_at=sent_at
            )
            if again != recipients:
                raise RuntimeError("the copy's sent emails differ from the direct arm's")
            after_id = inbound_listener.last_row_id(engine)
        finally:
            engine.dispose()
        raws = [raw for _, raw in corpus(recipients, pool)]
        load_before = os.getloadavg()
        commit = product_commit()
        kept = sa.make_url(base).database
        assert kept is not None
        log = Path(kept).with_name("logs") / f"inbound-smtp{connections}-{os.getpid()}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with inbound_listener.listener(url, workspace=WORKSPACE_SLUG, keys=KEYS, log=log) as (
            host, port, process,
        ):  # fmt: skip
            progress.say(
                f"optout inbound smtp (pid {process.pid}) listens on {host}:{port}; sending "
                f"{len(raws):,} messages from {connections} connections"
            )
            with inbound_listener.recorded(process.pid, spy):
                answers = inbound_listener.send_all(host, port, raws, connections=connections)
        if answers.codes[250] != len(raws):
            progress.say(f"not every message was answered 250; the listener's log: {log}")
        load_after = os.getloadavg()
        engine = create_engine(url)
        try:
            stored = inbound_listener.stored_after(engine, after_id)
        finally:
            engine.dispose()
    progress.say(
        f"smtp, {connections} connections: {len(raws) / answers.seconds:.1f} /s, "
        f"{answers.codes[250]:,} answered 250, {stored.rows:,} rows in "
        f"{len(stored.transactions):,} transactions"
    )
    return ListenerArm(
        connections, answers.seconds, answers.codes, answers.errors, stored, load_before,
        load_after, commit,
    )  # fmt: skip


def product_commit() -> str:
    """The checked-out commit, and whether src/ has changes not committed yet: what a
    process started now runs."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return head.stdout.strip() + (" + uncommitted changes in src/" if dirty.stdout else "")


def _copy_name(params: Params, arm: str) -> str:
    """A copy of its own per arm and per run: another run beside this one keeps its own."""
    return f"inbound-{params.key()}-{arm}-{os.getpid()}"


def report(result: Result) -> str:
    ratio = result.process_seconds / result.classify_seconds
    lines = [
        f"{result.messages:,} messages into the {result.people:,}-person workspace "
        f"({result.matched:,} matched to the email they answer)",
        "",
        "| measure | seconds | messages/s | vs classify alone |",
        "| --- | ---: | ---: | ---: |",
        f"| process_messages, {_per_transaction(result.batch)} | "
        f"{result.process_seconds:.1f} | "
        f"{result.per_second:.0f} | {ratio:.1f}x the time |",
    ]
    for arm in result.listener:
        lines.append(
            f"| SMTP listener, {_connections(arm.connections)} | {arm.seconds:.1f} | "
            f"{result.messages / arm.seconds:.0f} | "
            f"{arm.seconds / result.classify_seconds:.1f}x the time |"
        )
    lines += [
        f"| parse_message alone | {result.parse_seconds:.1f} | "
        f"{result.messages / result.parse_seconds:.0f} | "
        f"{result.parse_seconds / result.classify_seconds:.1f}x the time |",
        f"| classify alone (baseline) | {result.classify_seconds:.1f} | "
        f"{result.classify_per_second:.0f} | 1.0x |",
        "",
        "classes given by classify: "
        + ", ".join(f"{k} {n:,}" for k, n in result.classes.most_common()),
        "",
        "| class | outcome | matched by | messages |",
        "| --- | --- | --- | ---: |",
    ]
    for (kind, outcome, by), n in sorted(result.outcomes.items()):
        lines.append(f"| {kind} | {outcome} | {by} | {n:,} |")
    transactions = -(-result.messages // result.batch)
    lines += [
        "",
        f"direct arm: {transactions:,} transactions, "
        f"{result.process_seconds / transactions:.2f} s a transaction (mean); "
        f"load average (1, 5, 15 min) {_load(result)}; product {result.commit}",
    ]
    lines += [
        f"listener, {_connections(arm.connections)}: product {arm.commit}"
        for arm in result.listener
    ]
    if result.listener:
        lines += [
            "",
            "| connections | answered 250 | other answers | rows | distinct Message-IDs "
            "| outcomes as direct | transactions | messages a transaction (mean, max) "
            "| seconds a transaction (mean) | load average before -> after |",
            "| ---: | ---: | --- | ---: | ---: | --- | ---: | --- | ---: | --- |",
        ]
        for arm in result.listener:
            lines.append(_listener_line(result, arm))
        for arm in result.listener:
            lines += _differences(result, arm)
        lines += [
            "",
            "| connections | messages a transaction | transactions | messages "
            "| seconds from its start to the next (mean) |",
            "| ---: | --- | ---: | ---: | ---: |",
        ]
        for arm in result.listener:
            for group, count, held, cycle in arm.stored.by_size():
                lines.append(
                    f"| {arm.connections} | {group} | {count:,} | {held:,} | {cycle:.2f} |"
                )
    return "\n".join(lines)


def _listener_line(result: Result, arm: ListenerArm) -> str:
    others = ", ".join(
        f"{n:,} x {code or 'no answer'}" for code, n in sorted(arm.codes.items()) if code != 250
    )
    sizes = arm.stored.transactions
    mean = sum(sizes) / len(sizes) if sizes else 0.0
    same = "yes" if arm.stored.outcomes == result.outcomes else "**no**"
    return (
        f"| {arm.connections} | {arm.codes[250]:,} | {others or 'none'} | {arm.stored.rows:,} "
        f"| {arm.stored.distinct_message_ids:,} | {same} | {len(sizes):,} "
        f"| {mean:.1f}, {max(sizes, default=0)} | {arm.seconds / max(1, len(sizes)):.2f} "
        f"| {_triple(arm.load_before)} -> {_triple(arm.load_after)} |"
    )


def _differences(result: Result, arm: ListenerArm) -> list[str]:
    """Where the listener's outcomes differ from the direct arm's, and its errors."""
    lines: list[str] = []
    for key in sorted(set(result.outcomes) | set(arm.stored.outcomes)):
        direct, smtp = result.outcomes[key], arm.stored.outcomes[key]
        if direct != smtp:
            lines.append(f"  {' / '.join(key)}: direct {direct:,}, smtp {smtp:,}")
    lines += [f"  error: {error}" for error in arm.errors[:10]]
    if lines:
        lines.insert(0, f"{_connections(arm.connections)}, where it differs:")
    return lines


def _connections(k: int) -> str:
    return "1 connection" if k == 1 else f"{k} connections at once"


def _triple(load: Load) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def _load(result: Result) -> str:
    return f"{_triple(result.load_before)} -> {_triple(result.load_after)}"


def _per_transaction(batch: int) -> str:
    return "one transaction each" if batch == 1 else f"{batch} a transaction"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inbound", description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--batch", type=int, default=BATCH,
        help=f"messages processed in one transaction (default {BATCH}; 1: one each)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="profile process_messages and print the N costliest functions",
    )  # fmt: skip
    parser.add_argument(
        "--via", choices=("direct", "smtp"), default="direct",
        help="direct: process_messages only; smtp: also through `optout inbound smtp`",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[8], metavar="K",
        help="with --via smtp: SMTP connections sending at once, one pass per K (default 8)",
    )  # fmt: skip
    parser.add_argument(
        "--py-spy", type=Path, default=None, metavar="DIR", dest="spy",
        help="sample the direct arm and each listener with py-spy into DIR and print "
        "where the time goes",
    )  # fmt: skip
    args = parser.parse_args(argv)
    progress = Progress()
    profile = cProfile.Profile() if args.profile else None
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if any(k < 1 for k in args.connections):
        parser.error("--connections must be at least 1")
    result = run(
        people=args.people, messages=args.messages, batch=args.batch, progress=progress,
        profile=profile, connections=args.connections if args.via == "smtp" else (),
        spy=args.spy,
    )  # fmt: skip
    print(report(result))
    if args.spy is not None:
        for samples in sorted(args.spy.glob("*.txt")):
            print(inbound_listener.where_time_goes(samples), file=sys.stderr)
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.profile)
        print(out.getvalue(), file=sys.stderr)
    command = " ".join(["python -m bench.inbound", *sys.argv[1:]])
    print(f"command: {command}; run at {datetime.now():%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()
