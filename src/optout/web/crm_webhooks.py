"""Endpoints the CRMs push changes to (R32 B). Translation only: the HTTP request in, the
use-case (`optout.crm.webhooks.handle_push`) called, its outcome out. A change is applied
and enforced before the answer leaves, so a 200 (or a SOAP Ack) means it is in force.

    POST /crm/webhooks/hubspot/{connection_id}      HubSpot webhooks, signature v3
    POST /crm/webhooks/salesforce/{connection_id}?key=...   Salesforce Outbound Messages
                                                    (SOAP); the key is the webhook secret
"""

from __future__ import annotations

import logging
import os
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from optout.clock import utcnow
from optout.crm import connections, credentials, webhooks
from optout.crm.connections import CrmConnection
from optout.crm.protocol import Connector
from optout.errors import ConnectorError, NotFound, OptoutError
from optout.web.errors import error_body
from optout.web.site import site_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/crm/webhooks", include_in_schema=False)

SOAP = "text/xml; charset=utf-8"
_connectors_lock = threading.Lock()


def _connect(
    request: Request, connection_id: int, kind: str
) -> tuple[CrmConnection, Connector, dict[str, str]]:
    """The connection and a connector for it, kept by the app between pushes (its HTTP
    client, token and rate window are worth keeping) until the connection, its mappings
    or its secrets change."""
    engine = site_of(request).engine
    with engine.connect() as db:
        connection = connections.by_id(db, connection_id=connection_id)
        if connection.kind != kind or not connection.enabled:
            raise NotFound(f"no enabled {kind} connection {connection_id}")
        fields = connections.mappings(db, connection_id=connection.id)
        stored = credentials.stored(
            db, connection=connection, keys=site_of(request).settings.encryption_keys
        )
    secrets = sorted(connections.secret_values(connection, os.environ, stored).items())
    key = repr((connection, fields, secrets))
    state = request.app.state
    with _connectors_lock:
        kept: dict[int, tuple[str, Connector]] | None = getattr(state, "crm_connectors", None)
        if kept is None:
            kept = state.crm_connectors = {}
        held = kept.get(connection.id)
        if held is not None and held[0] == key:
            return connection, held[1], stored
        connector = connections.connector_for(connection, fields, os.environ, stored=stored)
        kept[connection.id] = (key, connector)
    return connection, connector, stored


@router.post("/hubspot/{connection_id}")
async def hubspot(connection_id: int, request: Request) -> Response:
    body = await request.body()
    connection, connector, stored = await run_in_threadpool(
        _connect, request, connection_id, "hubspot"
    )
    try:
        secret = connections.secret(connection, "webhook_secret", os.environ, stored)
        webhooks.verify_hubspot(
            secret=secret,
            method=request.method,
            uri=str(connection.settings.get("webhook_url") or request.url),
            body=body,
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp"),
            signature=request.headers.get("X-HubSpot-Signature-v3"),
            now_ms=int(time.time() * 1000),
        )
        changes = webhooks.hubspot_changes(body)
        applied = await run_in_threadpool(
            webhooks.handle_push,
            site_of(request).engine,
            connection=connection,
            connector=connector,
            changes=changes,
            now=utcnow,
        )
    except webhooks.WebhookRejected as exc:
        return JSONResponse(error_body(exc), status_code=401)
    except ConnectorError as exc:
        # HubSpot delivers the events again later; nothing was applied.
        return JSONResponse(error_body(exc), status_code=503)
    return JSONResponse({"applied": applied.read, "unenrolled": applied.unenrolled})


@router.post("/salesforce/{connection_id}")
async def salesforce(connection_id: int, request: Request) -> Response:
    try:
        connection, connector, stored = await run_in_threadpool(
            _connect, request, connection_id, "salesforce"
        )
    except NotFound:
        return Response(webhooks.soap_fault("unknown connection"), 404, media_type=SOAP)
    # The key is checked before the body is read: an unknown sender costs nothing.
    expected = connections.secret_values(connection, os.environ, stored).get("webhook_secret", "")
    if not expected:
        fault = "this connection takes no outbound messages until it has a webhook secret"
        return Response(webhooks.soap_fault(fault), 403, media_type=SOAP)
    given = request.query_params.get(credentials.WEBHOOK_KEY, "")
    if not credentials.webhook_key_matches(expected, given):
        return Response(webhooks.soap_fault("wrong webhook key"), 403, media_type=SOAP)
    try:
        body = await _capped_body(request, webhooks.MAX_BODY)
        message = webhooks.parse_outbound_message(body)
        expected = str(connection.settings.get("organization_id") or "")
        if expected and message.organization_id[:15] != expected[:15]:
            raise webhooks.WebhookRejected("the message comes from another organization")
        await run_in_threadpool(
            webhooks.handle_push,
            site_of(request).engine,
            connection=connection,
            connector=connector,
            changes=message.changes,
            now=utcnow,
        )
    except webhooks.WebhookRejected as exc:
        return Response(webhooks.soap_fault(exc.message), 403, media_type=SOAP)
    except OptoutError as exc:
        # Not acknowledged: Salesforce delivers the message again later. What the CRM
        # answered stays in our log; the sender of the message is not told.
        log.warning(
            "salesforce connection %s: outbound message not applied: %s", connection.id, exc
        )
        fault = "the changes could not be applied now; deliver the message again later"
        return Response(webhooks.soap_fault(fault), 500, media_type=SOAP)
    return Response(webhooks.ACK, 200, media_type=SOAP)


async def _capped_body(request: Request, limit: int) -> bytes:
    """The request body, read no further than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise webhooks.WebhookRejected("the outbound message is too large")
        chunks.append(chunk)
    return b"".join(chunks)
