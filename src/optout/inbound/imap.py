"""The IMAP poller (stdlib imaplib): processes UNSEEN messages of one folder, several to
a short transaction (the first alone, the next sized toward half a second of write lock;
one by one when a transaction of several fails), and marks a message \\Seen only after
its transaction committed.

It fetches with `BODY.PEEK[]` (fetching `RFC822` would set \\Seen before we are
done) and keeps the last UID per folder in `inbound_mailboxes`, in the same
transaction as the message, so it resumes where it stopped after a restart; a
new UIDVALIDITY starts the folder over. A crash between commit and STORE leaves
the message unseen, and the next pass recognizes it as a duplicate (same
Message-ID and body) and only marks it. A message that fails on our side stays
unseen and holds the cursor back, so it is tried again on the next pass.
"""

from __future__ import annotations

import imaplib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from ssl import SSLContext, create_default_context

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.retry import make_way
from optout.errors import ConnectorError, InvalidInput
from optout.inbound.process import (
    DEFAULT_OPTIONS,
    InboundOptions,
    InboundResult,
    Incoming,
    process_message,
    process_messages,
)
from optout.services.in_parts import next_part_size

log = logging.getLogger("optout.inbound.imap")


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    ssl: bool = True
    timeout: float = 60.0
    ssl_context: SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.host or not 0 < self.port < 65536:
            raise InvalidInput(f"not an IMAP server address: {self.host!r} port {self.port}")
        if not self.user:
            raise InvalidInput("an IMAP login needs a user")
        if not self.folder or not self.folder.isascii() or any(c in self.folder for c in "\r\n"):
            raise InvalidInput(f"IMAP folder {self.folder!r}: use an ASCII folder name")

    @property
    def mailbox(self) -> str:
        return f"imap://{self.user}@{self.host}:{self.port}/{self.folder}"


@dataclass
class PollResult:
    fetched: int = 0
    processed: int = 0
    duplicates: int = 0
    rejected: int = 0  # not a message (InvalidInput): marked seen, kept in the folder
    failed: int = 0  # failed on our side: left unseen, tried again next pass
    results: list[InboundResult] = field(default_factory=list)


