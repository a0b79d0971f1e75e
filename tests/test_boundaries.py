"""The pure core stays pure (STYLE 10): the filter language, the decision core and the
mail parts (an email's templates, tokens, message, signature and sending hours) import no
database session or engine, no web framework, no HTTP or mail client."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "optout"
PURE = ("filters", "eligibility", "mail")
FORBIDDEN = (
    "sqlalchemy.orm",
    "sqlalchemy.engine",
    "fastapi",
    "starlette",
    "httpx",
    "requests",
    "urllib.request",
    "http.client",
    "smtplib",
    "imaplib",
    "socket",
    "optout.db.engine",
    "optout.db.migrate",
    "optout.services",
    "optout.sending",
    "optout.cli",
    "optout.web",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", PURE)
def test_pure_core_source_imports_nothing_forbidden(package: str) -> None:
    offending = {
        f"{path.relative_to(SRC)}: {name}"
        for path in (SRC / package).rglob("*.py")
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offending


# SQLAlchemy Core itself loads these two, whoever imports it.
LOADED_BY_SQLALCHEMY = ("sqlalchemy.engine", "socket")


def test_pure_core_loads_no_forbidden_module_at_run_time() -> None:
    code = (
        "import sys, optout.filters, optout.eligibility, optout.eligibility.sql\n"
        f"bad = {FORBIDDEN!r}\n"
        "print(sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') "
        f"for b in bad if b not in {LOADED_BY_SQLALCHEMY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_mail_parts_load_no_database_and_no_worker() -> None:
    """Writing out, signing and timing an email loads neither the database layer nor the
    use-cases nor the worker (DKIM's DNS library loads `socket` for its key lookups)."""
    code = (
        "import pkgutil, sys, optout.mail\n"
        "for m in pkgutil.iter_modules(optout.mail.__path__):\n"
        "    __import__('optout.mail.' + m.name)\n"
        "bad = ('sqlalchemy', 'optout.db', 'optout.services', 'optout.sending', 'optout.web')\n"
        "print(sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') "
        "for b in bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
