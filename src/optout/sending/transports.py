"""How a composed message leaves: an SMTP relay, or a folder of .eml files for demos and tests.

The worker sees only `Transport`. SMTP failures are translated here into two
kinds: transient (try again later; already retried with backoff) and
permanent (the server said no). `PermanentDeliveryError.refused` names the
recipients the server refused; when it is empty the server refused the session
or the message (login, sender, content), which says nothing about the address.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import smtplib
import ssl
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from optout.clock import utcnow
from optout.errors import ConnectorError, InvalidInput
from optout.mail import transport_urls
from optout.mail.transport_urls import SECURITIES, OutboxUrl, Security, check_smtp_numbers

Refusals = Mapping[str, tuple[int, str]]
"""Recipient address → (SMTP reply code, reply text)."""


class DeliveryError(ConnectorError):
    """A message could not be handed over; `smtp_code` is the server's reply, if any."""

    code = "delivery_error"

    def __init__(
        self, message: str, *, smtp_code: int | None = None, refused: Refusals | None = None
    ) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code
        self.refused: Refusals = dict(refused or {})


class TransientDeliveryError(DeliveryError):
    """Still failing after every retry (4xx replies, lost connections, timeouts): try later."""

    code = "delivery_deferred"


class PermanentDeliveryError(DeliveryError):
    """The server refused with a 5xx reply, or the transport is misconfigured."""

    code = "delivery_refused"


class InDoubtDeliveryError(DeliveryError):
    """The message went out after the server's 354 but its answer never came back: the
    server may have accepted it. Never retried here, since that could deliver it twice."""

    code = "delivery_in_doubt"


class Transport(Protocol):
    """What the worker needs to send: hand over one message, and let go of resources."""

    def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """Hand the message over; returns the receiver's answer (for SMTP, the 250 reply)."""
        ...

    def flush(self) -> None:
        """Return once every message sent so far is safely handed over."""

    def close(self) -> None: ...


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _refusals(raw: Mapping[str, tuple[int, bytes]]) -> dict[str, tuple[int, str]]:
    return {address: (code, _text(reply)) for address, (code, reply) in raw.items()}


