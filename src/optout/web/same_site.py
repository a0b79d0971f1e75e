"""Where a page may send the browser after signing in: only a path of this site.

A target is read the way browsers read a `Location` (the WHATWG URL parser): tabs and
newlines anywhere are dropped, control characters and spaces at the ends are trimmed,
and a backslash counts as a slash. So `/<TAB>/evil.example` and `/\\evil.example` are
`//evil.example`, another host. The percent-decoded forms are checked too, for whatever
decodes the target once more on its way. Anything that is not a plain path goes to the
dashboard.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

HOME = "/"
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DECODINGS = 3  # `%252F` is `%2F` is `/`: rounds of decoding checked before giving up


def _as_browsers_read(target: str) -> str:
    text = _TAB_OR_NEWLINE.sub("", target).strip("".join(map(chr, range(0x21))))
    return text.replace("\\", "/")


def _is_path(target: str) -> bool:
    read = _as_browsers_read(target)
    if _CONTROL.search(read) or not read.startswith("/") or read.startswith("//"):
        return False
    parts = urlsplit(read)
    return not parts.scheme and not parts.netloc


def same_site_path(target: str) -> str:
    """`target` if it is a path on this site however it is read or decoded; else `/`."""
    if _CONTROL.search(target) or target != target.strip():
        return HOME
    probe = target
    for _ in range(_DECODINGS + 1):
        if not _is_path(probe):
            return HOME
        decoded = unquote(probe)
        if decoded == probe:
            return target
        probe = decoded
    return HOME  # still encoded after so many rounds: no page of ours looks like that
