"""The longest write-lock hold under a big import, on SQLite:
`python -m bench.lock_hold [--people N] [--rows N] [--rate R] [--quiet S]`.

On a copy of the generated workspace (`bench.load`, 1,000,000 people by default) a real
`optout serve --no-worker` answers a steady stream of RFC 8058 one-click unsubscribes
(`POST /u/<token>`, open loop: each sent at its moment whether or not the ones before it
were answered), first for `--quiet` seconds with nothing else running (the same-run
baseline), then while `optout import people` (the command a user runs, its own process)
imports a CSV of `--rows` rows: half of them people already there (a new title), half new
people at the workspace's companies. A probe thread beside them repeatedly takes the
write lock of the same SQLite file (`BEGIN IMMEDIATE; ROLLBACK`) and records how long each
attempt waited: the longest wait is the longest time anyone held the write lock (plus
SQLite's busy-wait granularity, up to 100 ms).

Reported per phase: the one-click POSTs sent, answered 200, their latency (p50, p99, max),
and the longest probe wait; then the import's time and how many of the unsubscribed people
ended opted out. `--import-timeout S` stops waiting for the import after S seconds: the
phases are reported as they were until then, with how much of the file had been applied.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.commands import KEYS, environment, run_async, start, tail
from bench.generate import WORKSPACE_ID
from bench.inbound import copy_of, params_for, settle
from bench.load import Progress, prepare
from bench.smtp_sink import free_port
from optout.clock import utcnow
from optout.db.engine import create_engine
from optout.mail.tokens import UnsubscribeTokens
from optout.services.access import accounts

STARTUP_SECONDS = 300
IMPORT_TIMEOUT_SECONDS = 6 * 3600
IMPORTED = " (imported)"  # the mark of an updated person's new title
TIMED_OUT = -2  # the import was still running when the bench stopped waiting
PROBE_PAUSE_SECONDS = 0.01
PROBE_TIMEOUT_SECONDS = 3600
TAIL_SECONDS = 5.0


@dataclass(frozen=True)
class Answer:
    phase: str
    person_id: int
    status: int  # 0: no answer (connection error, timeout)
    seconds: float
    error: str = ""  # with no answer: the client's error, e.g. "ReadTimeout"


@dataclass
class Probe:
    """Takes the write lock again and again; records each wait by phase."""

    path: str
    phase: str = "quiet"
    waits: dict[str, list[float]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    timeouts: int = 0  # attempts that gave up after PROBE_TIMEOUT_SECONDS

    def run(self) -> None:
        db = sqlite3.connect(self.path, timeout=PROBE_TIMEOUT_SECONDS, isolation_level=None)
        try:
            while not self.stop.is_set():
                phase = self.phase
                began = time.perf_counter()
                try:
                    db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # busy past the timeout: wait again
                    self.timeouts += 1
                else:
                    db.execute("ROLLBACK")
                waited = time.perf_counter() - began
                self.waits.setdefault(phase, []).append(waited)
                time.sleep(PROBE_PAUSE_SECONDS)
        finally:
            db.close()

    def longest(self, phase: str) -> float:
        return max(self.waits.get(phase, [0.0]))


def write_csv(path: Path, db: sa.Connection, *, rows: int, skip: set[int]) -> int:
    """Half the rows update people already there, half are new people at the workspace's
    companies; returns how many are new."""
    # One row per address: people sharing one (CRM duplicates) would otherwise get two
    # different titles, which the import rightly rejects.
    existing = list(
        {
            str(email): (int(person_id), str(email))
            for person_id, email in db.execute(sa.text("SELECT id, email FROM people ORDER BY id"))
            if person_id not in skip
        }.values()
    )
    domains = [d for (d,) in db.execute(sa.text("SELECT domain FROM companies ORDER BY id"))]
    rng = random.Random(7)
    updates = rng.sample(existing, min(rows // 2, len(existing)))
    fresh = rows - len(updates)
    titles = ("VP Sales", "Head of Revenue Operations", "Account Executive", "CFO", "Engineer")
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["Email", "First Name", "Last Name", "Title"])
        for i, (_, email) in enumerate(updates):
            out.writerow([email, "", "", f"{titles[i % len(titles)]}{IMPORTED}"])
        for i in range(fresh):
            domain = domains[rng.randrange(len(domains))]
            out.writerow([f"new.person{i}@{domain}", "New", f"Person{i}", titles[i % len(titles)]])
    return fresh


async def stream(
    base_url: str,
    targets: list[tuple[int, str]],
    *,
    rate: float,
    phase: list[str],
    until: threading.Event,
) -> list[Answer]:
    """One-click POSTs at `rate` a second until `until` is set, each to the next target."""
    tokens = UnsubscribeTokens((KEYS,))
    answers: list[Answer] = []
    pending: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def one(person_id: int, email: str, label: str) -> None:
            token = tokens.issue(workspace_id=WORKSPACE_ID, person_id=person_id, email=email)
            began = time.perf_counter()
            try:
                response = await client.post(
                    f"/u/{token}",
                    content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                status, error = response.status_code, ""
            except httpx.HTTPError as exc:
                status, error = 0, type(exc).__name__
            answers.append(Answer(label, person_id, status, time.perf_counter() - began, error))

        started = time.monotonic()
        for n, (person_id, email) in enumerate(targets):
            if until.is_set():
                break
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            task = asyncio.create_task(one(person_id, email, phase[0]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
    return answers


def _api_key(url: str) -> str:
    """An admin API key of the workspace, made as `optout api-key create` makes one."""
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            admin = accounts.Principal(
                workspace_id=WORKSPACE_ID, role=accounts.Role.ADMIN, actor="bench"
            )
            return accounts.create_api_key(
                db, principal=admin, name="lock bench", role="admin", now=utcnow()
            ).key
    finally:
        engine.dispose()


MAPPING = ("Email=email", "First Name=first_name", "Last Name=last_name", "Title=title")


def _import(
    via: str,
    csv_path: Path,
    *,
    env: dict[str, str],
    folder: Path,
    log: Path,
    base_url: str,
    key: str,
    timeout: float,
) -> int:
    """Run the import as a user would; 0 when it applied, TIMED_OUT when it was still
    running after `timeout` seconds, else the exit or HTTP status."""
    if via == "cli":
        importer = start(
            ["import", "people", str(csv_path), *(a for m in MAPPING for a in ("--map", m)),
             "--json"],
            env=env, cwd=folder, log=log,
        )  # fmt: skip
        try:
            return importer.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return TIMED_OUT
        finally:
            if importer.poll() is None:
                importer.kill()
    try:
        response = httpx.post(
            f"{base_url}/api/v1/imports/people",
            params=[("map", m) for m in MAPPING],
            content=csv_path.read_bytes(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
            timeout=httpx.Timeout(timeout, connect=60),
        )
    except httpx.ReadTimeout:
        return TIMED_OUT
    log.write_text(f"{response.status_code}\n{response.text[:20000]}")
    return 0 if response.status_code == 200 else response.status_code


def _wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"optout serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("optout serve did not answer /healthz in time")


@dataclass
class Result:
    people: int
    rows: int
    new_rows: int
    rate: float
    import_seconds: float
    import_exit: int
    answers: list[Answer]
    probe: Probe
    opted_out: int
    people_after: int
    people_before: int
    via: str
    updated: int  # people already there whose row the file changed, when the bench stopped

    def of(self, phase: str) -> list[Answer]:
        return [a for a in self.answers if a.phase == phase]


def _percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def run(
    *,
    people: int,
    rows: int,
    rate: float,
    quiet: float,
    progress: Progress,
    database_url: str | None = None,
    via: str = "api",
    import_timeout: float = IMPORT_TIMEOUT_SECONDS,
) -> Result:
    """`database_url`: a SQLite file for the workspace (default: the cache in var/bench/);
    `via`: the import as `POST /api/v1/imports/people` ("api") or `optout import people`
    ("cli")."""
    params = params_for(people)
    source = prepare(params, url=database_url, reuse=True, progress=progress)
    with tempfile.TemporaryDirectory(prefix="optout-bench-lock-") as name, copy_of(
        source, f"lock-{params.key()}"
    ) as url:  # fmt: skip
        folder = Path(name)
        database = sa.make_url(url).database
        assert database is not None
        product = create_engine(url)
        try:
            began = time.perf_counter()
            rules = settle(product, now=utcnow())
        finally:
            product.dispose()
        progress.say(
            f"statistics and the stored matches of {rules:,} rules, as the worker's pass "
            f"leaves them, in {time.perf_counter() - began:.1f} s"
        )
        engine = sa.create_engine(url)
        with engine.connect() as db:
            people_before = int(db.scalar(sa.text("SELECT count(*) FROM people")) or 0)
            last_id = int(db.scalar(sa.text("SELECT max(id) FROM people")) or 0)
            # The unsubscribers: people the file does not touch, spread over the workspace.
            targets = [
                (int(i), str(e))
                for i, e in db.execute(
                    sa.text(
                        "SELECT id, email FROM people WHERE id % 7 = 3 AND email NOT IN "
                        "(SELECT email FROM suppressions) ORDER BY id"
                    )
                )
            ]
            random.Random(3).shuffle(targets)
            targets = list({e: (i, e) for i, e in targets}.values())
            csv_path = folder / "people.csv"
            new_rows = write_csv(csv_path, db, rows=rows, skip={i for i, _ in targets})
        engine.dispose()
        key = _api_key(url)
        progress.say(f"wrote {rows:,} rows ({new_rows:,} new people) to {csv_path.name}")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = environment(
            database_url=url,
            transport_url=f"outbox:{folder / 'outbox'}",
            OPTOUT_BASE_URL=base_url,
            OPTOUT_WORKSPACE="bench",
        )
        logs = {"server": folder / "server.log", "import": folder / "import.log"}
        server = start(
            ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=folder, log=logs["server"],
        )  # fmt: skip
        probe = Probe(database)
        prober = threading.Thread(target=probe.run, daemon=True)
        phase = ["quiet"]
        done = threading.Event()
        answers: list[Answer] = []
        import_seconds, import_exit = 0.0, -1
        try:
            _wait_until_up(base_url, server)
            progress.say("optout serve answers; quiet phase")
            prober.start()
            firing = threading.Thread(
                target=lambda: answers.extend(
                    run_async(stream(base_url, targets, rate=rate, phase=phase, until=done))
                ),
                daemon=True,
            )
            firing.start()
            time.sleep(quiet)
            phase[0] = probe.phase = "import"
            progress.say(f"starting the import ({via})")
            began = time.perf_counter()
            import_exit = _import(via, csv_path, env=env, folder=folder, log=logs["import"],
                                  base_url=base_url, key=key, timeout=import_timeout)  # fmt: skip
            import_seconds = time.perf_counter() - began
            progress.say(f"import ended with {import_exit} after {import_seconds:.1f} s")
            phase[0] = probe.phase = "after"
            time.sleep(TAIL_SECONDS)
            done.set()
            firing.join(timeout=180)
            probe.stop.set()
            prober.join(timeout=PROBE_TIMEOUT_SECONDS)
        except BaseException:
            for label, log in logs.items():
                print(f"--- {label} log (end) ---\n{tail(log)}", flush=True)
            raise
        finally:
            done.set()
            probe.stop.set()
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        if import_exit not in (0, TIMED_OUT):
            print(f"--- import log (end) ---\n{tail(logs['import'])}", flush=True)
        engine = sa.create_engine(url)
        with engine.connect() as db:
            ok = {a.person_id for a in answers if a.status == 200}
            emails = [e for i, e in targets if i in ok]
            opted_out = 0
            for chunk in range(0, len(emails), 500):
                opted_out += int(
                    db.scalar(
                        sa.text(
                            "SELECT count(DISTINCT email) FROM suppressions WHERE kind = "
                            "'opt_out' AND email IN :emails"
                        ).bindparams(sa.bindparam("emails", expanding=True)),
                        {"emails": emails[chunk : chunk + 500]},
                    )
                    or 0
                )
            people_after = int(db.scalar(sa.text("SELECT count(*) FROM people")) or 0)
            updated = int(
                db.scalar(
                    sa.text("SELECT count(*) FROM people WHERE title LIKE :mark AND id <= :last"),
                    {"mark": f"%{IMPORTED}", "last": last_id},
                )
                or 0
            )
        engine.dispose()
    return Result(
        people, rows, new_rows, rate, import_seconds, import_exit, answers, probe,
        opted_out, people_after, people_before, via, updated,
    )  # fmt: skip


def report(result: Result) -> str:
    ended = (
        f"still running when the bench stopped waiting after {result.import_seconds:.1f} s "
        f"({result.updated:,} of {result.rows - result.new_rows:,} people already there "
        f"updated, {result.people_after - result.people_before:,} of {result.new_rows:,} new "
        "people added)"
        if result.import_exit == TIMED_OUT
        else f"ended with {result.import_exit}, {result.import_seconds:.1f} s"
    )
    lines = [
        f"{result.rows:,}-row people import ({result.new_rows:,} new, {result.via}) into the "
        f"{result.people:,}-person workspace: {ended}; people {result.people_before:,} -> "
        f"{result.people_after:,}. One-click POSTs at {result.rate:g}/s.",
        "",
        "| phase | POSTs | answered 200 | not 200 | p50 ms | p99 ms | max ms "
        "| longest write-lock wait (probe) ms | probes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase in ("quiet", "import", "after"):
        answers = result.of(phase)
        ok = sorted(a.seconds for a in answers if a.status == 200)
        every = [a.seconds for a in answers]
        lines.append(
            f"| {phase} | {len(answers)} | {len(ok)} | {len(answers) - len(ok)} | "
            f"{_percentile(ok, 0.5) * 1000:.0f} | {_percentile(ok, 0.99) * 1000:.0f} | "
            f"{(max(every) if every else float('nan')) * 1000:.0f} | "
            f"{result.probe.longest(phase) * 1000:.0f} | "
            f"{len(result.probe.waits.get(phase, []))} |"
        )
    answered = sum(1 for a in result.answers if a.status == 200)
    statuses = sorted({a.status for a in result.answers})
    errors = Counter(a.error for a in result.answers if a.error)
    quiet_max = result.probe.longest("quiet")
    lines += [
        "",
        f"answered 200: {answered:,} of {len(result.answers):,} (statuses seen: {statuses}"
        + "".join(f"; no answer, {kind}: {n}" for kind, n in sorted(errors.items()))
        + "); "
        f"people answered 200 who ended opted out: {result.opted_out:,}",
        f"longest write-lock wait during the import: {result.probe.longest('import'):.2f} s "
        f"({result.probe.timeouts} probe attempts gave up after {PROBE_TIMEOUT_SECONDS} s), "
        f"{result.probe.longest('import') / max(quiet_max, 1e-3):.0f}x the quiet phase's "
        f"{quiet_max * 1000:.0f} ms",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lock_hold", description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--rate", type=float, default=5.0, help="one-click POSTs a second")
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds before the import")
    parser.add_argument(
        "--via", choices=("api", "cli"), default="api",
        help="POST /api/v1/imports/people, or `optout import people` in its own process",
    )  # fmt: skip
    parser.add_argument(
        "--import-timeout", type=float, default=IMPORT_TIMEOUT_SECONDS,
        help="seconds to wait for the import before reporting what it did until then",
    )  # fmt: skip
    args = parser.parse_args(argv)
    progress = Progress()
    result = run(
        people=args.people, rows=args.rows, rate=args.rate, quiet=args.quiet,
        progress=progress, via=args.via, import_timeout=args.import_timeout,
    )  # fmt: skip
    print(report(result))
    command = " ".join(["python -m bench.lock_hold", *sys.argv[1:]])
    print(f"command: {command}; run at {datetime.now():%Y-%m-%d %H:%M}")
    if result.import_exit == TIMED_OUT:
        raise SystemExit(f"the import did not finish in {args.import_timeout:g} s")
    if result.import_exit != 0:
        raise SystemExit("the import failed")


if __name__ == "__main__":
    main()
