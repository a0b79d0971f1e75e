"""optout's errors as HTTP answers: one body shape, a machine-readable code and a human
message (R34). Status codes are chosen here and nowhere else."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from optout.errors import (
    ConfirmationRequired,
    Conflict,
    ConnectorError,
    InvalidFilter,
    InvalidInput,
    NotFound,
    OptoutError,
    TooManyAttempts,
)
from optout.services.access.accounts import NotAllowed, NotSignedIn

STATUS: tuple[tuple[type[OptoutError], int], ...] = (
    (NotSignedIn, 401),
    (NotAllowed, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ConfirmationRequired, 409),
    (InvalidFilter, 422),
    (InvalidInput, 422),
    (TooManyAttempts, 429),
    (ConnectorError, 502),
)


def status_of(error: OptoutError) -> int:
    return next((status for kind, status in STATUS if isinstance(error, kind)), 400)


def error_body(error: OptoutError) -> dict[str, object]:
    body: dict[str, object] = {"code": error.code, "message": error.message}
    if isinstance(error, InvalidFilter):
        body["where"] = error.where
        if error.location:
            body["location"] = error.location
    if error.field:
        body["field"] = error.field
    return {"error": body}


def install(app: FastAPI) -> None:
    """Answer every OptoutError that reaches the top with its status and the error body."""

    @app.exception_handler(OptoutError)
    async def _handle(request: Request, error: OptoutError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, NotSignedIn) else None
        return JSONResponse(error_body(error), status_code=status_of(error), headers=headers)