def _closed_by_server(exc: Exception) -> bool:
    """The connection is gone: dropped, reset, or a 421 "closing channel" (idle timeout)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError)


def _describe(refused: Refusals) -> str:
    return "; ".join(f"{address}: {code} {reply}" for address, (code, reply) in refused.items())


class SmtpTransport:
    """Sends over one reused SMTP connection, reconnecting when the server drops it.

    Not thread-safe: give each worker thread its own transport.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in SECURITIES:
            raise InvalidInput(f"SMTP security must be one of {', '.join(SECURITIES)}")
        if not host or not 0 < port < 65536:
            raise InvalidInput(f"not an SMTP server address: {host!r} port {port}")
        check_smtp_numbers(retries=retries, backoff=backoff, timeout=timeout)
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.local_hostname = local_hostname
        self.ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None

    def __repr__(self) -> str:
        return f"SmtpTransport({self.host!r}, {self.port}, security={self.security!r})"

    def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """Deliver to every recipient, retrying temporary failures with exponential backoff;
        returns the server's answer to the message (`250 ...`).

        Recipients deferred with a 4xx reply are retried alone, so nobody who
        accepted the message gets it twice. A connection lost after the message data
        started raises InDoubtDeliveryError at once, without a retry.
        """
        pending = list(dict.fromkeys(recipients))
        if not pending:
            raise InvalidInput("a message needs at least one recipient")
        refused: dict[str, tuple[int, str]] = {}
        answer = ""
        attempt = 0
        while True:
            try:
                outcome, reply = self._attempt(message, sender, pending)
            except TransientDeliveryError as exc:
                failure = exc
            else:
                answer = answer or reply
                refused.update({a: reply for a, reply in outcome.items() if reply[0] >= 500})
                deferred = {a: reply for a, reply in outcome.items() if reply[0] < 500}
                if not deferred:
                    break
                pending = list(deferred)
                code = next(iter(deferred.values()))[0]
                failure = TransientDeliveryError(
                    f"recipients deferred: {_describe(deferred)}", smtp_code=code, refused=deferred
                )
            if attempt >= self.retries:
                raise TransientDeliveryError(
                    f"{self!r} gave up after {attempt + 1} attempts: {failure.message}",
                    smtp_code=failure.smtp_code,
                    refused={**refused, **failure.refused},
                ) from failure
            attempt += 1
            time.sleep(self.backoff * 2 ** (attempt - 1))
        if refused:
            code = next(iter(refused.values()))[0]
            raise PermanentDeliveryError(
                f"recipients refused: {_describe(refused)}", smtp_code=code, refused=refused
            )
        return answer

    def _attempt(
        self, message: bytes, sender: str, recipients: list[str]
    ) -> tuple[dict[str, tuple[int, str]], str]:
        """One hand-over; returns the recipients refused by RCPT (none when all accepted)
        and the server's answer to the message."""
        try:
            reused = self._smtp is not None
            try:
                return _hand_over(self._connection(), sender, recipients, message)
            except (smtplib.SMTPException, ConnectionError) as exc:
                if not (reused and _closed_by_server(exc)):
                    raise
                self._drop()  # an idle connection the server closed: reconnect right away
                return _hand_over(self._connection(), sender, recipients, message)
        except _AnswerLost as exc:
            self._drop()
            raise InDoubtDeliveryError(
                f"{self!r} took the message data but its answer never came: {exc.__cause__}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            return _refusals(exc.recipients), ""
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421 or not isinstance(
                exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError
            ):
                self._drop()
            kind = PermanentDeliveryError if 500 <= exc.smtp_code < 600 else TransientDeliveryError
            what = (
                "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "refused"
            )
            raise kind(
                f"{self!r} {what}: {exc.smtp_code} {_text(exc.smtp_error)}", smtp_code=exc.smtp_code
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            raise PermanentDeliveryError(
                f"{self!r}: TLS certificate not trusted ({exc.verify_message})"
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise TransientDeliveryError(f"{self!r} closed the connection: {exc}") from exc
        except smtplib.SMTPException as exc:  # STARTTLS or AUTH not offered, and the like
            self._drop()
            raise PermanentDeliveryError(f"{self!r}: {exc}") from exc
        except OSError as exc:  # refused, reset, unreachable, timed out, TLS handshake
            self._drop()
            raise TransientDeliveryError(f"{self!r} unreachable: {exc}") from exc

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._open()
        return self._smtp

    def _open(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            if self.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=context)  # raises when not offered: never fall back
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def flush(self) -> None:
        """Nothing to do: the server accepted each message before `send` returned."""

    def close(self) -> None:
        """Say QUIT and close; the next send opens a new connection."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _AnswerLost(Exception):
    """The connection failed after the server's 354: the message may have been accepted."""


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: close on 421 (the server is closing), else reset for the next one."""
    if code == 421:
        smtp.close()
    else:
        smtp.rset()


def _hand_over(
    smtp: smtplib.SMTP, sender: str, recipients: list[str], message: bytes
) -> tuple[dict[str, tuple[int, str]], str]:
    """`smtplib.SMTP.sendmail`, step by step, so that a failure once the message data has
    started is told apart (as _AnswerLost) from one before it, which is safe to retry."""
    smtp.ehlo_or_helo_if_needed()
    options = [f"size={len(message)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
    code, reply = smtp.mail(sender, options)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    data = re.sub(rb"(?m)^\.", b"..", message)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    try:
        smtp.send(data + b".\r\n")
        code, reply = smtp.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _AnswerLost() from exc
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    return _refusals(refused), f"{code} {_text(reply)}"


class OutboxTransport:
    """Writes each message to `<folder>/<UTC timestamp>-<id>.eml`: whole, or not at all."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._unsynced = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConnectorError(f"cannot create outbox folder {self.folder}: {exc}") from exc

    def __repr__(self) -> str:
        return f"OutboxTransport({str(self.folder)!r})"

    def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """Write the message; it is durable once `flush()` returns (one sync per batch)."""
        if not recipients:
            raise InvalidInput("a message needs at least one recipient")
        target = self.write(message, sync=False)
        self._unsynced = True
        return f"written to {target.name}"

    def flush(self) -> None:
        """Make every message sent since the last flush durable, with one `sync()`: one
        fsync per file would cost ~4 ms a message here."""
        if self._unsynced:
            os.sync()
            self._unsynced = False

    def write(self, message: bytes, *, sync: bool = True) -> Path:
        """Write to a temporary file (fsync'd when `sync`), then link it under a name no
        file has yet."""
        try:
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".part")
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write to {self!r}: {exc}") from exc
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(message)
                stream.flush()
                if sync:
                    os.fsync(stream.fileno())
            target = self._publish(Path(temporary))
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write to {self!r}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        if sync:
            _fsync_folder(self.folder)
        return target

    def _publish(self, temporary: Path) -> Path:
        while True:
            stamp = utcnow().strftime("%Y%m%dT%H%M%S.%fZ")
            target = self.folder / f"{stamp}-{secrets.token_hex(4)}.eml"
            try:
                os.link(temporary, target)  # atomic, and fails rather than overwrite
            except FileExistsError:
                continue
            return target

    def close(self) -> None:
        """Nothing to release; here so that every transport closes the same way."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _fsync_folder(folder: Path) -> None:
    """Make the new name durable too (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def transport_from_url(url: str) -> SmtpTransport | OutboxTransport:
    """The transport `url` names (`mail.transport_urls`: the forms it takes and its
    errors, which never repeat the URL)."""
    found = transport_urls.read(url)
    if isinstance(found, OutboxUrl):
        return OutboxTransport(found.folder)
    return SmtpTransport(
        found.host,
        found.port,
        security=found.security,
        username=found.username,
        password=found.password,
        timeout=found.timeout,
        retries=found.retries,
        backoff=found.backoff,
        local_hostname=found.local_hostname,
    )
