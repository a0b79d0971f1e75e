"""The notice a page shows after a form ("Saved Outbound.", "The sync failed: ..."):
set by the server when it redirects, never read from the address.

A notice travels in a short-lived cookie signed with the session's own secret (the
session cookie, which is HttpOnly and never leaves this site), so a link cannot put
words on a page that look like the app's own, and a notice of one session means
nothing in another. The first full page shown afterwards reads it and clears it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from fastapi import Request, Response

from optout.web.auth import SESSION_COOKIE
from optout.web.clients import over_https

NOTICE_COOKIE = "optout_notice"
NOTICE_LIFETIME = 120  # seconds: from a redirect to the page it leads to
MAX_TEXT = 1000  # characters of each notice: a cookie holds about 4 KB


@dataclass(frozen=True)
class Notice:
    done: str = ""  # what was done, shown as a success
    problem: str = ""  # what went wrong, shown as an error


def _key(session_token: str) -> bytes:
    return hashlib.sha256(b"optout page notice\x00" + session_token.encode()).digest()


def _signature(session_token: str, payload: bytes) -> str:
    return hmac.new(_key(session_token), payload, hashlib.sha256).hexdigest()


def set_notice(request: Request, response: Response, notice: Notice) -> Response:
    """Have the next page of this session show `notice` (nothing without a session)."""
    session_token = request.cookies.get(SESSION_COOKIE, "")
    if not session_token or not (notice.done or notice.problem):
        return response
    body = {"done": notice.done[:MAX_TEXT], "problem": notice.problem[:MAX_TEXT]}
    payload = json.dumps(body, ensure_ascii=True).encode("ascii")
    value = (
        f"{base64.urlsafe_b64encode(payload).decode('ascii')}.{_signature(session_token, payload)}"
    )
    response.set_cookie(
        NOTICE_COOKIE,
        value,
        max_age=NOTICE_LIFETIME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=over_https(request),
    )
    return response


def read_notice(request: Request) -> Notice:
    """The notice this session's last redirect set, or none if it is missing, forged,
    or another session's."""
    value = request.cookies.get(NOTICE_COOKIE, "")
    session_token = request.cookies.get(SESSION_COOKIE, "")
    encoded, _, signature = value.partition(".")
    if not value or not session_token:
        return Notice()
    try:
        payload = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (binascii.Error, ValueError):
        return Notice()
    if not hmac.compare_digest(signature.encode(), _signature(session_token, payload).encode()):
        return Notice()
    try:
        body = json.loads(payload)
    except ValueError:
        return Notice()
    if not isinstance(body, dict):
        return Notice()
    done, problem = body.get("done", ""), body.get("problem", "")
    return Notice(
        done=done if isinstance(done, str) else "",
        problem=problem if isinstance(problem, str) else "",
    )


def clear_notice(request: Request, response: Response) -> None:
    """The notice was shown: forget it."""
    if NOTICE_COOKIE in request.cookies:
        response.delete_cookie(
            NOTICE_COOKIE, path="/", httponly=True, samesite="lax", secure=over_https(request)
        )
