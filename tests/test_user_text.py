"""The words a user reads through the API: its OpenAPI description (summaries, field
descriptions) names no rule id of the specification (R1..R35); every error message the
code raises names neither a rule id nor an internal check name. (The API's own values,
such as a check called `company_cap` in an explanation or the status `opted_out`, are
its vocabulary and may be described.) Pages are scanned by the browser
tests' page checks, the CLI help by tests/cli/test_every_command.py, the demo tour by
tests/cli/test_demo.py."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from optout.config import Settings
from optout.web.app import create_app
from tests.user_text import RULE_ID, internal_words

SOURCE = Path(__file__).resolve().parents[1] / "src" / "optout"


def _texts(schema: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every description, summary and title in the OpenAPI document, with its place."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            place = f"{where}/{key}"
            if key in ("description", "summary", "title") and isinstance(value, str):
                yield place, value
            else:
                yield from _texts(value, place)
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from _texts(item, f"{where}/{i}")


def test_openapi_description_speaks_the_users_language() -> None:
    app = create_app(
        Settings(database_url="unused://", secret_keys=("k" * 32,)), sa.create_engine("sqlite://")
    )
    texts = list(_texts(app.openapi()))
    assert len(texts) > 100  # the walk reached the paths and the schemas
    found = [(place, text) for place, text in texts if RULE_ID.search(text)]
    assert not found, found


def _raised_texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """The literal text of every `raise SomeError(...)`: its string constants and the
    constant parts of its f-strings."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
            continue
        for arg in [*node.exc.args, *(k.value for k in node.exc.keywords)]:
            for part in ast.walk(arg):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield node.lineno, part.value


def test_no_error_message_names_a_rule_id_or_an_internal_check() -> None:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 50
    found = [
        f"{path.relative_to(SOURCE)}:{line}: {words}"
        for path in files
        for line, text in _raised_texts(ast.parse(path.read_text(encoding="utf-8")))
        if (words := internal_words(text))
    ]
    assert not found, "\n".join(found)


def test_the_scan_finds_rule_ids_in_prose_and_not_inside_signed_tokens() -> None:
    assert internal_words("as the rule R13 says")
    assert internal_words("(R2).")
    assert internal_words("status opt_out here")
    token = "/u/DL4ju-UaPQt07dtnOgoCigLFP9e4S-R2-w7FRWM1BGDiV_opt_out-x"
    assert internal_words(token) == []
