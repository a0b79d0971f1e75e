"""The API's answers to what `optout.web.errors` does not see: FastAPI's request
validation, unknown routes and methods, and database refusals. Under `/api/` each
becomes the one error body of R34, `{"error": {"code", "message"[, "where"][, "field"]}}`;
elsewhere (pages) FastAPI's own handling stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

API_PREFIX = "/api/"


class ErrorResponse(JSONResponse):
    """JSON with non-ASCII escaped, so an error that quotes undecodable input (a lone
    surrogate) still renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class ApiError(Exception):
    """An answer with the error body and more keys beside `code` and `message` (the
    preview of a save that needs confirmation, the report of a rejected import)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    where: str | None = None
    location: str | None = None
    field: str | None = None


class ErrorBody(BaseModel):
    """Every error the API answers: a machine-readable code and a message for people;
    `where` points at the bad part of the input when there is one, and `field` names the
    field of the request body it is about (`from_address`) when the refusal knows it. A
    filter's error says in `where` which part in words ("the first condition") and
    gives its `location` in the filter's JSON form (`filter.all[0]`)."""

    error: ErrorDetail


def body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _where(location: Sequence[Any]) -> str:
    return ".".join(str(part) for part in location)


def _problem(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    return str(error.get("msg", "invalid"))


def validation_body(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    problems = [(_where(e.get("loc", ())), _problem(e)) for e in errors]
    message = "; ".join(f"{where}: {problem}" for where, problem in problems) or "bad request"
    first = tuple(errors[0].get("loc", ())) if errors else ()
    field = {"field": str(first[1])} if len(first) >= 2 and first[0] == "body" else {}
    return body("invalid_input", message, where=problems[0][0] if problems else "", **field)


HTTP_CODES = {
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported",
}


def install(app: FastAPI) -> None:
    """Register the handlers; outside `/api/` they hand over to FastAPI's defaults."""

    def is_api(request: Request) -> bool:
        return request.url.path.startswith(API_PREFIX)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> Response:
        return ErrorResponse(body(error.code, error.message, **error.extra), error.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        if not is_api(request):
            return await request_validation_exception_handler(request, error)
        return ErrorResponse(validation_body(error.errors()), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if not is_api(request):
            return await http_exception_handler(request, error)
        code = HTTP_CODES.get(error.status_code, "http_error")
        message = str(error.detail) if error.detail else "error"
        if error.status_code == 404 and message == "Not Found":
            message = f"no API route {request.method} {request.url.path}"
        return ErrorResponse(body(code, message), error.status_code, headers=error.headers)

    @app.exception_handler(sa.exc.IntegrityError)
    async def _conflict(request: Request, error: sa.exc.IntegrityError) -> Response:
        if not is_api(request):
            raise error
        return ErrorResponse(
            body("conflict", "this contradicts data that exists already (a duplicate?)"), 409
        )

    @app.exception_handler(sa.exc.DataError)
    async def _unstorable(request: Request, error: sa.exc.DataError) -> Response:
        if not is_api(request):
            raise error
        return ErrorResponse(
            body("invalid_input", "a value cannot be stored (too long, or not valid text)"), 422
        )
