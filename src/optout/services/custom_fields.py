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
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
