"""Where an uploaded CSV waits between the upload, the column-mapping step and the import,
and where its error report stays to be downloaded: a folder per upload, per workspace,
named by a random token, inside a folder of the service's own (OPTOUT_UPLOAD_DIR, by
default `optout-uploads-<uid>` in the system's temporary directory). Every folder is
0700 and every file 0600: uploads hold people's addresses. Uploads older than a day are
removed when the next one arrives."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path

from optout.errors import InvalidInput, NotFound, OptoutError

MAX_BYTES = 50 * 1024 * 1024
KEEP_SECONDS = 24 * 3600
ERRORS_NAME = "errors.csv"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def root() -> Path:
    """The service's own folder for uploads, made private (0700) if it is not; refused if
    it is a link or belongs to another user (someone made it first in a shared folder)."""
    given = os.environ.get("OPTOUT_UPLOAD_DIR", "").strip()
    base = Path(given) if given else Path(tempfile.gettempdir()) / f"optout-uploads-{os.getuid()}"
    base.mkdir(mode=0o700, parents=bool(given), exist_ok=True)
    found = base.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise OptoutError(f"{base}: not a folder of this service's own user; remove it")
    if stat.S_IMODE(found.st_mode) != 0o700:
        base.chmod(0o700)
    return base


def _folder(workspace_id: int, token: str) -> Path:
    if not _TOKEN.match(token):
        raise NotFound("no such upload")
    return root() / str(workspace_id) / token


def _clean_name(name: str) -> str:
    base = re.split(r"[\\/]", name or "")[-1]
    safe = _UNSAFE.sub("_", base).strip(" .") or "upload.csv"
    return "upload-" + safe[:120] if safe == ERRORS_NAME else safe[:120]


def save(*, workspace_id: int, name: str, data: bytes) -> str:
    """Keep an uploaded file; its token names it in the next steps."""
    if not data.strip():
        raise InvalidInput("the file is empty: expected a header row and data rows")
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    _forget_old()
    token = secrets.token_urlsafe(24)
    folder = _folder(workspace_id, token)
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700)
    kept = os.open(folder / _clean_name(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(kept, "wb") as out:
        out.write(data)
    return token


def csv_path(*, workspace_id: int, token: str) -> Path:
    """The uploaded file (its name is the name it was uploaded with)."""
    folder = _folder(workspace_id, token)
    found = (
        [p for p in folder.glob("*") if p.is_file() and p.name != ERRORS_NAME]
        if folder.is_dir()
        else []
    )
    if not found:
        raise NotFound("this upload is gone (uploads are kept for a day); upload the file again")
    return found[0]


def errors_path(*, workspace_id: int, token: str) -> Path:
    return _folder(workspace_id, token) / ERRORS_NAME


def _forget_old() -> None:
    cutoff = time.time() - KEEP_SECONDS
    base = root()
    if not base.is_dir():
        return
    for folder in base.glob("*/*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue
