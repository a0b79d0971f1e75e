"""The JSON API under `/api/v1`: one router per concept, each only translating HTTP to one
service call in one transaction and back.

Every route needs an API key (`Authorization: Bearer ok_...`, made by `optout api-key
create` or `POST /api/v1/api-keys`) and sees only that key's workspace: ids from the
path or the body are looked up inside it, so another workspace's objects answer 404.
Errors have one body, `{"error": {"code", "message"[, "where"]}}` (R34). The OpenAPI
description is at `/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Security
from fastapi.security import HTTPBearer

from optout import __version__
from optout.web.api import (
    audiences,
    companies,
    enrollments,
    errors,
    exclusions,
    explain,
    history,
    imports,
    in_doubt,
    inbound,
    jobs,
    mailbox_capacity,
    mailboxes,
    members,
    opportunities,
    optouts,
    people,
    personas,
    rulesets,
    sequences,
)
from optout.web.api.errors import ErrorBody

PREFIX = "/api/v1"

# Declares the Bearer scheme in the OpenAPI description; `ApiPrincipal` checks the key.
_bearer = HTTPBearer(auto_error=False, description="An API key: `ok_<prefix>_<secret>`.")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    403: {"model": ErrorBody, "description": "The key's role may not do this"},
    404: {"model": ErrorBody, "description": "No such object in this workspace"},
    409: {"model": ErrorBody, "description": "Conflicts with the current state"},
    422: {"model": ErrorBody, "description": "Bad input: the message and `where` say what"},
}

router = APIRouter(prefix=PREFIX, dependencies=[Security(_bearer)], responses=ERRORS)
for module in (
    people,
    history,
    companies,
    opportunities,
    imports,
    exclusions,
    personas,
    audiences,
    rulesets,
    sequences,
    mailbox_capacity,  # before `mailboxes`: /mailboxes/capacity is no mailbox id
    mailboxes,
    enrollments,
    explain,
    optouts,
    inbound,
    in_doubt,
    members,
    jobs,
):
    router.include_router(module.router)

DESCRIPTION = """\
Decide, explain and enforce who may be emailed. Authenticate with an API key as a
Bearer token; every call sees only that key's workspace. Lists take `limit` and
`offset` and answer `{items, total, limit, offset, next}`. Errors answer
`{"error": {"code", "message", "where"?}}`. Times are UTC.
"""


def install(app: FastAPI) -> None:
    """Mount the API on `app` with its error handling."""
    app.include_router(router)
    errors.install(app)
    app.version = __version__
    app.description = DESCRIPTION


__all__ = ["PREFIX", "install", "router"]
