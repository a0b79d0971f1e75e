"""Changes the CRMs push (R32 B): HubSpot webhooks and Salesforce Outbound Messages.

Both become the same list of changes: (receipt id, object, record id). A change already
received (a redelivery) is ignored; the others are re-read through the CRM's API and
applied and enforced like a sync page, before the HTTP request is answered. Re-reading
means a forged or stale push can at worst make us read a record again: only the CRM's
own API decides what is applied. HubSpot requests must carry a valid v3 signature made
less than five minutes ago.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_without_dtd
from sqlalchemy.engine import Connection, Engine

from optout.crm import connections
from optout.crm.apply import Applied, apply_records
from optout.crm.connections import CrmConnection
from optout.crm.protocol import Connector, Record
from optout.crm.records import Target, complete
from optout.crm.sync import record_push
from optout.db import tables as t
from optout.errors import OptoutError

MAX_AGE_MS = 5 * 60 * 1000
RECEIPTS_KEPT = timedelta(days=7)
MAX_BODY = 2_000_000

# The characters HubSpot decodes in the request URI before signing it (v3).
_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
HUBSPOT_OBJECTS = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
}
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


class WebhookRejected(OptoutError):
    """A pushed request we do not accept: bad signature, too old, malformed, wrong org."""

    code = "webhook_rejected"


@dataclass(frozen=True)
class Change:
    receipt_id: str  # HubSpot eventId, Salesforce notification Id
    object: str
    record_id: str


# --- HubSpot ---------------------------------------------------------------------------------


def hubspot_signature(*, secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Base64 of HMAC-SHA256(secret, method + uri + body + timestamp), `uri` decoded as
    HubSpot decodes it."""
    for encoded, plain in _URI_DECODE.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


MAX_TIMESTAMP_DIGITS = 15  # milliseconds since 1970 have 13 digits until the year 2286


def verify_hubspot(
    *,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now_ms: int,
) -> None:
    """Raise WebhookRejected unless the v3 signature is valid and under five minutes old."""
    if not signature or not timestamp:
        raise WebhookRejected("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    # ASCII digits only, and no more than a time in milliseconds needs: "²" passes
    # str.isdigit() yet int() refuses it, and so does a number of thousands of digits.
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_TIMESTAMP_DIGITS):
        raise WebhookRejected("X-HubSpot-Request-Timestamp is not a time in milliseconds")
    age = now_ms - int(stamp)
    if age > MAX_AGE_MS or age < -MAX_AGE_MS:
        raise WebhookRejected("the request timestamp is more than five minutes away from now")
    expected = hubspot_signature(
        secret=secret, method=method, uri=uri, body=body, timestamp=timestamp.strip()
    )
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRejected("the HubSpot signature does not match")


def hubspot_changes(body: bytes) -> list[Change]:
    """The records a batch of HubSpot webhook events is about. Deletions are not applied
    (optout keeps people and their opt-outs); an association change re-reads the record
    whose links changed (a deal's people, a contact's company)."""
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(f"the webhook body is not JSON: {exc}") from exc
    if not isinstance(events, list):
        raise WebhookRejected("the webhook body is not a list of events")
    changes: list[Change] = []
    for event in events:
        if not isinstance(event, dict) or "eventId" not in event:
            raise WebhookRejected("a webhook event has no eventId")
        kind = str(event.get("subscriptionType", ""))
        prefix, _, action = kind.partition(".")
        if action in ("deletion", "privacyDeletion"):
            continue
        source = str(event.get("objectTypeId", "")) if prefix == "object" else prefix
        obj = HUBSPOT_OBJECTS.get(source)
        record_id = event.get("objectId") or event.get("fromObjectId")
        if action == "associationChange":
            obj, record_id = _association_side(event)
        if obj is None or record_id is None:
            continue
        changes.append(Change(str(event["eventId"]), obj, str(record_id)))
    return changes


def _association_side(event: dict[str, object]) -> tuple[str | None, object]:
    """`DEAL_TO_CONTACT` from a deal: the deal; `CONTACT_TO_COMPANY`: the contact."""
    source, _, target = str(event.get("associationType", "")).lower().partition("_to_")
    if "deal" in (source, target):
        return "deals", event.get("fromObjectId" if source == "deal" else "toObjectId")
    if source == "contact" and target == "company":
        return "contacts", event.get("fromObjectId")
    if source == "company" and target == "contact":
        return "contacts", event.get("toObjectId")
    return None, None


