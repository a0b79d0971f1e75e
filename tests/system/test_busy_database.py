"""No opt-out is lost to a busy database (R1, R3, DESIGN guarantee 6).

The real service (`optout serve`, its own process) over loopback, on SQLite and on
PostgreSQL. Beside each of five long writes a member may start, 100 recipients click
RFC 8058 one-click unsubscribe at once, each on their own link: a CSV upload whose
header has 40,000 columns, a 50,000-row people import, a 10,000-row companies import
that renames every company and links each under a parent, the save of a 10,000-domain
exclusion that unenrolls on save, and a 10,000-domain CSV imported straight into an
exclusion list. Every click must be answered 200 and opt its person out; the service
must log no error.
"""

from __future__ import annotations

import csv
import io
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.mail.tokens import UnsubscribeTokens
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role
from optout.services.enrollments import enrolling
from optout.services.imports import people_files
from optout.web import unsubscribe_spool
from tests.factories import World

KEYS = ("busy-database-secret-key-0123456789",)
CLICKS = 100
EXCLUDED_DOMAINS = 10_000
IMPORTED_ROWS = 50_000
WIDE_COLUMNS = 40_000
PARENTS = 100
LISTED_DOMAINS = 10_000
LONG_WRITES = 5


@dataclass(frozen=True)
class Service:
    base: str
    key: str  # a member's API key
    tokens: UnsubscribeTokens
    log: Path


@dataclass
class Clicks:
    statuses: list[int]
    errors: list[str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(engine: Engine) -> tuple[int, str, list[tuple[int, str]]]:
    """A workspace with 10,000 companies of one enrolled person each, the recipients who
    will click (enrolled too), and a member's API key."""
    now = utcnow()
    with engine.begin() as db:
        world = World(db, now, slug="busy")
        sequence = world.sequence()
        rows = "Email,Domain\n" + "".join(
            f"lead{i}@company{i}.com,company{i}.com\n" for i in range(EXCLUDED_DOMAINS)
        )
        seeded = people_files.import_people(
            db,
            workspace_id=world.ws,
            source=io.StringIO(rows),
            mapping={"Email": "email", "Domain": "company_domain"},
            actor="setup",
            now=now,
        )
        assert seeded.created == EXCLUDED_DOMAINS, seeded.errors[:3]
        recipients = [
            (world.person(f"reader{i}@mail{i % 7}.com"), f"reader{i}@mail{i % 7}.com")
            for i in range(LONG_WRITES * CLICKS)
        ]
        everyone = db.scalars(sa.select(t.people.c.id).where(t.people.c.workspace_id == world.ws))
        enrolling.enroll(
            db,
            workspace_id=world.ws,
            sequence_id=sequence,
            people=list(everyone),
            actor="setup",
            now=now,
        )
        boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="setup")
        key = accounts.create_api_key(
            db, principal=boss, name="member", role=Role.MEMBER, now=now
        ).key
    return world.ws, key, recipients


