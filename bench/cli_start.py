"""How long the `optout` command takes to start and answer, next to `python -c pass`.

Each command runs `--runs` times as its own process, as a person types it: `optout --help`,
`optout explain --help` and `optout explain EMAIL --sequence S` on the demo workspace (built
once, before the timed runs, in a SQLite file of a temporary folder). The baseline, the bare
interpreter starting and stopping, is measured in the same run, interleaved with the others
so that load from other processes falls on every command alike. Compiled modules are kept
between runs (in the temporary folder), as an installed package has them. Reported: median and
fastest wall time of each command, the median's ratio to the baseline's, and the median CPU
time (user + system) the command's process used, which other processes' load changes much
less than the wall time on a busy machine.

    .venv/bin/python -m bench.cli_start [--runs 15]

With `--libraries`, the run also times importing each library the commands need, alone
and together (`python -c "import ..."`, with the first tree's code): what a start costs
before optout's own modules and work.

To compare commits in one run, unpack each (`git archive COMMIT | tar -x -C DIR`, or a
`git worktree`) and name it: `--tree before=DIR1 --tree after=DIR2`. Each tree's commands
run with `PYTHONPATH=DIR/src` (the `optout` script then imports that tree's code) on a
demo database that tree built; every round runs every command of every tree once.

With `--large FILE`, a SQLite file of the benchmark generator (`bench.load`, workspace
`bench`; the 1,000,000-person one is `var/bench/optout-bench-p1000000-...sqlite3`), each
round also runs `optout --workspace bench explain` on it for its first person and first
sequence, each tree on a copy of its own in the temporary folder (the file itself is only
read, once, while no command runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.commands import bare_environment, optout_command
from bench.trees import Tree, tree_of

EXPLAIN_EMAIL = "elena.petrov@brightwave.io"
EXPLAIN_SEQUENCE = "Q4 Outbound"
BASELINE = "python -c pass (baseline)"


@dataclass(frozen=True)
class Timing:
    tree: str
    label: str
    runs: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def fastest(self) -> float:
        return min(self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def environment(tree: Tree, database_url: str, *, bytecode: Path) -> dict[str, str]:
    """The command's environment: the database, and compiled modules kept in `bytecode`
    from one run to the next, as an installed package keeps them (a development shell's
    PYTHONDONTWRITEBYTECODE would have every run compile optout's modules again)."""
    env = bare_environment(database_url=database_url)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    if tree.src is not None:
        env["PYTHONPATH"] = str(tree.src)
    else:
        env.pop("PYTHONPATH", None)
    return env


def wall_time(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds from starting the process to its exit, and the CPU seconds it used; a
    failed command stops the run."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=dict(env), cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
        )
    return elapsed, cpu


def commands() -> dict[str, list[str]]:
    optout = optout_command()
    return {
        "optout --help": [*optout, "--help"],
        "optout explain --help": [*optout, "explain", "--help"],
        f"optout explain {EXPLAIN_EMAIL} --sequence '{EXPLAIN_SEQUENCE}'": [
            *optout,
            "explain",
            EXPLAIN_EMAIL,
            "--sequence",
            EXPLAIN_SEQUENCE,
        ],
    }


LARGE_WORKSPACE = "bench"


@dataclass(frozen=True)
class Large:
    """The generator's workspace to explain a decision in: the file, and who and what to
    ask about (its first person and first sequence), with how many people it holds."""

    path: Path
    email: str
    sequence: str
    people: int

    @classmethod
    def read(cls, path: Path) -> Large:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            (workspace_id,) = db.execute(
                "SELECT id FROM workspaces WHERE slug = ?", (LARGE_WORKSPACE,)
            ).fetchone()
            email, people = db.execute(
                "SELECT (SELECT email FROM people WHERE workspace_id = ? ORDER BY id LIMIT 1),"
                " (SELECT count(*) FROM people WHERE workspace_id = ?)",
                (workspace_id, workspace_id),
            ).fetchone()
            (sequence,) = db.execute(
                "SELECT name FROM sequences WHERE workspace_id = ? ORDER BY id LIMIT 1",
                (workspace_id,),
            ).fetchone()
        return cls(path=path, email=email, sequence=sequence, people=people)

    def copy_to(self, target: Path) -> Path:
        """A consistent copy (SQLite's backup), so no command touches the original."""
        with (
            sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as source,
            sqlite3.connect(target) as copy,
        ):
            source.backup(copy)
        return target

    def command(self) -> tuple[str, list[str]]:
        label = f"optout explain {self.email} --sequence '{self.sequence}' ({self.people:,} people)"
        arguments = ["--workspace", LARGE_WORKSPACE, "explain", self.email]
        return label, [*optout_command(), *arguments, "--sequence", self.sequence]


# What `optout explain` imports from other projects, alone and together, and what Typer
# imported to check option values before optout.cli.coercion.
_EXPLAINS_LIBRARIES = (
    "typer, sqlalchemy.dialects.sqlite.pysqlite, optout.db.tables, rich.table, email_validator"
)
LIBRARIES: dict[str, str] = {
    "Typer": "import typer",
    "SQLAlchemy": "import sqlalchemy",
    "SQLAlchemy and its SQLite driver": "import sqlalchemy.dialects.sqlite.pysqlite",
    "SQLAlchemy, SQLite and PostgreSQL dialects": (
        "import sqlalchemy.dialects.sqlite.pysqlite, sqlalchemy.dialects.postgresql"
    ),
    # Before f7928f0 the tables loaded the PostgreSQL dialect; since, no dialect at all.
    "optout's tables (the first tree's)": "import optout.db.tables",
    "rich's table": "import rich.table",
    "email-validator": "import email_validator",
    "pydantic and one TypeAdapter": "import pydantic; pydantic.TypeAdapter(str)",
    "all of explain's libraries": f"import {_EXPLAINS_LIBRARIES}",
    # As a command imports them since ddca96c (optout.cli.collector).
    "all of explain's libraries, collector off": (
        f"import gc; gc.disable(); import {_EXPLAINS_LIBRARIES}"
    ),
}


def measure(
    trees: Sequence[Tree], runs: int, *, libraries: bool = False, large: Large | None = None
) -> list[Timing]:
    with tempfile.TemporaryDirectory(prefix="optout-cli-start-") as folder:
        cwd = Path(folder)
        envs = {}
        large_envs = {}
        for tree in trees:
            env = environment(
                tree, f"sqlite:///{cwd / (tree.label + '.sqlite3')}", bytecode=cwd / "bytecode"
            )
            demo = [*optout_command(), "demo"]
            subprocess.run(demo, env=env, cwd=cwd, check=True, capture_output=True)
            envs[tree.label] = env
            if large is not None:
                copy = large.copy_to(cwd / f"{tree.label}-large.sqlite3")
                large_envs[tree.label] = environment(
                    tree, f"sqlite:///{copy}", bytecode=cwd / "bytecode"
                )
        plan = [("", BASELINE, [sys.executable, "-c", "pass"], envs[trees[0].label])]
        for tree in trees:
            plan += [
                (tree.label, label, command, envs[tree.label])
                for label, command in commands().items()
            ]
            if large is not None:
                label, command = large.command()
                plan.append((tree.label, label, command, large_envs[tree.label]))
        if libraries:
            plan += [
                ("", f"{label}: {code}", [sys.executable, "-c", code], envs[trees[0].label])
                for label, code in LIBRARIES.items()
            ]
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {
            (t, label): [] for t, label, _, _ in plan
        }
        for _, _, command, env in plan:  # one untimed run each: files in the OS cache
            wall_time(command, env=env, cwd=cwd)
        for _ in range(runs):
            for tree_label, label, command, env in plan:
                samples[(tree_label, label)].append(wall_time(command, env=env, cwd=cwd))
    return [
        Timing(tree, label, [wall for wall, _ in values], [cpu for _, cpu in values])
        for (tree, label), values in samples.items()
    ]


def report(timings: list[Timing]) -> str:
    baseline = timings[0].median
    lines = [
        "| code | command | median s | fastest s | median / baseline | CPU s (median) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for timing in timings:
        lines.append(
            f"| {timing.tree} | `{timing.label}` | {timing.median:.3f} | {timing.fastest:.3f} | "
            f"{timing.median / baseline:.1f}x | {timing.cpu_median:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    parser.add_argument(
        "--tree", type=tree_of, action="append", help="LABEL=DIR of an unpacked commit (repeat)"
    )
    parser.add_argument("--json", action="store_true", help="print the samples as JSON too")
    parser.add_argument(
        "--libraries", action="store_true", help="also time importing the libraries alone"
    )
    parser.add_argument(
        "--large",
        type=Path,
        help="also time explain in this SQLite file of bench.load (workspace 'bench')",
    )
    args = parser.parse_args(argv)
    trees = args.tree or [Tree("installed", None)]
    large = Large.read(args.large) if args.large else None
    print(f"load average before: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    timings = measure(trees, args.runs, libraries=args.libraries, large=large)
    print(f"load average after: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print(report(timings))
    if args.json:
        print(
            json.dumps(
                [
                    {"tree": t.tree, "command": t.label, "runs": t.runs, "cpu": t.cpu}
                    for t in timings
                ]
            )
        )


if __name__ == "__main__":
    main()
