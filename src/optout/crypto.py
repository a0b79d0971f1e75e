"""Encryption at rest for secrets kept in the database: CRM connection secrets and DKIM
private keys. Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet, keys from
`OPTOUT_ENCRYPTION_KEYS` (comma-separated Fernet keys, newest first: the first
encrypts, all decrypt, so a rotation puts a new key in front; `rotate` re-encrypts a
value under the newest key). A stored value that is not a Fernet token is a plaintext
value from before encryption: it is read as it is and encrypted on the next write.

`cryptography` is imported when a key is first used, not with this module: a command
that reads no secret (`optout explain`) starts without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from optout.errors import InvalidInput

_FERNET_PREFIX = "gAAAAA"  # version byte 0x80 and a timestamp, base64: every Fernet token


def new_key() -> str:
    """A fresh key for OPTOUT_ENCRYPTION_KEYS."""
    from cryptography import fernet

    return fernet.Fernet.generate_key().decode("ascii")


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        given = [key.strip() for key in keys if key.strip()]
        if not given:
            raise InvalidInput(
                "storing secrets needs OPTOUT_ENCRYPTION_KEYS (make one with "
                "`python -c 'from optout.crypto import new_key; print(new_key())'`)"
            )
        from cryptography import fernet

        try:
            self._fernet = fernet.MultiFernet([fernet.Fernet(key) for key in given])
        except ValueError as exc:
            raise InvalidInput(
                "OPTOUT_ENCRYPTION_KEYS: each key must be 32 url-safe base64-encoded bytes"
            ) from exc

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(_FERNET_PREFIX):
            return stored  # written before encryption at rest
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise InvalidInput(
                "a stored secret cannot be decrypted with OPTOUT_ENCRYPTION_KEYS "
                "(was a key removed too early?)"
            ) from exc

    def rotate(self, stored: str) -> str:
        """`stored` encrypted under the newest key (plaintext values get encrypted)."""
        return self.encrypt(self.decrypt(stored))
