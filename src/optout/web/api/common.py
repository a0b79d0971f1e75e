"""What every API router shares: the transaction, pagination, and bounded input types."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Connection

from optout.db.engine import read_transaction
from optout.web.site import site_of

# Ids are 32-bit in storage; larger numbers cannot name anything (and SQLite would
# overflow on them), so they are refused as bad input.
MAX_ID = 2**31 - 1
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=2000)]
Email = Annotated[
    str,
    Field(
        min_length=1,
        max_length=320,
        description="An email address; validated and normalized by optout, not here.",
        json_schema_extra={"format": "email"},
    ),
]
EmailQuery = Annotated[
    str, Query(min_length=1, max_length=320, json_schema_extra={"format": "email"})
]
EmailFilter = Annotated[str | None, Query(max_length=320, json_schema_extra={"format": "email"})]
Domain = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="A domain; scheme, `www.`, path, case and trailing dots are stripped.",
        json_schema_extra={"format": "hostname"},
    ),
]


def transaction(request: Request) -> AbstractContextManager[Connection]:
    """One unit of work on the app's engine: commits at the end of the `with`, or rolls
    back when anything in it raises."""
    return site_of(request).engine.begin()


def read(request: Request) -> AbstractContextManager[Connection]:
    """A unit of work that only reads: on SQLite it reads a snapshot and never waits
    behind the write lock (the worker's claims, other requests' writes)."""
    return read_transaction(site_of(request).engine)


class Input(BaseModel):
    """A request body: unknown fields are an error, never silently dropped, and text that
    no database can store (NUL characters, lone surrogates) is refused up front."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable_text(self) -> Self:
        for name in type(self).model_fields:
            _check_text(getattr(self, name), where=name)
        return self


def _check_text(value: Any, *, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: NUL characters are not allowed")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: not valid Unicode text (a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where=where)
            _check_text(item, where=f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_text(item, where=f"{where}[{index}]")


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """One page of a list: `next` is the URL of the following page, null on the last."""

    items: list[Item]
    total: int | None = Field(description="How many items match in all (null: not counted).")
    limit: int
    offset: int
    next: str | None


def page(
    request: Request, params: PageParams, items: Sequence[Any], total: int | None
) -> dict[str, Any]:
    """A page body; without a total, a full page is taken to have a next one."""
    end = params.offset + len(items)
    more = end < total if total is not None else len(items) == params.limit
    following = str(request.url.include_query_params(offset=end)) if more and items else None
    return {
        "items": list(items),
        "total": total,
        "limit": params.limit,
        "offset": params.offset,
        "next": following,
    }
