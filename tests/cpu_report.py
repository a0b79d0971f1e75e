"""CPU per test, for finding where the suite's time goes: with OPTOUT_TEST_CPU_REPORT=path,
each test's CPU (setup, call and teardown) is written to the CSV `path`, and the run ends
with the 40 tests that took the most and the total per file.

A test's CPU is its process's (every thread: a uvicorn served in a thread counts) plus its
children's that ended and were waited for during the test (a CLI run, a send worker, a
server process). A process that outlives the test (a browser kept for the session) counts
when it ends, in the test running then; the PostgreSQL server's CPU is not counted at all.
With pytest-xdist each worker writes `path.<worker>`, a row as each test ends (a run cut
short keeps what it measured); the controller joins them into `path` at the end.
"""

from __future__ import annotations

import csv
import os
import resource
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = "OPTOUT_TEST_CPU_REPORT"
FIELDS = ("test", "worker", "process_s", "children_s", "total_s", "wall_s")
OUTSIDE = "(outside tests: session fixtures torn down, collection, start)"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class CpuReport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, str]] = []
        self.part = path.with_name(f"{path.name}.{worker_name()}")
        write(self.part, [])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        process, children, wall = time.process_time(), children_cpu(), time.monotonic()
        yield
        self._add(
            item.nodeid,
            time.process_time() - process,
            children_cpu() - children,
            time.monotonic() - wall,
        )

    def _add(self, test: str, process: float, children: float, wall: float) -> None:
        row = {
            "test": test,
            "worker": worker_name(),
            "process_s": f"{process:.3f}",
            "children_s": f"{children:.3f}",
            "total_s": f"{process + children:.3f}",
            "wall_s": f"{wall:.3f}",
        }
        self.rows.append(row)
        with self.part.open("a", newline="") as file:
            csv.DictWriter(file, fieldnames=FIELDS).writerow(row)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        in_tests = sum(float(row["process_s"]) for row in self.rows)
        children_in_tests = sum(float(row["children_s"]) for row in self.rows)
        if hasattr(session.config, "workerinput"):
            children = children_cpu() - children_in_tests
            self._add(f"{OUTSIDE} {worker_name()}", time.process_time() - in_tests, children, 0)
            return
        # The controller's children are the workers, whose CPU their own rows give.
        workers = session.config.pluginmanager.has_plugin("dsession")
        children = 0.0 if workers else children_cpu() - children_in_tests
        self._add(f"{OUTSIDE} {worker_name()}", time.process_time() - in_tests, children, 0)
        rows = []
        for part in sorted(self.path.parent.glob(f"{self.path.name}.*")):
            with part.open(newline="") as file:
                rows.extend(csv.DictReader(file))
            part.unlink()
        write(self.path, rows)
        self.summary = summarise(rows)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        summary = getattr(self, "summary", None)
        if summary:
            terminalreporter.write_sep("=", f"CPU per test ({self.path})")
            terminalreporter.write_line(summary)


def write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict[str, str]]) -> str:
    total = sum(float(row["total_s"]) for row in rows)
    lines = [f"all: {total:.0f} s of CPU (tests' processes and their children)"]
    ranked = sorted(rows, key=lambda row: -float(row["total_s"]))
    lines.append("top 40 by CPU (total = process + children; wall):")
    for row in ranked[:40]:
        lines.append(
            f"  {float(row['total_s']):7.1f} s = {float(row['process_s']):7.1f}"
            f" + {float(row['children_s']):6.1f}  (wall {float(row['wall_s']):6.1f})"
            f"  {row['test']}"
        )
    per_file: dict[str, float] = defaultdict(float)
    for row in rows:
        per_file[row["test"].split("::")[0]] += float(row["total_s"])
    lines.append("total per file:")
    for name, seconds in sorted(per_file.items(), key=lambda pair: -pair[1]):
        lines.append(f"  {seconds:7.1f} s  {name}")
    return "\n".join(lines)


def register(config: pytest.Config) -> None:
    """Turn the report on when OPTOUT_TEST_CPU_REPORT names a file."""
    path = os.environ.get(ENV)
    if path:
        config.pluginmanager.register(CpuReport(Path(path).resolve()), "optout-cpu-report")
