"""The transports of mailboxes that send through their own mail server (R37).

A mailbox without its own server sends through the shared relay. One with its own has
its URL stored without the password, and the password encrypted; the transport is built
once per worker for each mailbox (again when its URL or password changes).
"""

from __future__ import annotations

from collections.abc import Sequence

from optout.crypto import SecretBox
from optout.sending.transports import Transport, transport_from_url
from optout.services.mailboxes.sender_mailboxes import with_password


class MailboxTransports:
    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = tuple(keys)
        self._built: dict[tuple[int, str, str | None], Transport] = {}

    def get(
        self, *, mailbox_id: int | None, smtp_url: str | None, smtp_password: str | None
    ) -> Transport | None:
        """The mailbox's own transport, or None when it sends through the shared relay."""
        if mailbox_id is None or not smtp_url:
            return None
        key = (mailbox_id, smtp_url, smtp_password)
        found = self._built.get(key)
        if found is None:
            password = SecretBox(self._keys).decrypt(smtp_password) if smtp_password else None
            found = transport_from_url(with_password(smtp_url, password))
            self._built[key] = found
        return found

    def flush(self) -> None:
        for transport in self._built.values():
            transport.flush()
