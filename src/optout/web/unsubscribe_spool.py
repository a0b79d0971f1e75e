"""The last resort of the unsubscribe link on SQLite: a click that could not be written
within its retry budget (the database locked for longer than that) is kept in a file
beside the database and answered as done; a thread of the web service writes it as
soon as the database lets it, with the time of the click. Nothing is lost, and the
recipient never sees an error. PostgreSQL has no database-wide lock: not used there.

Each click is one small JSON file, written to a temporary name, flushed to disk and
renamed, so a crash leaves either the whole click or nothing. Writing a click again is
harmless: an opt-out is idempotent.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from optout.db.retry import retrying
from optout.errors import NotFound
from optout.mail.tokens import Claims, InvalidToken
from optout.services.suppression import unsubscribes
from optout.web.site import Site

log = logging.getLogger(__name__)

FOLDER_NAME = "unsubscribe-spool"
REPLAY_BUDGET = 5.0


def folder_of(engine: Engine) -> Path | None:
    """Where clicks wait for a SQLite file database (beside it); None otherwise."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve().parent / FOLDER_NAME


def keep(folder: Path, *, token: str, evidence: str, at: datetime) -> None:
    """Keep one click durably (on disk before this returns)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex}.json"
    temporary = folder / f".{name}"
    data = json.dumps({"token": token, "evidence": evidence, "at": at.isoformat()})
    with temporary.open("w", encoding="utf-8") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, folder / name)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def replay(site: Site) -> int:
    """Write the kept clicks, oldest first; the number written. Stops at the first that
    still finds the database busy (the next pass goes on)."""
    folder = folder_of(site.engine)
    if folder is None or not folder.is_dir():
        return 0
    written = 0
    for path in sorted(folder.glob("[!.]*.json")):
        click = json.loads(path.read_text(encoding="utf-8"))
        at = datetime.fromisoformat(click["at"])
        try:
            claims = site.tokens.read(click["token"])
            write = partial(_write, claims=claims, at=at, evidence=click["evidence"])
            retrying(site.engine, write, budget=REPLAY_BUDGET)
        except (InvalidToken, NotFound, unsubscribes.AddressChanged) as exc:
            log.warning("a kept unsubscribe click no longer applies: %s", exc)
        except Exception:
            log.exception("a kept unsubscribe click could not be written yet")
            return written
        path.unlink()
        written += 1
    return written


def _write(db: Connection, *, claims: Claims, at: datetime, evidence: str) -> None:
    unsubscribes.unsubscribe(db, claims=claims, now=at, evidence=evidence)


class SpoolThread:
    """The web service's writer of kept clicks: a daemon thread, a pass a second."""

    def __init__(self, site: Site, *, poll_seconds: float = 1.0) -> None:
        self.site = site
        self.poll_seconds = poll_seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="optout-spool", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        self.thread.join(timeout=timeout)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                replay(self.site)
            except Exception:
                log.exception("writing kept unsubscribe clicks failed; trying again")
            self.stop.wait(self.poll_seconds)