# --- Salesforce ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    changes: list[Change]


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """The notifications of a Salesforce Outbound Message (SOAP 1.1)."""
    if len(body) > MAX_BODY:
        raise WebhookRejected("the outbound message is too large")
    try:
        # The parser refuses a DOCTYPE (and so any entity declaration) whatever the
        # encoding the document declares: a byte search for "<!DOCTYPE" misses UTF-16.
        root = parse_without_dtd(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise WebhookRejected("the outbound message carries a DTD") from exc
    except (ET.ParseError, ValueError) as exc:  # ValueError: an encoding expat cannot read
        raise WebhookRejected(f"the outbound message is not XML: {exc}") from exc
    notifications = root.find(f".//{{{OUTBOUND}}}notifications")
    if notifications is None:
        raise WebhookRejected("the SOAP body holds no notifications element")
    organization = (notifications.findtext(f"{{{OUTBOUND}}}OrganizationId") or "").strip()
    changes: list[Change] = []
    for note in notifications.findall(f"{{{OUTBOUND}}}Notification"):
        note_id = (note.findtext(f"{{{OUTBOUND}}}Id") or "").strip()
        sobject = note.find(f"{{{OUTBOUND}}}sObject")
        if not note_id or sobject is None:
            raise WebhookRejected("a notification has no Id or no sObject")
        type_name = sobject.get(f"{{{XSI}}}type", "").rpartition(":")[2]
        record_id = (sobject.findtext(f"{{{SOBJECT}}}Id") or "").strip()
        if not type_name or not record_id:
            raise WebhookRejected(f"notification {note_id} names no record type or Id")
        changes.append(Change(note_id, type_name, record_id))
    return OutboundMessage(organization, changes)


def soap_fault(message: str) -> str:
    """A SOAP fault: Salesforce keeps the message and delivers it again later."""
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:Server</faultcode><faultstring>{text}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


# --- applying a push -------------------------------------------------------------------------


def handle_push(
    engine: Engine,
    *,
    connection: CrmConnection,
    connector: Connector,
    changes: Sequence[Change],
    now: Callable[[], datetime],
) -> Applied:
    """Re-read the records of the changes not received before and apply them, with their
    receipts, in one transaction; returns what was applied (nothing for redeliveries)."""
    started = now()
    calls_before = connector.calls
    with engine.connect() as db:
        target = Target(
            connection.workspace_id,
            connection.id,
            connection.kind,
            connector.objects,
            connections.mappings(db, connection_id=connection.id),
        )
        seen = _received(db, connection.id, [c.receipt_id for c in changes])
    fresh = [c for c in changes if c.receipt_id not in seen]
    if not fresh:
        return Applied()
    wanted: dict[str, set[str]] = defaultdict(set)
    for change in fresh:
        if target.kind_of(change.object) is not None:
            wanted[change.object].add(change.record_id)
    fetched: list[Record] = []
    for obj, ids in wanted.items():
        fetched.extend(connector.fetch(obj, sorted(ids)))
    with engine.connect() as db:
        records, forced = complete(db, target, fetched, connector.fetch)
    # A push is applied even when the record's modification time was seen: association
    # changes do not move it.
    forced |= {(r.object, r.id) for r in fetched}
    moment = now()
    with engine.begin() as db:
        r = t.crm_webhook_receipts
        db.execute(r.delete().where(r.c.received_at < moment - RECEIPTS_KEPT))
        late = _received(db, connection.id, [c.receipt_id for c in fresh])
        receipts = {c.receipt_id for c in fresh} - late
        if receipts:
            db.execute(
                r.insert(),
                [
                    {"connection_id": connection.id, "receipt_id": rid[:128], "received_at": moment}
                    for rid in sorted(receipts)
                ],
            )
        applied = apply_records(db, target, records, now=moment, forced=forced, cause="crm webhook")
        record_push(
            db,
            target=target,
            applied=applied,
            started=started,
            finished=now(),
            api_calls=connector.calls - calls_before,
        )
    return applied


def _received(db: Connection, connection_id: int, ids: Sequence[str]) -> set[str]:
    r = t.crm_webhook_receipts
    if not ids:
        return set()
    return set(
        db.scalars(
            sa.select(r.c.receipt_id).where(
                r.c.connection_id == connection_id, r.c.receipt_id.in_([i[:128] for i in ids])
            )
        )
    )