@contextmanager
def _serving(engine: Engine, tmp_path: Path) -> Iterator[Callable[[str], Service]]:
    """Start `optout serve` in its own process and give a function that waits until it
    answers, then returns it as a Service for a member's key. The caller seeds the
    database first: a service starting on SQLite while the seed holds the write lock
    gives up on the database."""
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "OPTOUT_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "OPTOUT_SECRET_KEYS": KEYS[0],
        "OPTOUT_TRANSPORT_URL": f"outbox:{tmp_path / 'outbox'}",
    }
    command = [str(Path(sys.executable).parent / "optout"), "serve", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "--no-worker"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"

    def ready(key: str) -> Service:
        deadline = time.monotonic() + 120  # a loaded machine takes a while
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return Service(base, key, UnsubscribeTokens(KEYS), log)
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "optout serve did not start"
            time.sleep(0.1)

    try:
        yield ready
    finally:
        server.terminate()
        server.wait(timeout=60)


def _click_all(service: Service, ws: int, people: list[tuple[int, str]], spread: float) -> Clicks:
    """Each person clicks one-click unsubscribe once, all at once, their starts spread over
    `spread` seconds so that they land while the long write runs."""
    clicks = Clicks([], [])
    lock = threading.Lock()

    def click(person: tuple[int, str]) -> None:
        person_id, email = person
        token = service.tokens.issue(workspace_id=ws, person_id=person_id, email=email)
        time.sleep(random.uniform(0, spread))
        try:
            answer = httpx.post(
                f"{service.base}/u/{token}",
                data={"List-Unsubscribe": "One-Click"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            with lock:
                clicks.errors.append(f"{email}: {exc!r}")
            return
        with lock:
            clicks.statuses.append(answer.status_code)
            if answer.status_code != 200:
                clicks.errors.append(f"{email}: {answer.status_code} {answer.text[:200]}")

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        list(pool.map(click, people))
    return clicks


def _beside(
    service: Service,
    ws: int,
    people: list[tuple[int, str]],
    long_write: Callable[[], httpx.Response],
    *,
    lead: float,
    spread: float,
) -> tuple[httpx.Response, Clicks]:
    """Start `long_write`, wait `lead` seconds, then let every person click."""
    answer: list[httpx.Response] = []
    writer = threading.Thread(target=lambda: answer.append(long_write()))
    writer.start()
    time.sleep(lead)
    clicks = _click_all(service, ws, people, spread)
    writer.join(timeout=300)
    assert answer, "the long write got no answer"
    return answer[0], clicks


def _opted_out(engine: Engine, ws: int, people: list[tuple[int, str]]) -> int:
    s = t.suppressions
    with engine.connect() as db:
        return int(
            db.scalar(
                sa.select(sa.func.count(sa.distinct(s.c.email))).where(
                    s.c.workspace_id == ws,
                    s.c.kind == "opt_out",
                    s.c.email.in_([email for _, email in people]),
                )
            )
            or 0
        )


def _wide_csv() -> bytes:
    header = ["Email", *(f"Column {i}" for i in range(WIDE_COLUMNS - 1))]
    out = io.StringIO()
    csv.writer(out).writerows([header, ["someone@wide.com", *("x" for _ in header[1:])]])
    return out.getvalue().encode()


def _long_csv() -> bytes:
    rows = "".join(
        f"new{i}@firm{i % 5000}.com,Name {i},firm{i % 5000}.com\n" for i in range(IMPORTED_ROWS)
    )
    return ("Email,First name,Domain\n" + rows).encode()


def _companies_csv() -> bytes:
    rows = "".join(
        f"company{i}.com,Company {i},group{i % PARENTS}.com\n" for i in range(EXCLUDED_DOMAINS)
    )
    return ("Domain,Name,Parent\n" + rows).encode()


def _list_csv() -> bytes:
    return ("Domain\n" + "".join(f"partner{i}.com\n" for i in range(LISTED_DOMAINS))).encode()


def test_R3_one_click_opt_outs_are_never_lost_beside_long_writes(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    engine = fresh_engine
    ws, key, recipients = _seed(engine)
    with _serving(engine, tmp_path) as ready:
        batches = [recipients[i * CLICKS : (i + 1) * CLICKS] for i in range(LONG_WRITES)]
        member = {"Authorization": f"Bearer {key}"}
        wide, long, companies, listed = _wide_csv(), _long_csv(), _companies_csv(), _list_csv()
        domains = [f"company{i}.com" for i in range(EXCLUDED_DOMAINS)]
        service = ready(key)
        api = f"{service.base}/api/v1"

        def wide_upload() -> httpx.Response:
            return httpx.post(
                f"{api}/imports/people",
                params={"map": "Email=email"},
                content=wide,
                headers={**member, "Content-Type": "text/csv"},
                timeout=300,
            )

        def long_import() -> httpx.Response:
            return httpx.post(
                f"{api}/imports/people",
                params={"map": ["Email=email", "First name=first_name", "Domain=company_domain"]},
                content=long,
                headers={**member, "Content-Type": "text/csv"},
                timeout=300,
            )

        def companies_import() -> httpx.Response:
            return httpx.post(
                f"{api}/imports/companies",
                params={"map": ["Domain=domain", "Name=name", "Parent=parent_domain"]},
                content=companies,
                headers={**member, "Content-Type": "text/csv"},
                timeout=300,
            )

        def list_import() -> httpx.Response:
            return httpx.post(
                f"{api}/imports/exclusion-list",
                params={
                    "column": "Domain",
                    "exclusion": "Partners",
                    "level": "company",
                    "confirm": "true",
                },
                content=listed,
                headers={**member, "Content-Type": "text/csv"},
                timeout=300,
            )

        def exclusion_save() -> httpx.Response:
            return httpx.post(
                f"{api}/exclusions",
                json={
                    "name": "Every customer",
                    "level": "company",
                    "filter": {"field": "company.domain", "op": "in", "value": domains},
                    "exclude_from_sequences": True,
                    "unenroll_existing_on_save": True,
                    "confirm": True,
                },
                headers=member,
                timeout=300,
            )

        upload, wide_clicks = _beside(service, ws, batches[0], wide_upload, lead=0.1, spread=1)
        imported, import_clicks = _beside(service, ws, batches[1], long_import, lead=1, spread=8)
        linked, company_clicks = _beside(
            service, ws, batches[2], companies_import, lead=0.5, spread=4
        )
        saved, save_clicks = _beside(service, ws, batches[3], exclusion_save, lead=0.2, spread=2)
        listed_in, list_clicks = _beside(service, ws, batches[4], list_import, lead=0.2, spread=2)
    log = service.log.read_text()

    assert upload.status_code == 422, upload.text[:500]
    assert f"the header has {WIDE_COLUMNS} columns" in upload.json()["error"]["message"]
    assert imported.status_code == 200, imported.text[:500]
    assert imported.json()["created"] == IMPORTED_ROWS
    assert linked.status_code == 200, linked.text[:500]
    assert (linked.json()["updated"], linked.json()["created"]) == (EXCLUDED_DOMAINS, 0)
    assert saved.status_code == 201, saved.text[:500]
    assert saved.json()["removed"]["enrollments_ended"] == EXCLUDED_DOMAINS
    assert listed_in.status_code == 200, listed_in.text[:500]
    assert listed_in.json()["created"] == LISTED_DOMAINS
    for name, clicks, batch in (
        ("the 40,000-column upload", wide_clicks, batches[0]),
        ("the 50,000-row import", import_clicks, batches[1]),
        ("the 10,000-row companies import", company_clicks, batches[2]),
        ("the 10,000-domain exclusion save", save_clicks, batches[3]),
        ("the 10,000-domain exclusion-list import", list_clicks, batches[4]),
    ):
        assert clicks.errors == [], f"beside {name}: {clicks.errors[:5]}"
        assert clicks.statuses == [200] * CLICKS, f"beside {name}"
        assert _opted_out(engine, ws, batch) == CLICKS, f"beside {name}"
    assert "Traceback" not in log, log[-5000:]
    spool = unsubscribe_spool.folder_of(engine)  # SQLite: clicks kept on a lock, all written
    assert spool is None or not list(spool.glob("*.json"))
