"""Custom fields: free-form data from CRMs and imports, stored as text under checked names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optout.errors import InvalidInput
from optout.filters.fields import CUSTOM_FIELD_NAME


def clean_fields(fields: Mapping[str, Any] | None) -> dict[str, str]:
    """Custom fields as text under valid names (R34)."""
    out: dict[str, str] = {}
    for key, value in (fields or {}).items():
        if not CUSTOM_FIELD_NAME.match(key):
            raise InvalidInput(
                f"custom field name {key!r}: use lowercase letters, digits and underscores"
            )
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"custom field {key!r} takes text, a number or a boolean")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out[key] = clean_text(text, what=f"custom field {key!r}", strip=False)
    return out


def clean_text(value: str, *, what: str, strip: bool = True) -> str:
    """Text as stored: trimmed (unless `strip` is off), and without the NUL character,
    which PostgreSQL refuses (R34: a clear error, not a database failure)."""
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character")
    return value.strip() if strip else value
