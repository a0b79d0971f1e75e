"""A bounded load test of the running service: `optout serve --no-worker` (uvicorn) and one
`optout worker` process, on loopback, against a queue of emails falling due over the run.

A fixed number of requests of each kind is spread evenly over a fixed duration and sent
with httpx (async, a bounded number at once): RFC 8058 one-click unsubscribes (POST of the
email's link), opt-outs through the JSON API, eligibility explain calls through the JSON
API, GETs of the unsubscribe confirm page, and GETs of `/healthz` (the same-run baseline:
no database, so what any request costs under the same load). Then the worker drains what
is due, both
processes are stopped, and the run is checked:

- every request was answered as it should be (200), else it counts as an error;
- for every unsubscribe or opt-out answered 200 at moment T, no email of that person was
  claimed after T: none sent by a worker pass that started after T, none sent that fell due
  after T, none left queued (the opt-out cancelled them in its transaction).

Reports p50 / p99 latency per kind, its p50 against the baseline's, and the errors.

  python -m bench.load_service --database-url sqlite:///var/bench/load.sqlite3
  python -m bench.load_service --database-url postgresql+psycopg://postgres@127.0.0.1:54343/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench import due_queue
from bench.commands import KEYS, environment, run_async, start, tail
from bench.load import Progress
from bench.smtp_sink import free_port, running_sink, transport_url
from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.mail.tokens import UnsubscribeTokens
from optout.services.access import accounts

KINDS = (
    "one-click unsubscribe",
    "opt-out (API)",
    "explain (API)",
    "confirm page (GET)",
    "health check (GET)",
)
# The same-run baseline: `/healthz` touches no database, so its latency is what the server
# and this machine cost any request under the same load.
BASELINE = "health check (GET)"
STARTUP_SECONDS = 180
DRAIN_SECONDS = 300


class NotEnforced(AssertionError):
    """An email was claimed for someone after their opt-out was answered."""


@dataclass(frozen=True)
class Answer:
    kind: str
    person: int  # its id
    status: int  # 0: no answer (connection error, timeout)
    seconds: float
    answered_at: datetime  # naive UTC, when the client had the answer


@dataclass
class Outcome:
    database: str
    answers: list[Answer] = field(default_factory=list)
    sent: int = 0
    cancelled: int = 0
    checked_people: int = 0

    def errors(self, kind: str) -> int:
        return sum(1 for a in self.answers if a.kind == kind and a.status != 200)

    def latencies(self, kind: str) -> list[float]:
        return sorted(a.seconds for a in self.answers if a.kind == kind and a.status == 200)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


@contextmanager
def database(url: str, folder: Path) -> Iterator[str]:
    """A new empty database: on PostgreSQL one of its own on the server, else a file."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield f"sqlite:///{folder / 'load.sqlite3'}"
        return
    name = f"optout_bench_load_{uuid.uuid4().hex[:8]}"
    server = parsed.render_as_string(hide_password=False)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as db:
            db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _prepare(
    url: str, *, people: int, duration: float
) -> tuple[due_queue.DueQueue, str, dict[str, int]]:
    engine = create_engine(url)
    try:
        upgrade(engine)
        now = utcnow()
        # Not due before the requests start (then spread over the run, see `_fire`).
        queue = due_queue.build(engine, emails=people, now=now, due_at=now + timedelta(days=1))
        with engine.begin() as db:
            admin = accounts.Principal(
                workspace_id=queue.workspace_id, role=accounts.Role.ADMIN, actor="bench"
            )
            key = accounts.create_api_key(
                db, principal=admin, name="load test", role="admin", now=now
            ).key
            p = t.people
            ids = {
                email: person_id
                for person_id, email in db.execute(
                    sa.select(p.c.id, p.c.email).where(p.c.workspace_id == queue.workspace_id)
                )
            }
    finally:
        engine.dispose()
    return queue, key, ids


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"{name} exited with {process.returncode}")


