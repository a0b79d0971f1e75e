"""The route class of every page: optout's errors become pages here, not JSON.

Signed out: off to the sign-in page. Any other OptoutError that a page does not
handle itself: an error page with the message and the status of `web.errors`. The
JSON API keeps its own answers: only routers made with `page_router()` use this.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from optout.errors import NotFound, OptoutError
from optout.services.access.accounts import NotSignedIn
from optout.web.api.common import MAX_ID
from optout.web.pages.render import error_page, to_sign_in


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        ids = [p.name for p in self.dependant.path_params if p.field_info.annotation is int]

        async def answer(request: Request) -> Response:
            if any(_beyond_any_id(request.path_params.get(name)) for name in ids):
                return error_page(request, NotFound("there is no such page"))
            try:
                return await handler(request)
            except NotSignedIn:
                return to_sign_in(request)
            except OptoutError as error:
                return error_page(request, error)

        return answer


def page_router() -> APIRouter:
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def _beyond_any_id(raw: object) -> bool:
    """A whole number in the URL that no stored row can have: ids are 32-bit in storage,
    and a larger number would overflow the database's integer (a 500), so it names nothing."""
    if not isinstance(raw, str):
        return False
    digits = raw.strip().lstrip("+-").lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return False
    return len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID
