"""The house's contracts: no import cycle, arrows that point down the layers only, and
every filter field the decision index stores matches for re-queued when its data moves.

The import graph is read from the source with `ast`, function-local imports included: a
cycle hidden inside a function is still a cycle (a newcomer cannot tell which module may
load first, and a refactor that moves the import to the top fails at start-up)."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnClause

from optout.cli.registry import COMMANDS
from optout.db import tables as t
from optout.filters import fields as registry
from optout.filters.fields import FIELDS, Field, FieldType, lookup

SRC = Path(__file__).resolve().parents[1] / "src" / "optout"


# The import graph.


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _known(name: str) -> str | None:
    """The module of ours that `name` (a module, or a name inside one) is or lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, source: str, *, is_package: bool = False) -> Iterator[str]:
    """Every module of ours that `module` imports anywhere in its `source`, inside
    functions too. `from a import b` imports `a.b` when that is a module, else `a`; a
    package's own `__init__` is not an edge of its submodules (Python runs it first,
    whoever imports them)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            known = _known(target) if target.startswith("optout") else None
            if known and known != module:
                yield known


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module to the modules of ours it imports. Read when a test first asks, not when
    this file is collected: parsing every module takes seconds of CPU, which every
    pytest-xdist worker (and the controller) paid at collection, whether or not it ran
    a test of this file."""
    return {
        m: set(_imported(m, p.read_text(), is_package=p.name == "__init__.py"))
        for m, p in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_is_read_whole() -> None:
    hidden = "def read():\n    from optout.services.exclusions import saves, nothing_such\n"
    assert set(_imported("optout.services.exclusions.look_alikes", hidden)) == {
        "optout.services.exclusions.saves",
        "optout.services.exclusions",
    }
    relative = "from . import events\nfrom ..db import tables\n"
    assert set(_imported("optout.services.subjects", relative)) == {
        "optout.services.events",
        "optout.db.tables",
    }
    assert "optout.services.decision_index" in import_graph()["optout.services"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere() -> None:
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


# Arrows point down: a layer imports the layers below it, never one above.


@dataclass(frozen=True)
class Forbidden:
    source: str
    targets: tuple[str, ...]
    why: str


FORBIDDEN = (
    Forbidden(
        "optout.db",
        (
            "optout.services",
            "optout.web",
            "optout.cli",
            "optout.sending",
            "optout.crm",
            "optout.inbound",
            "optout.jobs",
            "optout.demo",
        ),
        "storage imports no use-case: what a commit must bring up to date is registered "
        "from above (`db.engine.before_every_commit`)",
    ),
    Forbidden(
        "optout.services",
        (
            "optout.web",
            "optout.cli",
            "optout.demo",
            "optout.jobs",
            "optout.crm",
            "optout.inbound",
            "optout.sending",
        ),
        "use-cases serve the pages, the API, the CLI, the worker and the connectors alike",
    ),
    Forbidden(
        "optout.mail",
        (
            "optout.db",
            "optout.services",
            "optout.sending",
            "optout.web",
            "optout.cli",
            "optout.crm",
            "optout.inbound",
            "optout.jobs",
            "optout.demo",
        ),
        "an email is written, signed and timed without a database or a worker",
    ),
    Forbidden("optout.web.api", ("optout.web.pages",), "the JSON API does not run on pages"),
    Forbidden("optout.web.pages", ("optout.web.api",), "pages do not run on the JSON API"),
    Forbidden("optout.cli", ("optout.demo",), "commands call use-cases, not the demo"),
    Forbidden("optout.sending", ("optout.web", "optout.cli"), "the worker runs without the app"),
    Forbidden("optout.crm", ("optout.web", "optout.cli"), "a sync runs without the app"),
)

# Arrows that point the wrong way today, each with why it stays.
ALLOWED = {
    # `optout demo` itself: the command builds the demo workspace and prints its tour.
    ("optout.cli.workspace", "optout.demo.build"): "the `optout demo` command",
    ("optout.cli.workspace", "optout.demo.tour"): "the `optout demo` command",
    # One number both share: the largest id a stored row can have (a larger one is a 404).
    ("optout.web.pages.route", "optout.web.api.common"): "the largest id",
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _wrong_way() -> Iterator[str]:
    for rule in FORBIDDEN:
        for module in sorted(m for m in import_graph() if _within(m, rule.source)):
            for target in sorted(import_graph()[module]):
                if any(_within(target, bad) for bad in rule.targets) and (
                    (module, target) not in ALLOWED
                ):
                    yield f"{module} -> {target} ({rule.why})"


def test_arrows_point_down_the_layers() -> None:
    wrong = list(_wrong_way())
    assert not wrong, "imports that point the wrong way:\n" + "\n".join(wrong)


def test_every_allowed_wrong_way_arrow_is_one_the_code_has() -> None:
    """An exception that no longer happens is dropped from the list, so it stays true."""
    gone = [pair for pair in ALLOWED if pair[1] not in import_graph().get(pair[0], set())]
    assert not gone, f"no longer imported, so drop them from ALLOWED: {gone}"


# The use-cases: a shared tier at the root of `services/` that every folder may import,
# and one folder per concept above it. One more module stays at the root beside the
# shared tier: `eligibility`, the data the send-time checks read, which reads sequences,
# exclusions, mailboxes and enrollments and is read by the claim and by enrolling.

SERVICES = "optout.services"
# The folders from top to bottom: a folder imports the root and the folders after it in
# this list, never one before it (so never each other in a cycle either).
FOLDERS = (
    "imports",
    "suppression",
    "access",
    "enrollments",
    "sequences",
    "directory",
    "exclusions",
    "mailboxes",
    "reads",
    "send_queue",
)
# The shared tier: imported by every family, it imports no folder.
SHARED = (
    "activities",
    "audience_index",
    "decision_index",
    "decision_index_few",
    "enforcement",
    "enrollment_queue",
    "events",
    "exclusion_rules",
    "filters",
    "fresh_rules",
    "id_lists",
    "in_parts",
    "monitoring",
    "naming",
    "spreadsheet",
    "staging",
    "subjects",
    "workspaces",
)


def _folder(module: str) -> str | None:
    """The folder of `services/` that `module` lives in, if any."""
    if not _within(module, SERVICES) or module == SERVICES:
        return None
    rest = module[len(SERVICES) + 1 :].split(".")
    package = module in MODULES and MODULES[module].name == "__init__.py"
    return rest[0] if len(rest) > 1 or package else None


def _folders_on_disk() -> set[str]:
    return {p.parent.name for p in (SRC / "services").glob("*/__init__.py")}


def _shared_importing_a_folder(graph: dict[str, set[str]], folder_of: dict[str, str]) -> list[str]:
    return [
        f"{SERVICES}.{shared} -> {target}"
        for shared in SHARED
        for target in sorted(graph.get(f"{SERVICES}.{shared}", set()))
        if target in folder_of
    ]


def _folders_importing_up(
    graph: dict[str, set[str]], folder_of: dict[str, str], order: tuple[str, ...]
) -> list[str]:
    rank = {folder: place for place, folder in enumerate(order)}
    return [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module in folder_of
        for target in sorted(targets)
        if target in folder_of and rank[folder_of[target]] < rank[folder_of[module]]
    ]


def _folder_of(modules: Iterable[str]) -> dict[str, str]:
    found = {}
    for module in modules:
        folder = _folder(module)
        if folder is not None:
            found[module] = folder
    return found


def test_every_folder_of_the_use_cases_has_its_place_in_the_order() -> None:
    assert _folders_on_disk() == set(FOLDERS)
    assert all(f"{SERVICES}.{shared}" in MODULES for shared in SHARED)


def test_the_shared_tier_imports_no_folder() -> None:
    wrong = _shared_importing_a_folder(import_graph(), _folder_of(import_graph()))
    assert not wrong, "the shared tier imports a folder:\n" + "\n".join(wrong)


def test_folders_import_only_the_folders_below_them() -> None:
    wrong = _folders_importing_up(import_graph(), _folder_of(import_graph()), FOLDERS)
    assert not wrong, "a folder imports one above it:\n" + "\n".join(wrong)


def test_the_folder_rules_see_a_wrong_import() -> None:
    shared, low, high = (f"{SERVICES}.{SHARED[0]}", f"{SERVICES}.low.a", f"{SERVICES}.high.b")
    folder_of = {low: "low", high: "high"}
    graph = {shared: {low}, low: {high}, high: {shared, low}}
    assert _shared_importing_a_folder(graph, folder_of) == [f"{shared} -> {low}"]
    assert _folders_importing_up(graph, folder_of, ("high", "low")) == [f"{low} -> {high}"]
    assert _folder_of([shared, SERVICES, f"{SERVICES}.imports", f"{SERVICES}.imports.apply"]) == {
        f"{SERVICES}.imports": "imports",
        f"{SERVICES}.imports.apply": "imports",
    }


ENTRY_POINTS = sorted(
    {
        "optout.web.app",
        "optout.sending.worker",
        "optout.jobs.runner",
        *(entry.module for entry in COMMANDS.values()),
    }
)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_R14_every_entry_point_rematches_at_commit(entry: str) -> None:
    """Storage does not import the decision index; every process that writes loads the
    use-cases, which register its re-match to run before each commit."""
    code = (
        f"import {entry}\n"
        "from optout.db.engine import before_commit_hooks\n"
        "from optout.services import decision_index\n"
        "print(decision_index.flush in before_commit_hooks())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# Every field the index stores matches for is re-queued when its data moves.

# How a relation's rows are reached from the subject, beyond the field's own columns.
LINKS: dict[str, tuple[sa.Column[object], ...]] = {
    "person": (),
    "company": (t.people.c.company_id, t.companies.c.group_id),
    "opportunity": (t.opportunities.c.company_id,),
    "person_opportunity": (
        t.opportunity_contacts.c.person_id,
        t.opportunity_contacts.c.opportunity_id,
    ),
}
TABLES = {"person": t.people, "company": t.companies}
# Deleting a person deletes their stored matches with them (a foreign key cascade);
# deleting any other row changes what someone else matches.
SUBJECT_TABLES = {"people"}


def _every_field() -> list[Field]:
    custom = [lookup(f"{prefix}.fields.sample") for prefix in registry._CUSTOM_PREFIXES]
    return [*FIELDS.values(), *custom]


def _columns_read(field: Field) -> set[tuple[str, str]]:
    """The (table, column) pairs a field's value depends on."""
    relation = field.relation
    table = relation.table if relation.table is not None else TABLES[relation.name]
    expression = field.sql(table)
    read = set()
    for element in sa.sql.visitors.iterate(expression):
        if isinstance(element, ColumnClause):
            for base in element.proxy_set:
                if isinstance(base, ColumnClause) and isinstance(base.table, sa.Table):
                    read.add((base.table.name, base.name))
    read.update((c.table.name, c.name) for c in LINKS[relation.name])
    return read


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    events: frozenset[str]  # INSERT, UPDATE, DELETE
    columns: frozenset[str] | None  # UPDATE OF ...; None: any column
    when: str | None
    queues: frozenset[str]  # the events its body queues rows in match_queue for


_HEAD = re.compile(
    r"CREATE TRIGGER \S+ (?:BEFORE|AFTER) (?P<events>.+?) ON (?:\w+\.)?(?P<table>\w+)"
    r"(?: FOR EACH (?:ROW|STATEMENT))?(?: WHEN (?P<when>.+?))?(?: BEGIN\b| EXECUTE FUNCTION)",
    re.S | re.I,
)
_BRANCH = re.compile(r"IF TG_OP = '(\w+)' THEN(.*?)END IF;", re.S)


def _trigger(name: str, definition: str, body: str) -> Trigger:
    head = _HEAD.match(definition)
    assert head, f"trigger {name} not understood: {definition[:200]}"
    events: set[str] = set()
    columns: frozenset[str] | None = None
    for part in re.split(r"\s+OR\s+", head["events"]):
        of = re.match(r"UPDATE OF (.+)", part, re.I)
        if of:
            columns = frozenset(c.strip().strip('"') for c in of[1].split(","))
        events.add(part.split()[0].upper())
    branches = _BRANCH.findall(body)  # a function shared by several events (PostgreSQL)
    queues = {
        event
        for event in events
        if "match_queue" in ("".join(b for e, b in branches if e == event) if branches else body)
    }
    return Trigger(name, head["table"], frozenset(events), columns, head["when"], frozenset(queues))


def _triggers(db: Connection) -> list[Trigger]:
    if db.dialect.name == "sqlite":
        rows = db.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        return [_trigger(name, sql, sql.split(" BEGIN", 1)[-1]) for name, sql in rows]
    rows = db.execute(
        sa.text(
            "SELECT tg.tgname, pg_get_triggerdef(tg.oid), p.prosrc FROM pg_trigger AS tg "
            "JOIN pg_proc AS p ON p.oid = tg.tgfoid WHERE NOT tg.tgisinternal"
        )
    ).all()
    return [_trigger(name, definition, body) for name, definition, body in rows]


def _fires_when_moved(trigger: Trigger, column: str) -> bool:
    """Whether an update that moves `column` (and no other column) fires `trigger`."""
    if trigger.columns is not None and column not in trigger.columns:
        return False
    when = trigger.when
    if when is None:
        return True
    if "to_jsonb(new" in when.lower():  # the whole row compared, minus the keys it lists
        return f"'{column}'" not in when
    moved = rf'new\."?{re.escape(column)}"?\s+is\s+(?:not\s+(?!distinct)|distinct\s+from)'
    return re.search(moved, when, re.I) is not None


def _uncovered(fields: Iterable[Field], triggers: list[Trigger]) -> list[str]:
    missing = []
    for field in fields:
        for table, column in sorted(_columns_read(field)):
            ours = [trigger for trigger in triggers if trigger.table == table]
            needed = {"INSERT", "UPDATE"} | ({"DELETE"} if table not in SUBJECT_TABLES else set())
            for event in sorted(needed):
                if not any(event in trigger.queues for trigger in ours):
                    missing.append(f"{field.name}: no trigger of {table} queues on {event}")
            if not any(
                "UPDATE" in trigger.queues and _fires_when_moved(trigger, column)
                for trigger in ours
            ):
                missing.append(f"{field.name}: no trigger queues an update of {table}.{column}")
    return missing


def _migrated(engine: Engine) -> list[Trigger]:
    with engine.connect() as db:
        return _triggers(db)


def test_R14_every_filter_field_is_requeued_by_a_trigger(engine: Engine) -> None:
    """Every field a rule can read lives in a column whose insert and update (and, for a
    row someone else is matched through, delete) queue a re-match: an exclusion matches
    a person the moment their data changes, whichever code path changed it."""
    triggers = _migrated(engine)
    assert {"people", "companies", "opportunities", "opportunity_contacts"} <= {
        trigger.table for trigger in triggers if trigger.queues
    }
    assert _uncovered(_every_field(), triggers) == []


def test_R14_a_field_on_a_column_no_trigger_watches_is_found(engine: Engine) -> None:
    """The check above fails for a field whose column no trigger re-queues: the opt-out
    flag, which the update trigger leaves out on purpose (it blocks on its own), and a
    table no trigger watches."""
    triggers = _migrated(engine)
    on_flag = Field(
        "person.opted_out",
        FieldType.BOOLEAN,
        registry.PERSON,
        "test only",
        lambda alias: alias.c.opted_out,
        lambda row: row.get("opted_out"),
    )
    on_events = Field(
        "person.event_kind",
        FieldType.TEXT,
        registry.Relation(
            "person", frozenset({registry.Level.PEOPLE}), collection=False, table=t.events
        ),
        "test only",
        lambda alias: alias.c.kind,
        lambda row: row.get("kind"),
    )
    assert _uncovered([on_flag], triggers) == [
        "person.opted_out: no trigger queues an update of people.opted_out"
    ]
    assert "person.event_kind: no trigger of events queues on INSERT" in _uncovered(
        [on_events], triggers
    )