async def _wait_until_up(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"optout serve exited with {server.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("optout serve did not answer /healthz in time")


async def _fire(
    base_url: str,
    url: str,
    *,
    queue: due_queue.DueQueue,
    key: str,
    ids: dict[str, int],
    requests: int,
    duration: float,
    concurrency: int,
    seed: int,
    server: subprocess.Popen[bytes],
) -> list[Answer]:
    rng = random.Random(seed)
    tokens = UnsubscribeTokens((KEYS,))
    # Different people for the two kinds of opt-out; explain and the page pick anyone.
    chosen = rng.sample(range(1, queue.emails + 1), 2 * requests)
    plan = [("one-click unsubscribe", n) for n in chosen[:requests]]
    plan += [("opt-out (API)", n) for n in chosen[requests:]]
    plan += [("explain (API)", rng.randint(1, queue.emails)) for _ in range(requests)]
    plan += [("confirm page (GET)", rng.randint(1, queue.emails)) for _ in range(requests)]
    plan += [(BASELINE, rng.randint(1, queue.emails)) for _ in range(requests)]
    rng.shuffle(plan)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        await _wait_until_up(client, server)
        _spread(url, queue=queue, duration=duration)
        start_at = time.monotonic()

        async def one(index: int, kind: str, n: int) -> Answer:
            due = start_at + duration * index / len(plan)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            email = due_queue.person_email(n, queue.emails)
            token = tokens.issue(workspace_id=queue.workspace_id, person_id=ids[email], email=email)
            auth = {"Authorization": f"Bearer {key}"}
            async with gate:
                began = time.perf_counter()
                try:
                    if kind == "one-click unsubscribe":
                        response = await client.post(
                            f"/u/{token}",
                            content=b"List-Unsubscribe=One-Click",
                            headers={"Content-Type": "application/x-www-form-urlencoded"},
                        )
                    elif kind == "opt-out (API)":
                        response = await client.post(
                            "/api/v1/optouts", json={"email": email, "reason": "load test"},
                            headers=auth,
                        )  # fmt: skip
                    elif kind == "explain (API)":
                        response = await client.get(
                            "/api/v1/explain",
                            params={"sequence_id": queue.sequence_id, "email": email,
                                    "purpose": "send"},
                            headers=auth,
                        )  # fmt: skip
                    elif kind == BASELINE:
                        response = await client.get("/healthz")
                    else:
                        response = await client.get(f"/u/{token}")
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                seconds = time.perf_counter() - began
            answered = datetime.now(UTC).replace(tzinfo=None)
            return Answer(kind, ids[email], status, seconds, answered)

        return list(await asyncio.gather(*(one(i, k, n) for i, (k, n) in enumerate(plan))))


def _spread(url: str, *, queue: due_queue.DueQueue, duration: float) -> None:
    """Make the emails fall due over the run and a little after it, so that opt-outs meet
    emails still queued as well as emails the worker is claiming."""
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            due_queue.spread_due(
                db, sequence_id=queue.sequence_id, start=utcnow(),
                spread=timedelta(seconds=duration * 1.2),
            )  # fmt: skip
    finally:
        engine.dispose()


def _drain(url: str, *, timeout: float) -> None:
    """Wait until nothing due is left queued or in flight."""
    o = t.outbound_emails
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as db:
                left = db.scalar(
                    sa.select(sa.func.count()).where(
                        o.c.status.in_(("queued", "sending")), o.c.due_at <= utcnow()
                    )
                )
            if not left:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the worker left {left} due emails after {timeout:.0f} s")
    finally:
        engine.dispose()


def check_enforced(url: str, answers: list[Answer]) -> tuple[int, int, int]:
    """No email claimed after an opt-out's 200; returns (people checked, sent, cancelled)."""
    o = t.outbound_emails
    stopped = {
        a.person: a.answered_at
        for a in answers
        if a.status == 200 and a.kind in ("one-click unsubscribe", "opt-out (API)")
    }
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                sa.select(o.c.person_id, o.c.status, o.c.due_at, o.c.sent_at).where(
                    o.c.person_id.in_(list(stopped))
                )
            ).all()
            totals = dict(
                db.execute(sa.select(o.c.status, sa.func.count()).group_by(o.c.status)).all()
            )
    finally:
        engine.dispose()
    late = [
        row
        for row in rows
        if row.status in ("queued", "sending")
        or (row.status == "sent" and (row.sent_at > stopped[row.person_id]
                                      or row.due_at > stopped[row.person_id]))
    ]  # fmt: skip
    if late:
        raise NotEnforced(
            f"{len(late)} emails of people who had opted out were claimed or left queued "
            f"after the opt-out was answered, e.g. {late[:3]}"
        )
    return len(stopped), totals.get("sent", 0), totals.get("cancelled", 0)


