"""Starting the real `optout` command (`optout worker`, `optout serve`) as separate processes,
configured only through the environment, as an operator would run them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

KEYS = "bench-unsubscribe-secret-0123456789abcdef"


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
    arguments: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`optout ARGUMENTS` in `cwd`, stdout kept in memory, stderr appended to `log`."""
    with log.open("ab") as errors:
        return subprocess.Popen(
            [*optout_command(), *arguments],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
