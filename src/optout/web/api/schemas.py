"""The shapes the API answers with (pydantic v2), shared by several routers, and their
conversions from what the services return. Times are UTC without an offset.
Request bodies live beside the route that takes them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from optout.eligibility.model import ExclusionSpec
from optout.filters import to_json, to_text
from optout.services.enforcement import Removal
from optout.services.events import Event
from optout.services.exclusions.preview import Preview
from optout.services.suppression.signals import CrmWriteback

Level = Literal["company", "people"]
FilterIn = str | dict[str, Any]
FILTER_HELP = (
    "A filter in the text syntax (`company.domain in (acme.com, globex.io)`) or its JSON "
    "form (as `filter_json` shows it)."
)


class PersonOut(BaseModel):
    id: int
    email: str
    email_domain: str
    first_name: str
    last_name: str
    title: str
    status: str
    company_id: int | None
    company_domain: str | None
    company_link_source: Literal["crm", "column", "email_domain", "manual"] | None = Field(
        default=None,
        description="How the company was set: by the CRM, an import column, the email "
        "domain, or by hand (null: not recorded).",
    )
    fields: dict[str, Any]
    crm_id: str | None
    opted_out: bool = Field(description="The address is opted out.")
    bounced: bool = Field(description="The address hard-bounced.")
    complained: bool = Field(description="The address reported one of our emails as spam.")
    last_activity_at: datetime | None
    last_replied_at: datetime | None
    last_emailed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CompanyOut(BaseModel):
    id: int
    domain: str | None
    name: str
    fields: dict[str, Any]
    parent_id: int | None
    group_id: int | None = Field(description="The top company of its linked group.")
    last_replied_at: datetime | None
    last_activity_at: datetime | None
    crm_id: str | None
    created_at: datetime
    updated_at: datetime


class RemovalOut(BaseModel):
    """What a change removed from sequences."""

    enrollments_ended: int
    emails_cancelled: int

    @classmethod
    def of(cls, removal: Removal) -> RemovalOut:
        return cls(
            enrollments_ended=removal.enrollments_ended, emails_cancelled=removal.emails_cancelled
        )


class ExclusionOut(BaseModel):
    id: int
    name: str
    level: Level
    filter: str = Field(description="The filter in the text syntax.")
    filter_json: dict[str, Any]
    enabled: bool
    exclude_from_sequences: bool
    unenroll_existing_on_save: bool

    @classmethod
    def of(cls, spec: ExclusionSpec) -> ExclusionOut:
        return cls(
            id=spec.id,
            name=spec.name,
            level=spec.level.value,
            filter=to_text(spec.filter),
            filter_json=to_json(spec.filter),
            enabled=spec.enabled,
            exclude_from_sequences=spec.exclude_from_sequences,
            unenroll_existing_on_save=spec.unenroll_existing_on_save,
        )


class SampleRow(BaseModel):
    email: str
    first_name: str
    last_name: str
    title: str
    company: str | None


class NearMissOut(BaseModel):
    listed: str = Field(description="A domain the filter lists.")
    present: str = Field(description="A variant of it in the data that the filter misses.")
    kind: str = Field(
        default="suffix",
        description="`suffix`: the same name under another suffix; `look_alike`: another "
        "domain that reads the same on screen (Unicode confusables, e.g. a Cyrillic letter).",
    )


class UnreachedOut(BaseModel):
    """People with an email at a listed domain whom a company rule does not reach."""

    domains: list[str]
    count: int
    without_company: int
    at_another_company: int
    sample: list[dict[str, Any]] = Field(description="email and company domain (or null).")


class PreviewOut(BaseModel):
    """The impact of saving an exclusion."""

    people_matched: int
    people_total: int
    share: float
    companies_matched: int
    enrollments_removed: int = Field(description="Active enrollments a save would end.")
    emails_cancelled: int = Field(description="Queued emails a save would cancel.")
    sample: list[SampleRow]
    near_misses: list[NearMissOut]
    unreached_at_domains: UnreachedOut | None = None
    warnings: list[str]
    needs_confirmation: bool
    confirmation_reasons: list[str]

    @classmethod
    def of(cls, impact: Preview) -> PreviewOut:
        return cls(
            people_matched=impact.people_matched,
            people_total=impact.people_total,
            share=round(impact.share, 4),
            companies_matched=impact.companies_matched,
            enrollments_removed=impact.enrollments_removed,
            emails_cancelled=impact.emails_cancelled,
            sample=[SampleRow.model_validate(row) for row in impact.sample],
            near_misses=[
                NearMissOut(listed=n.listed, present=n.present, kind=n.kind)
                for n in impact.near_misses
            ],
            unreached_at_domains=(
                UnreachedOut(**vars(impact.unreached)) if impact.unreached else None
            ),
            warnings=list(impact.warnings),
            needs_confirmation=impact.needs_confirmation,
            confirmation_reasons=list(impact.confirmation_reasons),
        )


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    actor: str
    rule: str | None
    person_id: int | None
    sequence_id: int | None
    sequence: str | None
    enrollment_id: int | None
    email_id: int | None
    exclusion_id: int | None
    exclusion: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: Event, names: Mapping[str, Mapping[int, str]]) -> EventOut:
        return cls(
            id=event.id,
            at=event.at,
            kind=event.kind,
            actor=event.actor,
            rule=event.rule,
            person_id=event.person_id,
            sequence_id=event.sequence_id,
            sequence=names["sequence"].get(event.sequence_id or 0),
            enrollment_id=event.enrollment_id,
            email_id=event.email_id,
            exclusion_id=event.exclusion_id,
            exclusion=names["exclusion"].get(event.exclusion_id or 0),
            detail=jsonable_encoder(dict(event.detail)),
        )


class CrmWritebackOut(BaseModel):
    """The address's opt-out as sent to the CRM, and where that stands."""

    queued_at: datetime
    updated_at: datetime
    field: str = Field(description="Our field written, email_opt_out.")
    state: str = Field(
        description="queued (waiting for the next CRM sync), written, skipped (the CRM "
        "field is mapped read only) or failed (no more retries)."
    )
    summary: str = Field(description="The state in words.")
    attempts: int
    crm_answer: str = Field(description="The CRM's answer to the last failed try.")

    @classmethod
    def of(cls, writeback: CrmWriteback) -> CrmWritebackOut:
        return cls(
            queued_at=writeback.queued_at,
            updated_at=writeback.updated_at,
            field=writeback.field,
            state=writeback.state,
            summary=writeback.summary,
            attempts=writeback.attempts,
            crm_answer=writeback.crm_answer,
        )


class LedgerEntry(BaseModel):
    """One opt-out, bounce, spam complaint or clearing of an address."""

    email: str
    kind: str = Field(description="opt_out | bounce | complaint")
    action: str
    at: datetime
    actor: str
    channel: str
    reason: str
    evidence: str