def run(
    database_url: str,
    *,
    people: int = 5_000,
    requests: int = 200,
    duration: float = 30.0,
    concurrency: int = 16,
    seed: int = 1,
    progress: Progress | None = None,
) -> Outcome:
    progress = progress or Progress()
    backend = sa.make_url(database_url).get_backend_name()
    with tempfile.TemporaryDirectory(prefix="optout-bench-load-") as name:
        folder = Path(name)
        with database(database_url, folder) as url, running_sink() as (sink, smtp_port):
            queue, key, ids = _prepare(url, people=people, duration=duration)
            progress.say(f"{backend}: {people} people, due over {duration * 1.2:.0f} s")
            port = free_port()
            env = environment(
                database_url=url,
                transport_url=transport_url(smtp_port),
                OPTOUT_BASE_URL=f"http://127.0.0.1:{port}",
            )
            logs = {"server": folder / "server.log", "worker": folder / "worker.log"}
            server = start(
                ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=folder, log=logs["server"],
            )  # fmt: skip
            worker = start(["worker", "--poll", "0.2"], env=env, cwd=folder, log=logs["worker"])
            try:
                try:
                    answers = run_async(
                        _fire(
                            f"http://127.0.0.1:{port}", url, queue=queue, key=key, ids=ids,
                            requests=requests,
                            duration=duration, concurrency=concurrency, seed=seed,
                            server=server,
                        )
                    )  # fmt: skip
                    progress.say(f"{len(answers)} requests answered; draining the queue")
                    _drain(url, timeout=DRAIN_SECONDS)
                finally:
                    _stop(worker, "optout worker")
                    _stop(server, "optout serve")
            except BaseException:
                for name, log in logs.items():
                    print(f"--- {name} log (end) ---\n{tail(log)}", flush=True)
                raise
            outcome = Outcome(backend, answers)
            outcome.checked_people, outcome.sent, outcome.cancelled = check_enforced(url, answers)
            if len(sink.snapshot()) != outcome.sent or sink.duplicates():
                raise NotEnforced(
                    f"the SMTP server got {len(sink.snapshot())} messages for {outcome.sent} "
                    f"sent emails ({len(sink.duplicates())} Message-IDs twice)"
                )
    return outcome


def report(outcome: Outcome, *, requests: int, duration: float, concurrency: int) -> str:
    lines = [
        f"database {outcome.database}: {requests} requests of each kind over {duration:.0f} s, "
        f"at most {concurrency} at once; worker sent {outcome.sent}, cancelled "
        f"{outcome.cancelled}; {outcome.checked_people} opted-out people checked: no email "
        "claimed after the answer",
        "| kind | answered 200 | errors | p50 ms | p99 ms | max ms | p50 / baseline p50 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = percentile(outcome.latencies(BASELINE), 0.5)
    for kind in KINDS:
        values = outcome.latencies(kind)
        p50 = percentile(values, 0.5)
        lines.append(
            f"| {kind} | {len(values)} | {outcome.errors(kind)} | "
            f"{p50 * 1000:.0f} | {percentile(values, 0.99) * 1000:.0f} | "
            f"{(max(values) if values else float('nan')) * 1000:.0f} | {p50 / base:.1f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="sqlite:///var/bench/load.sqlite3",
        help="sqlite:///... (a new file in a temporary folder is used) or a PostgreSQL "
        "server (a database of its own is created and dropped)",
    )
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=200, help="of each kind")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    outcome = run(
        args.database_url, people=args.people, requests=args.requests, duration=args.duration,
        concurrency=args.concurrency, seed=args.seed,
    )  # fmt: skip
    print(report(outcome, requests=args.requests, duration=args.duration,
                 concurrency=args.concurrency))  # fmt: skip
    if any(outcome.errors(kind) for kind in KINDS):
        raise SystemExit("some requests were not answered 200")


if __name__ == "__main__":
    main()
