"""The access log of the web service names no secret token: unsubscribe links, upload
steps and their error reports, and keyed webhook addresses are logged redacted."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.web.access_log import ACCESS_LOGGER, redact
from optout.web.app import create_app
from optout.web.clients import server_config


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def logged_server(engine: Engine) -> Iterator[tuple[str, Kept]]:
    """The web app under uvicorn configured as `optout serve` configures it, with the
    access log at info level; yields its base URL and the access log lines."""
    app = create_app(
        Settings(database_url="unused://", secret_keys=("log-test-key-0123456789",)), engine
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, log_level="info"))
    kept = Kept()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(kept)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", kept
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        logger.removeHandler(kept)


def test_R3_unsubscribe_and_upload_tokens_never_reach_the_access_log(fresh_engine: Engine) -> None:
    unsubscribe = "eyJ3IjoxLCJwIjo0Mn0.c2lnbmF0dXJlLXRoYXQtaXMtc2VjcmV0"
    upload = secrets.token_urlsafe(24)
    key = secrets.token_urlsafe(24)
    with logged_server(fresh_engine) as (base, kept):
        httpx.get(f"{base}/u/{unsubscribe}", timeout=10)
        httpx.post(f"{base}/u/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}, timeout=10)
        httpx.get(f"{base}/imports/{upload}/errors.csv", timeout=10)
        httpx.post(f"{base}/crm/webhooks/salesforce/1?key={key}", content=b"<x/>", timeout=10)
        deadline = time.monotonic() + 5
        while len(kept.lines) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)

    log = "\n".join(kept.lines)
    assert len(kept.lines) >= 4, log
    assert "/u/[redacted]" in log
    assert "/imports/[redacted]/errors.csv" in log
    assert "/crm/webhooks/salesforce/1?key=[redacted]" in log
    for secret in (unsubscribe, upload, key):
        assert secret not in log


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/u/abc.def", "/u/[redacted]"),
        ("/u/abc.def?x=1", "/u/[redacted]?x=1"),
        ("/imports/" + "A" * 32, "/imports/[redacted]"),
        ("/imports/" + "A" * 32 + "/apply", "/imports/[redacted]/apply"),
        ("/imports", "/imports"),
        ("/people?page=2", "/people?page=2"),
        (
            "/crm/webhooks/salesforce/3?key=s3cr3t&x=1",
            "/crm/webhooks/salesforce/3?key=[redacted]&x=1",
        ),
    ],
)
def test_R3_only_the_secret_part_of_a_logged_path_is_redacted(path: str, logged: str) -> None:
    assert redact(path) == logged
