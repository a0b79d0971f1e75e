"""Emails made in doubt the way it happens: a worker pass against a real SMTP server that
keeps each message and drops the connection instead of answering it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.sending.transports import SmtpTransport
from optout.sending.worker import Mailer, PassResult, run_once
from tests.sending.smtp_server import HOST

KEYS = ("lost-answers-secret-key-0123456789",)


def worker_pass(engine: Engine, port: int, now: datetime) -> PassResult:
    """One worker pass that sends through the SMTP server on `port`."""
    settings = Settings(database_url="unused://", secret_keys=KEYS)
    with SmtpTransport(HOST, port, security="none", timeout=10, retries=2) as transport:
        return run_once(engine, mailer=Mailer(settings, transport), now=now)
