"""A HubSpot webhook whose timestamp header is not a plain time in milliseconds is refused
with 401, not a 500: on SQLite and PostgreSQL, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.engine import Engine

from optout.crm import webhooks
from tests.crm.conftest import hubspot_workspace, optout_web
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot

HOSTILE_TIMESTAMPS = ["\u00b2", "1" * 5_000, "\u0661\u0662\u0663", "-5", "12.5", " "]


@pytest.mark.parametrize(
    "timestamp",
    HOSTILE_TIMESTAMPS,
    ids=["superscript", "5000-digits", "arabic-digits", "negative", "decimal", "blank"],
)
def test_R32_a_hubspot_timestamp_that_is_no_time_is_refused(timestamp: str) -> None:
    with pytest.raises(webhooks.WebhookRejected):
        webhooks.verify_hubspot(
            secret="s",
            method="POST",
            uri="https://x.example/hook",
            body=b"[]",
            timestamp=timestamp,
            signature="bm9wZQ==",
            now_ms=10_000_000,
        )


def test_R32_a_hubspot_webhook_with_a_hostile_timestamp_header_answers_401_not_500(
    fresh_engine: Engine,
    clock: FakeClock,
    start_hubspot: Callable[..., HubSpot],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot = start_hubspot()
    ann = hubspot.contact("ann@acme.com", company=hubspot.company("acme.com", "Acme"))
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    crm.sync()
    body = json.dumps([hubspot.event("contacts", ann)]).encode()
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/hubspot/{crm.connection_id}"
        answers = [
            httpx.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-HubSpot-Signature-v3": "bm9wZQ==",
                    "X-HubSpot-Request-Timestamp": timestamp.encode("latin-1"),
                    "X-HubSpot-Signature-Version": "v3",
                },
                timeout=30,
            )
            for timestamp in ("\u00b2", "1" * 5_000)
        ]

    assert [a.status_code for a in answers] == [401, 401], [a.text for a in answers]
    assert all("milliseconds" in a.json()["error"]["message"] for a in answers)
