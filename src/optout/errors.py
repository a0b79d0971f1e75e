"""One error root and its families.

Business code raises these; the CLI maps them to exit codes and the web layer
to status codes. Nothing else should cross a public boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self


class OptoutError(Exception):
    """Root of every error a user of optout can cause or meet.

    `field` names the input it is about, as a form posts it (`from_address`), so a page
    can show the message beside that input and the API can name it; `value` is what was
    typed. The message itself names the input in words, quotes the value and says what
    would be accepted, for the CLI and the API."""

    code = "error"

    def __init__(self, message: str, *, field: str = "", value: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value

    def at(self, field: str, label: str) -> Self:
        """This error as one about the input `field`, which a form calls `label`: the
        message then begins with the label. One that names its input already is kept."""
        if not self.field:
            self.field = field
            self.message = f"{label}: {self.message}"
            self.args = (self.message,)
        return self


class InvalidInput(OptoutError):
    """A value given by the user is malformed (email, domain, CSV, setting)."""

    code = "invalid_input"


@contextmanager
def about_field(field: str, label: str) -> Iterator[None]:
    """Any InvalidInput raised inside is about the input `field` (see `InvalidInput.at`):
    a check shared by several inputs (an address, a domain) learns which one it read."""
    try:
        yield
    except InvalidInput as error:
        error.at(field, label)
        raise


class InvalidFilter(InvalidInput):
    """A filter is malformed; `where` says in words which part ("the first condition",
    "at column 12"), `location` names that part for programs (`filter.all[0]`, the path
    in the filter's JSON form) when the problem is in its tree."""

    code = "invalid_filter"

    def __init__(
        self, message: str, *, where: str = "", field: str = "", location: str = ""
    ) -> None:
        super().__init__(f"{where}: {message}" if where else message, field=field)
        self.reason = message
        self.where = where
        self.location = location


class InvalidMapping(InvalidInput):
    """A CRM field mapping is malformed; `where` names the part at fault (`crm_object`,
    `crm_field`, `our_field` or `mode`) so a form can show the message at that field."""

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message, field=where)
        self.where = where


class NotFound(OptoutError):
    """A named object does not exist in this workspace."""

    code = "not_found"


class Conflict(OptoutError):
    """The request contradicts the current state (duplicate name, bad link)."""

    code = "conflict"


class ConfirmationRequired(OptoutError):
    """A save would remove too many people at once and needs explicit confirmation (R22).

    `preview`, when the refusal read one, is what the save would have done (an
    exclusion's `Preview`), so the caller shows it without reading it again."""

    code = "confirmation_required"

    def __init__(self, message: str, *, preview: object | None = None) -> None:
        super().__init__(message)
        self.preview = preview


class DatabaseBusy(OptoutError):
    """Another process kept the database busy longer than this one would wait."""

    code = "database_busy"


class ConnectorError(OptoutError):
    """A CRM or mail server failed or answered something we cannot use."""

    code = "connector_error"


class TooManyAttempts(OptoutError):
    """Too many failed sign-ins for an account or from a client address: wait, then retry."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
