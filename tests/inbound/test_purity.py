"""The classifier is pure (STYLE 10): parsing, new-text extraction, phrases, delivery
reports and classification import no database, network or mail client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INBOUND = Path(__file__).resolve().parents[2] / "src" / "optout" / "inbound"
PURE = (
    "parse", "newtext", "phrases", "dsn", "reports", "notices", "bounce_policy", "arf", "classify"
)  # fmt: skip
FORBIDDEN = (
    "sqlalchemy", "optout.db", "optout.services", "optout.sending", "optout.cli", "optout.web",
    "smtplib", "imaplib", "socket", "aiosmtpd", "http", "urllib.request",
)  # fmt: skip


@pytest.mark.parametrize("module", PURE)
def test_classifier_modules_import_nothing_impure(module: str) -> None:
    tree = ast.parse((INBOUND / f"{module}.py").read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {n for n in names if any(n == b or n.startswith(b + ".") for b in FORBIDDEN)}
    local = {n.split(".")[-1] for n in names if n.startswith("optout.inbound.")}
    assert local <= set(PURE)
