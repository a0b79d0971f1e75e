"""Starting the real `optout` command (`optout worker`, `optout serve`) as separate processes,
configured only through the environment, as an operator would run them."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

KEYS = "bench-unsubscribe-secret-0123456789abcdef"

T = TypeVar("T")


def optout_command() -> list[str]:
    """The installed `optout` script next to this Python, else the same entry point."""
    script = Path(sys.executable).parent / "optout"
    if script.exists():
        return [str(script)]
    found = shutil.which("optout")
    if found:
        return [found]
    return [sys.executable, "-c", "from optout.cli import main; main()"]


def bare_environment(*, database_url: str) -> dict[str, str]:
    """The variables a worker on another machine gets: the database URL and nothing else of
    optout's (link keys, public address and relay come from the database, optout.deployment)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OPTOUT_") or key == "OPTOUT_TEST_POSTGRES_URL"
    }
    env["OPTOUT_DATABASE_URL"] = database_url
    return env


def environment(*, database_url: str, transport_url: str, **extra: str) -> dict[str, str]:
    """The variables a worker or server gets: the database, where mail goes, and the link
    secret the web app shares (else each process would make its own, see optout.config)."""
    env = bare_environment(database_url=database_url)
    env.update(
        OPTOUT_TRANSPORT_URL=transport_url,
        OPTOUT_SECRET_KEYS=KEYS,
        **extra,
    )
    return env


def start(
    arguments: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    capture_stdout: bool = False,
) -> subprocess.Popen[bytes]:
    """`optout ARGUMENTS` in `cwd`, its output appended to `log`.

    A long-running process (`serve`, `worker` without `--once`) must not write into a pipe
    nobody reads: once the pipe's buffer (64 KB) is full it blocks on its next log line. So
    stdout goes to the log too, unless `capture_stdout` asks for it in a pipe, for a short
    command whose output the caller reads with `communicate()`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [*optout_command(), *arguments],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE if capture_stdout else output,
            stderr=output,
        )


def tail(log: Path, *, size: int = 3000) -> str:
    """The end of a log file, for the message of a failed run."""
    if not log.exists():
        return "(no log)"
    with log.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - size))
        return f.read().decode(errors="replace")


def run_async(main: Coroutine[object, object, T]) -> T:
    """`asyncio.run(main)` in a thread of its own: a benchmark's clients run the same
    whether the caller's thread has an event loop running or not (a test process where
    Playwright's synchronous API keeps one running in the main thread)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, main).result()
