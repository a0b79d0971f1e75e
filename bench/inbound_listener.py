"""The inbound benchmark through the real SMTP listener (`python -m bench.inbound --via smtp`).

`optout inbound smtp` runs as its own process on a free loopback port against a workspace
copy, configured as an operator would (database URL, workspace and link keys in the
environment, `bench.commands`). K client threads each open one connection and send their
share of the corpus on it with `smtplib`, one message after another, all starting together
once every connection is open: the listener sees K messages in flight at most. Timed from
the first MAIL FROM to the last 250.

The envelope is what a delivering MTA would pass on: the sender is the message's own
Return-Path when it has one (the null path of a bounce included), else its From address;
the recipient is a plain inbound address. Each message is sent with CRLF line ends, as
SMTP carries it.

What the listener did is read back from the copy once it stopped: the rows it wrote (one
per message, with its class, outcome and how it matched) and how many messages each of its
transactions held (a transaction stamps all its messages with the one moment it began,
`received_at`).
"""

from __future__ import annotations

import contextlib
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from bench.commands import bare_environment, start, tail
from bench.smtp_sink import free_port
from optout.db import tables as t

HOST = "127.0.0.1"
RECIPIENT = "replies@inbound.bench.example"
STARTUP_SECONDS = 120
# A transaction of many messages on a loaded machine may take minutes; a sender waits.
REPLY_TIMEOUT_SECONDS = 1800
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<([^<>\r\n]*)>", re.I | re.M)
_FROM = re.compile(rb"^From:(.*(?:\n[ \t].*)*)$", re.I | re.M)
_ADDRESS = re.compile(rb"[A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+")


def envelope_sender(raw: bytes) -> str:
    """The MAIL FROM a delivering MTA would have had for this message ("" is the null path)."""
    head = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    found = _RETURN_PATH.search(head)
    if found:
        return found.group(1).strip().decode("ascii", "replace")
    sender = _FROM.search(head)
    address = _ADDRESS.search(sender.group(1)) if sender else None
    return address.group(0).decode("ascii", "replace") if address else ""


def on_the_wire(raw: bytes) -> bytes:
    """The message with CRLF line ends, as SMTP carries it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass
class Answers:
    """What the senders got back: each DATA's reply code (0: no reply, the error in
    `errors`) and its text, and the moments of the first MAIL FROM and the last reply."""

    codes: Counter[int] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    first: float = float("inf")
    last: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def seconds(self) -> float:
        return self.last - self.first

    def began(self, at: float) -> None:
        with self._lock:
            self.first = min(self.first, at)

    def answered(self, code: int, text: str, at: float) -> None:
        with self._lock:
            self.codes[code] += 1
            self.replies[text] += 1
            self.last = max(self.last, at)

    def failed(self, error: str) -> None:
        with self._lock:
            self.codes[0] += 1
            self.errors.append(error)


def _connection(host: str, port: int, share: list[bytes], ready: threading.Barrier,
                answers: Answers) -> None:  # fmt: skip
    try:
        client = smtplib.SMTP(host, port, timeout=REPLY_TIMEOUT_SECONDS)
        client.ehlo("client.bench.example")
    except BaseException:
        ready.abort()
        raise
    try:
        options = ["BODY=8BITMIME"] if client.has_extn("8bitmime") else []
        ready.wait()
        for raw in share:
            answers.began(time.perf_counter())
            try:
                code, text = client.mail(envelope_sender(raw), options)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, text, envelope_sender(raw))
                code, text = client.rcpt(RECIPIENT)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({RECIPIENT: (code, text)})
                code, text = client.data(on_the_wire(raw))
                answers.answered(code, text.decode("utf-8", "replace"), time.perf_counter())
            except smtplib.SMTPResponseException as exc:
                answers.answered(exc.smtp_code, str(exc.smtp_error), time.perf_counter())
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.rset()
            except (smtplib.SMTPException, OSError) as exc:
                answers.failed(f"{type(exc).__name__}: {exc}")
                return
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()


def send_all(host: str, port: int, messages: Sequence[bytes], *, connections: int) -> Answers:
    """Every message over `connections` connections at once, message i on connection
    i mod K; returns when each was answered."""
    answers = Answers()
    shares = [list(messages[k::connections]) for k in range(connections)]
    shares = [share for share in shares if share]
    ready = threading.Barrier(len(shares))
    threads = [
        threading.Thread(
            target=_connection,
            args=(host, port, share, ready, answers),
            name=f"smtp-client-{k}",
            daemon=True,
        )
        for k, share in enumerate(shares)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _wait_until_listening(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"optout inbound smtp exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=5) as probe:
                if probe.recv(512).startswith(b"220"):
                    probe.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("optout inbound smtp did not answer in time")


@contextlib.contextmanager
def listener(
    database_url: str, *, workspace: str, keys: Sequence[str], log: Path
) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """`optout inbound smtp` on a free loopback port, serving `workspace` of the database
    with these link keys, its output in `log`; stopped (SIGTERM) when the block ends.
    Yields (host, port, process)."""
    port = free_port()
    env = bare_environment(database_url=database_url)
    env.update(OPTOUT_WORKSPACE=workspace, OPTOUT_SECRET_KEYS=",".join(keys))
    with tempfile.TemporaryDirectory(prefix="optout-bench-inbound-") as name:
        folder = Path(name)
        process = start(["inbound", "smtp", "--listen", f"{HOST}:{port}"],
                        env=env, cwd=folder, log=log)  # fmt: skip
        try:
            _wait_until_listening(HOST, port, process)
            yield HOST, port, process
        except BaseException:
            print(f"--- listener log (end) ---\n{tail(log)}", flush=True)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode not in (0, -15):
            print(f"--- listener log (end) ---\n{tail(log)}", flush=True)


@dataclass(frozen=True)
class Stored:
    """What the listener left in `inbound_messages` after a row id."""

    rows: int
    distinct_message_ids: int
    outcomes: Counter[tuple[str, str, str]]
    transactions: list[int]  # messages per transaction, in the order they ran
    starts: list[datetime]  # when each began (the listener's clock)

    def by_size(self) -> list[tuple[str, int, int, float]]:
        """Transactions grouped by how many messages they held (1, 2-3, 4-7, ...): the
        group, transactions, messages, and the mean seconds from a transaction's start to
        the next one's (its own time plus the turn to the next; the last has none)."""
        groups: dict[int, list[tuple[int, float | None]]] = {}
        for i, size in enumerate(self.transactions):
            cycle = (
                (self.starts[i + 1] - self.starts[i]).total_seconds()
                if i + 1 < len(self.starts)
                else None
            )
            groups.setdefault(size.bit_length(), []).append((size, cycle))
        found = []
        for bits, members in sorted(groups.items()):
            low, high = 1 << (bits - 1), (1 << bits) - 1
            cycles = [c for _, c in members if c is not None]
            found.append(
                (
                    str(low) if low == high else f"{low}-{high}",
                    len(members),
                    sum(size for size, _ in members),
                    sum(cycles) / len(cycles) if cycles else float("nan"),
                )
            )
        return found


