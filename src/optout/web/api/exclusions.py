"""Exclusions: list, read, create and change with the R22 guard, and the impact preview.

A save that would exclude or unenroll too many at once answers 409
`confirmation_required` with the preview in the error body; sending the same
request again with `"confirm": true` saves it. Nothing is written by a refused save.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from optout.clock import utcnow
from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.errors import ConfirmationRequired, InvalidInput
from optout.filters import Level
from optout.services import exclusion_rules
from optout.services.access.accounts import Principal
from optout.services.exclusions import saves, unenroll
from optout.services.exclusions.preview import Preview, preview
from optout.services.exclusions.saves import Saved
from optout.services.filters import read_filter
from optout.services.reads import listing
from optout.web.api.common import BodyId, Input, Name, Page, Paging, PathId, page, read
from optout.web.api.common import transaction as tx
from optout.web.api.errors import ApiError
from optout.web.api.schemas import FILTER_HELP, ExclusionOut, PreviewOut, RemovalOut
from optout.web.api.schemas import Level as LevelName
from optout.web.auth import ApiPrincipal
from optout.web.site import site_of

router = APIRouter(prefix="/exclusions", tags=["exclusions"])

FilterIn = Annotated[
    Annotated[str, Field(min_length=1, max_length=100_000)] | dict[str, Any],
    Field(description=FILTER_HELP),
]
CONFIRM_HELP = (
    "Save even when it excludes more than the workspace's share of all people or "
    "unenrolls more than its limit."
)


class ExclusionIn(Input):
    name: Name
    level: LevelName = Field(
        description="company: everyone at matching companies; people: only the matches."
    )
    filter: FilterIn
    enabled: bool = True
    exclude_from_sequences: bool = Field(
        False,
        description="Also remove people who come to match mid-sequence, in every sequence; "
        "no audience can switch it off. Off: it only blocks new enrollments.",
    )
    unenroll_existing_on_save: bool = Field(
        False, description="On save, unenroll everyone it matches."
    )
    confirm: bool = Field(False, description=CONFIRM_HELP)


class ExclusionChange(Input):
    """Only the fields given change. A new level keeps the filter, which must fit it."""

    name: Name | None = None
    level: LevelName | None = None
    filter: FilterIn | None = None
    enabled: bool | None = None
    exclude_from_sequences: bool | None = None
    unenroll_existing_on_save: bool | None = None
    confirm: bool = Field(False, description=CONFIRM_HELP)


class PreviewIn(Input):
    """A new exclusion (`level` and `filter`), or a saved one (`exclusion_id` or `name`)
    with any changes to try."""

    exclusion_id: BodyId | None = None
    name: Name | None = Field(None, description="A saved exclusion's name.")
    level: LevelName | None = None
    filter: FilterIn | None = None
    enabled: bool | None = None
    exclude_from_sequences: bool | None = None
    unenroll_existing_on_save: bool | None = None


class ExclusionSaved(BaseModel):
    exclusion: ExclusionOut
    preview: PreviewOut = Field(description="Its impact as saved.")
    removed: RemovalOut = Field(description="What unenroll-on-save ended.")

    @classmethod
    def of(cls, saved: Saved) -> ExclusionSaved:
        return cls(
            exclusion=ExclusionOut.of(saved.exclusion),
            preview=PreviewOut.of(saved.preview),
            removed=RemovalOut.of(saved.removal),
        )


class PreviewResult(BaseModel):
    exclusion: ExclusionOut = Field(description="The draft previewed (id 0 when new).")
    preview: PreviewOut


def _draft(
    base: ExclusionSpec | None,
    *,
    level: str | None = None,
    filter: str | dict[str, Any] | None = None,
    **changes: Any,
) -> ExclusionSpec:
    """An unsaved exclusion: `base` (or a new one from `level` and `filter`) with the
    given changes; None means unchanged."""
    if base is None:
        if level is None or filter is None:
            raise InvalidInput("give a saved exclusion (exclusion_id or name), or level and filter")
        lvl = Level(level)
        base = ExclusionSpec(0, "(draft)", lvl, read_filter(filter, lvl), True, False)
    lvl = Level(level) if level is not None else base.level
    node = read_filter(filter if filter is not None else base.filter, lvl)
    given = {key: value for key, value in changes.items() if value is not None}
    return dataclasses.replace(base, level=lvl, filter=node, **given)


def _needs_confirmation(
    request: Request,
    exc: ConfirmationRequired,
    workspace_id: int,
    draft: Callable[[Connection], ExclusionSpec],
    now: datetime,
) -> ApiError:
    """The 409 answer of a refused save, with the preview of what it would have done."""
    impact = exc.preview
    if not isinstance(impact, Preview):
        with read(request) as db:
            impact = preview(db, workspace_id=workspace_id, exclusion=draft(db), now=now)
    return ApiError(
        409,
        exc.code,
        f'{exc.message}; send it again with "confirm": true to save',
        preview=PreviewOut.of(impact).model_dump(mode="json"),
    )


def _unenroll(request: Request, principal: Principal, saved: Saved, now: datetime) -> Saved:
    """With unenroll-on-save, end the enrollments the committed save removes beyond those
    it ended itself, in parts (the exclusion is in force from its own commit: nobody it
    excludes is emailed)."""
    removal = unenroll.unenroll_in_parts(
        site_of(request).engine,
        lambda: tx(request),
        workspace_id=principal.workspace_id,
        exclusion=saved.exclusion,
        actor=principal.actor,
        now=now,
    )
    return dataclasses.replace(saved, removal=saved.removal + removal)


@router.get("", response_model=Page[ExclusionOut], summary="List exclusions")
def list_exclusions(request: Request, principal: ApiPrincipal, paging: Paging) -> dict[str, Any]:
    with read(request) as db:
        found = listing.rows(
            db,
            t.exclusions,
            workspace_id=principal.workspace_id,
            limit=paging.limit,
            offset=paging.offset,
        )
        items = [ExclusionOut.of(exclusion_rules.spec_from_row(row)) for row in found.rows]
    return page(request, paging, items, found.total)


@router.post(
    "",
    response_model=ExclusionSaved,
    status_code=201,
    summary="Create an exclusion",
    responses={409: {"description": "Needs confirmation (the body holds the preview)"}},
)
def create_exclusion(
    request: Request, principal: ApiPrincipal, data: ExclusionIn
) -> ExclusionSaved:
    """Save a new exclusion. With `unenroll_existing_on_save` it ends every matching
    active enrollment and cancels queued emails in the same transaction. A mass
    exclusion answers 409 `confirmation_required` with the preview until `confirm` is
    true."""
    ws, now = principal.workspace_id, utcnow()
    toggles = {
        "enabled": data.enabled,
        "exclude_from_sequences": data.exclude_from_sequences,
        "unenroll_existing_on_save": data.unenroll_existing_on_save,
    }
    try:
        # Parsed and previewed before the write transaction opens: a filter of thousands
        # of domains takes a while to read, and no lock may be held meanwhile.
        draft = saves.draft_of(name=data.name, level=data.level, filter=data.filter, **toggles)
        with read(request) as db:
            impact = saves.impact_of_new(
                db, workspace_id=ws, draft=draft, now=now, confirm=data.confirm
            )
        with tx(request) as db:
            saved = saves.create(
                db,
                workspace_id=ws,
                name=draft.name,
                level=draft.level,
                filter=draft.filter,
                actor=principal.actor,
                now=now,
                confirm=data.confirm,
                impact=impact,
                unenroll_now=False,
                **toggles,
            )
        saved = _unenroll(request, principal, saved, now)
    except ConfirmationRequired as exc:
        raise _needs_confirmation(
            request,
            exc,
            ws,
            lambda db: _draft(
                None, level=data.level, filter=data.filter, name=data.name, **toggles
            ),
            now,
        ) from None
    return ExclusionSaved.of(saved)


@router.post("/preview", response_model=PreviewResult, summary="Preview an exclusion's impact")
def preview_exclusion(request: Request, principal: ApiPrincipal, data: PreviewIn) -> PreviewResult:
    """What an exclusion would match before it is saved: people and companies
    matched, the active enrollments and queued emails a save would remove, a sample,
    near-miss domain variants present in the data, warnings, and whether a save needs
    confirmation. Nothing is written."""
    ws = principal.workspace_id
    if data.exclusion_id is not None and data.name is not None:
        raise InvalidInput("give exclusion_id or name, not both")
    with read(request) as db:  # previewing writes only its own temporary table
        base = None
        if data.exclusion_id is not None:
            base = saves.get_by_id(db, workspace_id=ws, exclusion_id=data.exclusion_id)
        elif data.name is not None:
            base = saves.get(db, workspace_id=ws, name=data.name)
        draft = _draft(
            base,
            level=data.level,
            filter=data.filter,
            enabled=data.enabled,
            exclude_from_sequences=data.exclude_from_sequences,
            unenroll_existing_on_save=data.unenroll_existing_on_save,
        )
        impact = preview(db, workspace_id=ws, exclusion=draft, now=utcnow())
    return PreviewResult(exclusion=ExclusionOut.of(draft), preview=PreviewOut.of(impact))


@router.get("/{exclusion_id}", response_model=ExclusionOut, summary="Get an exclusion")
def get_exclusion(request: Request, principal: ApiPrincipal, exclusion_id: PathId) -> ExclusionOut:
    with read(request) as db:
        spec = saves.get_by_id(db, workspace_id=principal.workspace_id, exclusion_id=exclusion_id)
    return ExclusionOut.of(spec)


@router.patch(
    "/{exclusion_id}",
    response_model=ExclusionSaved,
    summary="Change an exclusion",
    responses={409: {"description": "Needs confirmation (the body holds the preview)"}},
)
def change_exclusion(
    request: Request, principal: ApiPrincipal, exclusion_id: PathId, data: ExclusionChange
) -> ExclusionSaved:
    """Change the filter, level, name or toggles. A level change keeps the filter, which
     must fit the new level, or the save fails saying why; nothing is reset or inverted
    . Disabling needs no confirmation; a change that excludes or unenrolls many
     does. Removing someone from the filter makes them eligible again at once."""
    ws, now = principal.workspace_id, utcnow()
    changes: dict[str, Any] = {
        "new_name": data.name,
        "level": data.level,
        "enabled": data.enabled,
        "exclude_from_sequences": data.exclude_from_sequences,
        "unenroll_existing_on_save": data.unenroll_existing_on_save,
    }
    try:
        with read(request) as db:  # parsed and previewed before the write lock is taken
            current = saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id)
            _, draft = saves.changed(
                db, workspace_id=ws, name=current.name, filter=data.filter, **changes
            )
            impact = saves.guard(db, workspace_id=ws, draft=draft, now=now, confirm=data.confirm)
        with tx(request) as db:
            saved = saves.update(
                db,
                workspace_id=ws,
                name=current.name,
                actor=principal.actor,
                now=now,
                confirm=data.confirm,
                filter=draft.filter if data.filter is not None else None,
                impact=impact,
                unenroll_now=False,
                **changes,
            )
        saved = _unenroll(request, principal, saved, now)
    except ConfirmationRequired as exc:
        raise _needs_confirmation(
            request,
            exc,
            ws,
            lambda db: _draft(
                saves.get_by_id(db, workspace_id=ws, exclusion_id=exclusion_id),
                level=data.level,
                filter=data.filter,
                name=data.name,
                enabled=data.enabled,
                exclude_from_sequences=data.exclude_from_sequences,
                unenroll_existing_on_save=data.unenroll_existing_on_save,
            ),
            now,
        ) from None
    return ExclusionSaved.of(saved)
