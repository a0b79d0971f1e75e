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

from optout.errors import OptoutError
from optout.services.accounts import NotSignedIn
from optout.web.pages.render import error_page, to_sign_in


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                return to_sign_in(request)
            except OptoutError as error:
                return error_page(request, error)

        return answer


def page_router() -> APIRouter:
    return APIRouter(route_class=PageRoute, include_in_schema=False)
