"""The access log names no secret: a path that carries a token (an unsubscribe link, an
uploaded file's steps and its error report) or a query that carries a key (a CRM's
webhook address) is written with that part replaced, so the log can be shared and
kept without handing anyone the power to opt people out or read their uploads."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"

_SECRET_PATHS = (
    re.compile(r"(/u/)[^/?#\s\"]+"),  # unsubscribe links
    re.compile(r"(/imports/)[A-Za-z0-9_-]{22,64}(?=[/?#\s\"]|$)"),  # uploads, error reports
)
_SECRET_QUERY = re.compile(r"([?&](?:key|token)=)[^&#\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every secret token of a path or query replaced."""
    for pattern in _SECRET_PATHS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Rewrites an access log record's message and arguments before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Put the filter on the access logger (once, however often it is called)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
