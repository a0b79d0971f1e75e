"""The narrow port between the sync engine and a CRM (STYLE 9): what a connector reads and
writes, in plain data. HubSpot and Salesforce implement it; tests plug in real local
emulators of their APIs behind the real connectors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from optout.errors import ConnectorError


class Kind(StrEnum):
    """What a CRM object becomes here."""

    COMPANY = "company"
    PERSON = "person"
    DEAL = "deal"
    ROLE = "role"  # a person's part in a deal (Salesforce OpportunityContactRole)


@dataclass(frozen=True)
class CrmObject:
    name: str  # as the CRM spells it: `contacts`, `Lead`
    kind: Kind


# A reference to another CRM record: (object, id).
Ref = tuple[str, str]


@dataclass(frozen=True)
class Record:
    """One CRM record as read: its mapped fields raw (CRM field -> value, as the CRM gives
    them), and the links the connector resolved structurally."""

    object: str
    id: str
    modified_at: datetime  # naive UTC
    values: Mapping[str, Any] = field(default_factory=dict)
    company: Ref | None = None  # people and deals: the record's company
    contacts: tuple[Ref, ...] | None = None  # deals: every linked person, when the CRM says
    deal: Ref | None = None  # roles
    person: Ref | None = None  # roles
    deleted: bool = False  # roles: the link is gone


@dataclass(frozen=True)
class Page:
    """Changed records in modification order. `watermark` is the latest modification time
    in the page when everything earlier has been listed (the sync may bookmark it), or
    None when the listing is in another order (bookmark only at its end)."""

    records: Sequence[Record]
    watermark: datetime | None


class BudgetExhausted(ConnectorError):
    """The CRM's API allowance is (nearly) used up: stop now, resume later."""

    code = "crm_budget_exhausted"


class Connector(Protocol):
    """What the sync engine, the write-back drain and the webhooks need from a CRM."""

    kind: str  # hubspot | salesforce
    objects: tuple[CrmObject, ...]  # in sync order: companies before people before deals

    @property
    def calls(self) -> int:
        """HTTP requests made so far (retries and token requests included)."""
        ...

    def changes(self, obj: str, *, since: datetime | None, full: bool = False) -> Iterator[Page]:
        """Records of `obj` modified at or after `since` (everything when None)."""
        ...

    def fetch(self, obj: str, ids: Sequence[str]) -> list[Record]:
        """The current state of the named records (missing ones are left out)."""
        ...

    def write(self, obj: str, crm_field: str, emails: Sequence[str], value: Any) -> dict[str, str]:
        """Set `crm_field` to `value` on every `obj` record with one of `emails`; returns an
        error message per address that failed (an address with no record is no failure)."""
        ...

    def close(self) -> None: ...
