"""How long the `optout` command takes to start and answer, next to `python -c pass`.

Each command runs `--runs` times as its own process, as a person types it: `optout --help`,
`optout explain --help` and `optout explain EMAIL --sequence S` on the demo workspace (built
once, before the timed runs, in a SQLite file of a temporary folder). The baseline, the bare
interpreter starting and stopping, is measured in the same run, interleaved with the others
so that load from other processes falls on every command alike. Reported: median and
fastest wall time of each command, and the median's ratio to the baseline's.

    .venv/bin/python -m bench.cli_start [--runs 15]

To measure another commit, unpack it (`git archive COMMIT | tar -x -C DIR`) and run this
file with `PYTHONPATH=DIR/src`: the `optout` script then imports that tree's code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.commands import bare_environment, optout_command

EXPLAIN_EMAIL = "elena.petrov@brightwave.io"
EXPLAIN_SEQUENCE = "Q4 Outbound"


@dataclass(frozen=True)
class Timing:
    label: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def fastest(self) -> float:
        return min(self.runs)


def wall_time(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> float:
    """Seconds from starting the process to its exit; a failed command stops the run."""
    started = time.perf_counter()
    done = subprocess.run(command, env=dict(env), cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
        )
    return elapsed


def commands() -> dict[str, list[str]]:
    optout = optout_command()
    return {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
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


def measure(runs: int) -> list[Timing]:
    with tempfile.TemporaryDirectory(prefix="optout-cli-start-") as folder:
        cwd = Path(folder)
        env = bare_environment(database_url=f"sqlite:///{cwd / 'demo.sqlite3'}")
        demo = [*optout_command(), "demo"]
        subprocess.run(demo, env=env, cwd=cwd, check=True, capture_output=True)
        timed = commands()
        samples: dict[str, list[float]] = {label: [] for label in timed}
        for command in timed.values():  # one untimed run each: files in the OS cache
            wall_time(command, env=env, cwd=cwd)
        for _ in range(runs):
            for label, command in timed.items():
                samples[label].append(wall_time(command, env=env, cwd=cwd))
    return [Timing(label, values) for label, values in samples.items()]


def report(timings: list[Timing]) -> str:
    baseline = timings[0].median
    lines = [
        "| command | median s | fastest s | median / baseline |",
        "| --- | ---: | ---: | ---: |",
    ]
    for timing in timings:
        lines.append(
            f"| `{timing.label}` | {timing.median:.3f} | {timing.fastest:.3f} | "
            f"{timing.median / baseline:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    parser.add_argument("--json", action="store_true", help="print the samples as JSON too")
    args = parser.parse_args(argv)
    timings = measure(args.runs)
    print(report(timings))
    if args.json:
        print(json.dumps({t.label: t.runs for t in timings}, indent=1))


if __name__ == "__main__":
    main()
