"""Links whose address comes from data: a CRM value in `<a href="{{ ... }}">` must not turn
into a `javascript:` (or `data:`, `vbscript:`...) link in a sent email.

The HTML template's output values are wrapped in two private-use marks while rendering;
afterwards every URL attribute holding a mark must have an http, https or mailto scheme,
or its value is emptied. Addresses written in the template itself are the author's."""

from __future__ import annotations

import html
import re
from typing import Any

from markupsafe import Markup

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})

_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKS = re.compile(f"[{_OPEN}{_CLOSE}]")
_URL_ATTRIBUTE = re.compile(
    r"""(?P<head>[\s"'/](?:href|src|action|formaction|background|xlink:href|poster|cite)"""
    r"""\s*=\s*)(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>(?:\ue000[^\ue001]*\ue001|[^\s"'=<>`])+))""",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
# Browsers ignore these inside a scheme: "java\tscript:" is "javascript:".
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")


def mark(value: Any) -> Any:
    """An output value of the HTML template, wrapped so its place can be found afterwards
    (marks already in the data are dropped, so data cannot fake or hide one)."""
    if isinstance(value, Markup):
        return Markup(_OPEN + _MARKS.sub("", str(value)) + _CLOSE)
    if isinstance(value, str):
        return _OPEN + _MARKS.sub("", value) + _CLOSE
    return value if value is None else _OPEN + _MARKS.sub("", str(value)) + _CLOSE


def checked(rendered: str) -> str:
    """The rendered HTML with every URL attribute that holds data checked, and no marks."""
    return _MARKS.sub("", _URL_ATTRIBUTE.sub(_check_attribute, rendered))


def allowed_url(url: str) -> bool:
    """Whether a link may point at `url` (as written in HTML, entities not yet decoded)."""
    plain = _IGNORED.sub("", html.unescape(_MARKS.sub("", url))).lower()
    scheme = _SCHEME.match(plain)
    return scheme is not None and scheme.group(1) in ALLOWED_SCHEMES


def _check_attribute(match: re.Match[str]) -> str:
    value = next(v for v in (match["dq"], match["sq"], match["bare"]) if v is not None)
    if _OPEN not in value or allowed_url(value):
        return match.group(0)
    return f'{match["head"]}""'
