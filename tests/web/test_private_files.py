"""Uploaded files and their error reports hold people's addresses: they are kept in a
folder of the service's own, every folder 0700 and every file 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from optout.errors import OptoutError
from optout.jobs import runner, submit
from optout.web import uploads
from tests.factories import World

Committed = Callable[[], AbstractContextManager[World]]
CSV = b"Email,First name\nann@acme.com,Ann\nnot-an-address,Broken\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A world-writable temporary folder, as /tmp is, under a permissive umask."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.delenv("OPTOUT_UPLOAD_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    before = os.umask(0o022)
    try:
        yield shared
    finally:
        os.umask(before)


def test_R34_an_upload_is_readable_by_the_services_user_only(shared_tmp: Path) -> None:
    token = uploads.save(workspace_id=7, name="leads.csv", data=CSV)
    path = uploads.csv_path(workspace_id=7, token=token)

    assert path.read_bytes() == CSV
    assert mode(path) == 0o600
    folder = path.parent
    assert folder.parent.parent == uploads.root()
    assert uploads.root().parent == shared_tmp
    assert [mode(f) for f in (folder, folder.parent, uploads.root())] == [0o700] * 3


def test_R34_an_upload_folder_someone_else_made_first_is_not_used(shared_tmp: Path) -> None:
    elsewhere = shared_tmp / "elsewhere"
    elsewhere.mkdir()
    (shared_tmp / f"optout-uploads-{os.getuid()}").symlink_to(elsewhere)

    with pytest.raises(OptoutError, match="not a folder of this service's own user"):
        uploads.save(workspace_id=7, name="leads.csv", data=CSV)
    assert list(elsewhere.iterdir()) == []


def test_R34_an_upload_folder_left_open_is_made_private_again(shared_tmp: Path) -> None:
    base = shared_tmp / f"optout-uploads-{os.getuid()}"
    base.mkdir(mode=0o777)
    base.chmod(0o777)

    uploads.save(workspace_id=7, name="leads.csv", data=CSV)

    assert mode(base) == 0o700


def test_R34_an_import_error_report_is_readable_by_the_services_user_only(
    engine: Engine, committed: Committed, now: datetime, shared_tmp: Path
) -> None:
    with committed() as world:
        ws = world.ws
    token = uploads.save(workspace_id=ws, name="leads.csv", data=CSV)
    report = uploads.errors_path(workspace_id=ws, token=token)
    with engine.begin() as db:
        submit.csv_import(
            db,
            workspace_id=ws,
            kind="people",
            path=uploads.csv_path(workspace_id=ws, token=token),
            errors_path=report,
            mapping={"Email": "email", "First name": "first_name"},
            actor="ops@example.com",
            now=now,
        )

    runner.run_pending(engine, runner="web", clock=lambda: now)

    assert report.read_text(encoding="utf-8").startswith("row,column,value,reason")
    assert mode(report) == 0o600
