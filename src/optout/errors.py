"""One error root and its families.

Business code raises these; the CLI maps them to exit codes and the web layer
to status codes. Nothing else should cross a public boundary.
"""

from __future__ import annotations


class OptoutError(Exception):
    """Root of every error a user of optout can cause or meet."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(OptoutError):
    """A value given by the user is malformed (email, domain, CSV, setting)."""

    code = "invalid_input"


class InvalidFilter(InvalidInput):
    """A filter is malformed; `where` points at the offending part."""

    code = "invalid_filter"

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.where = where


class InvalidMapping(InvalidInput):
    """A CRM field mapping is malformed; `where` names the part at fault (`crm_object`,
    `crm_field`, `our_field` or `mode`) so a form can show the message at that field."""

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message)
        self.where = where


class NotFound(OptoutError):
    """A named object does not exist in this workspace."""

    code = "not_found"


class Conflict(OptoutError):
    """The request contradicts the current state (duplicate name, bad link)."""

    code = "conflict"


class ConfirmationRequired(OptoutError):
    """A save would remove too many people at once and needs explicit confirmation (R22)."""

    code = "confirmation_required"


class ConnectorError(OptoutError):
    """A CRM or mail server failed or answered something we cannot use."""

    code = "connector_error"


class TooManyAttempts(OptoutError):
    """Too many failed sign-ins for an account or from a client address: wait, then retry."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