def stored_after(engine: sa.Engine, after_id: int) -> Stored:
    with engine.connect() as db:
        rows, distinct = db.execute(
            sa.text("SELECT count(*), count(DISTINCT message_id) FROM inbound_messages "
                    "WHERE id > :after"),
            {"after": after_id},
        ).one()  # fmt: skip
        outcomes: Counter[tuple[str, str, str]] = Counter(
            {
                (str(kind), str(outcome), str(by)): int(n)
                for kind, outcome, by, n in db.execute(
                    sa.text(
                        "SELECT kind, outcome, coalesce(match_by, 'unmatched'), count(*) "
                        "FROM inbound_messages WHERE id > :after GROUP BY 1, 2, 3"
                    ),
                    {"after": after_id},
                )
            }
        )
        m = t.inbound_messages
        runs = db.execute(
            sa.select(m.c.received_at, sa.func.count())
            .where(m.c.id > after_id)
            .group_by(m.c.received_at)
            .order_by(m.c.received_at)
        ).all()
    return Stored(
        int(rows), int(distinct), outcomes, [int(n) for _, n in runs], [at for at, _ in runs]
    )


def last_row_id(engine: sa.Engine) -> int:
    with engine.connect() as db:
        return int(db.scalar(sa.text("SELECT coalesce(max(id), 0) FROM inbound_messages")) or 0)


@contextlib.contextmanager
def recorded(pid: int, output: Path | None, *, rate: int = 50) -> Iterator[None]:
    """py-spy sampling process `pid` through the block (nothing when `output` is None),
    its collapsed stacks written to `output` (py-spy's raw format)."""
    if output is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
         "--format", "raw", "--output", str(output), "--rate", str(rate), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=120)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def where_time_goes(raw: Path, *, top: int = 30) -> str:
    """The functions holding the most samples of a py-spy raw profile: inclusive (on the
    stack) and self (the frame running), as shares of the samples of working threads."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if not total:
        return f"{raw}: no samples"
    lines = [f"{raw.name}: {total:,} samples of working threads", "", "on the stack:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "running:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """`function (path/file.py:123)` without the line number."""
    return re.sub(r":\d+\)$", ")", frame.strip())