class ImapPoller:
    def __init__(
        self,
        engine: Engine,
        *,
        account: ImapAccount,
        workspace_id: int | None = None,
        options: InboundOptions = DEFAULT_OPTIONS,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 100,
    ) -> None:
        self.engine = engine
        self.account = account
        self.workspace_id = workspace_id
        self.options = options
        self.clock = clock
        self.batch = batch
        scope = "*" if workspace_id is None else str(workspace_id)
        self.key = f"{scope} {account.mailbox}"[:500]

    def poll_once(self) -> PollResult:
        """One pass over the folder's unseen messages (at most `batch` of them)."""
        try:
            with self._connect() as imap:
                result = self._poll(imap)
                imap.close()
                return result
        except (imaplib.IMAP4.error, OSError) as exc:
            raise ConnectorError(f"IMAP {self.account.mailbox}: {exc}") from exc

    def run_forever(self, stop: threading.Event, *, interval: float = 60.0) -> None:
        """Pass after pass until `stop` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            try:
                result = self.poll_once()
                if result.fetched:
                    log.info(
                        "%s: processed %s, duplicates %s, rejected %s, failed %s",
                        self.account.mailbox,
                        result.processed,
                        result.duplicates,
                        result.rejected,
                        result.failed,
                    )
            except ConnectorError as exc:
                log.warning("%s; trying again in %s s", exc.message, interval)
            except Exception:
                log.exception("IMAP pass failed; trying again in %s s", interval)
            stop.wait(interval)

    def _connect(self) -> imaplib.IMAP4:
        account = self.account
        if account.ssl:
            context = account.ssl_context or create_default_context()
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                account.host, account.port, ssl_context=context, timeout=account.timeout
            )
        else:
            imap = imaplib.IMAP4(account.host, account.port, timeout=account.timeout)
        try:
            imap.login(account.user, account.password)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def _poll(self, imap: imaplib.IMAP4) -> PollResult:
        folder = '"' + self.account.folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
        status, _ = imap.select(folder)
        if status != "OK":
            raise ConnectorError(f"IMAP {self.account.mailbox}: cannot select the folder")
        validity_response = imap.untagged_responses.get("UIDVALIDITY", [b"0"])[-1]
        validity = _number(validity_response if isinstance(validity_response, bytes) else b"0")
        last = self._cursor(validity)
        status, data = imap.uid("SEARCH", "UID", f"{last + 1}:*", "UNSEEN")
        if status != "OK":
            raise ConnectorError(f"IMAP {self.account.mailbox}: UID SEARCH failed")
        found = [_number(uid) for uid in (data[0] or b"").split()]
        uids = sorted(uid for uid in found if uid > last)[: self.batch]
        result = PollResult()
        fetched: list[tuple[int, bytes, bool]] = []  # uid, message, may move the cursor
        held_back = False
        for uid in uids:
            status, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
            raw = _literal(data) if status == "OK" else None
            if raw is None:
                result.failed += 1
                held_back = True
                continue
            result.fetched += 1
            fetched.append((uid, raw, not held_back))
        start, size, held = 0, 1, 0.0
        while start < len(fetched):
            part = fetched[start : start + size]
            if start:
                make_way(self.engine, held)
            began = time.monotonic()
            done, failed = self._process_part(part, validity, result)
            held = time.monotonic() - began
            for uid in done:
                imap.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
            start += len(part)
            if failed:  # what follows may be read, but the cursor stays before the failure
                fetched[start:] = [(uid, raw, False) for uid, raw, _ in fetched[start:]]
            size = next_part_size(len(part), held, most=self.batch, least=1)
        return result

    def _process_part(
        self, part: list[tuple[int, bytes, bool]], validity: int, result: PollResult
    ) -> tuple[list[int], bool]:
        """Process several messages and move the cursor in one transaction (one message
        each when that fails). Returns the UIDs done (processed or refused) and whether one
        failed on our side."""
        source = f"imap:{self.account.mailbox}"[:200]
        try:
            with self.engine.begin() as db:
                answers = process_messages(
                    db,
                    messages=[Incoming(raw, source) for _, raw, _ in part],
                    now=self.clock(),
                    workspace_id=self.workspace_id,
                    options=self.options,
                )
                movable = [uid for uid, _, advance in part if advance]
                if movable:
                    self._advance(db, validity, max(movable))
        except Exception:
            if len(part) > 1:
                log.warning("%s: %s messages together failed; each on its own", self.key, len(part))
            return self._one_by_one(part, validity, result)
        for (uid, _, _), answer in zip(part, answers, strict=True):
            if isinstance(answer, InvalidInput):
                log.warning("%s UID %s is not a usable message: %s", self.key, uid, answer.message)
                result.rejected += 1
            else:
                _count(result, answer)
        return [uid for uid, _, _ in part], False

    def _one_by_one(
        self, part: list[tuple[int, bytes, bool]], validity: int, result: PollResult
    ) -> tuple[list[int], bool]:
        done: list[int] = []
        failed = False
        for uid, raw, advance in part:
            if self._process(raw, uid, validity, result, advance=advance and not failed):
                done.append(uid)
            else:
                failed = True
        return done, failed

    def _process(
        self, raw: bytes, uid: int, validity: int, result: PollResult, *, advance: bool
    ) -> bool:
        """Process one message and move the cursor in one transaction; False if it failed."""
        try:
            with self.engine.begin() as db:
                processed = process_message(
                    db,
                    raw=raw,
                    now=self.clock(),
                    source=f"imap:{self.account.mailbox}"[:200],
                    workspace_id=self.workspace_id,
                    options=self.options,
                )
                if advance:
                    self._advance(db, validity, uid)
        except InvalidInput as exc:
            log.warning("%s UID %s is not a usable message: %s", self.key, uid, exc.message)
            if advance:
                with self.engine.begin() as db:
                    self._advance(db, validity, uid)
            result.rejected += 1
            return True
        except Exception:
            log.exception("%s UID %s failed; it stays unseen and is retried", self.key, uid)
            result.failed += 1
            return False
        _count(result, processed)
        return True

    def _cursor(self, validity: int) -> int:
        """The last UID done in this folder, reset when the folder's UIDVALIDITY changed."""
        b = t.inbound_mailboxes
        with self.engine.begin() as db:
            row = db.execute(
                sa.select(b.c.uidvalidity, b.c.last_uid).where(b.c.mailbox == self.key)
            ).first()
            if row is None:
                db.execute(
                    b.insert().values(
                        workspace_id=self.workspace_id,
                        mailbox=self.key,
                        uidvalidity=validity,
                        last_uid=0,
                        updated_at=self.clock(),
                    )
                )
                return 0
            if row.uidvalidity != validity:
                log.warning("%s: UIDVALIDITY changed; reading the folder again", self.key)
                db.execute(
                    b.update()
                    .where(b.c.mailbox == self.key)
                    .values(uidvalidity=validity, last_uid=0, updated_at=self.clock())
                )
                return 0
            return int(row.last_uid)

    def _advance(self, db: Connection, validity: int, uid: int) -> None:
        b = t.inbound_mailboxes
        db.execute(
            b.update()
            .where(b.c.mailbox == self.key, b.c.uidvalidity == validity, b.c.last_uid < uid)
            .values(last_uid=uid, updated_at=self.clock())
        )


def _count(result: PollResult, processed: InboundResult) -> None:
    result.results.append(processed)
    if processed.duplicate:
        result.duplicates += 1
    else:
        result.processed += 1


def _number(value: bytes | str) -> int:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        return int(text.strip())
    except ValueError as exc:
        raise ConnectorError(f"IMAP server sent {text!r} where a number belongs") from exc


def _literal(data: list[object]) -> bytes | None:
    """The message bytes of a FETCH response: the literal of its first tuple."""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None
