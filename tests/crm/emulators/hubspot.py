"""A HubSpot emulator: CRM v3 objects (list, search, batch read and update), v4
associations, communication preferences, rate limits, and signed webhooks (v3).

Shapes follow HubSpot's public API: properties come back as strings, dates as ISO
strings, searches filter and sort on any property (dates compared in epoch milliseconds)
and refuse to page past `search_cap` results (10,000 in HubSpot; configurable here to
keep tests fast). Requests past `burst` in a `window` of seconds get 429 with Retry-After.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import math
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.crm.emulators.common import Failures, FakeClock, Stamps, Window, ms_to_datetime

MODIFIED = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
DATE_PROPERTIES = {"lastmodifieddate", "hs_lastmodifieddate", "createdate", "closedate"}


def iso(ms: int) -> str:
    return ms_to_datetime(ms).isoformat(timespec="milliseconds") + "Z"


class HubSpot:
    """The emulated portal: its records, and the FastAPI app that serves them."""

    def __init__(
        self,
        *,
        token: str = "pat-na1-test-token",
        search_cap: int = 10_000,
        burst: int | None = None,
        window: float = 10.0,
        clock: FakeClock | None = None,
        comm_prefs_path: str = "/communication-preferences/v4",
    ) -> None:
        self.token = token
        self.url = ""  # set once served
        self.search_cap = search_cap
        self.rate = Window(burst, window, clock)
        self.window = window
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in MODIFIED}
        # Per object, (modified ms, id) in order: the index behind searches on modification.
        self._by_modified: dict[str, list[tuple[int, int]] | None] = dict.fromkeys(MODIFIED)
        self.links: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.unsubscribed: set[str] = set()
        self.failures = Failures()
        self.stamps = Stamps()
        self.calls: dict[str, int] = defaultdict(int)
        self.rate_limited = 0
        self.max_after_requested = 0
        self._ids = 100
        self._events = 1000
        self._lock = threading.RLock()
        self.app = self._build(comm_prefs_path)

    # --- the portal, from the test's side ------------------------------------------------

    def clear(self) -> None:
        """Forget every record, as a new empty portal (a served emulator reused by many
        test runs, each with a portal of its own)."""
        with self._lock:
            self.objects = {k: {} for k in MODIFIED}
            self._by_modified = dict.fromkeys(MODIFIED)
            self.links.clear()
            self.unsubscribed.clear()

    def _new_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def create(self, obj: str, at: datetime | None = None, **props: Any) -> str:
        with self._lock:
            record_id = self._new_id()
            ms = self.stamps.next(at)
            properties = {k: _text(v) for k, v in props.items()}
            properties.update(
                {"hs_object_id": record_id, "createdate": iso(ms), MODIFIED[obj]: iso(ms)}
            )
            self.objects[obj][record_id] = {
                "id": record_id,
                "properties": properties,
                "createdAt": iso(ms),
                "updatedAt": iso(ms),
                "archived": False,
                "ms": ms,
            }
            self._by_modified[obj] = None
            return record_id

    def update(self, obj: str, record_id: str, at: datetime | None = None, **props: Any) -> None:
        with self._lock:
            record = self.objects[obj][record_id]
            ms = self.stamps.next(at)
            record["properties"].update({k: _text(v) for k, v in props.items()})
            record["properties"][MODIFIED[obj]] = iso(ms)
            record["updatedAt"] = iso(ms)
            record["ms"] = ms
            self._by_modified[obj] = None

    def company(self, domain: str, name: str = "", **props: Any) -> str:
        return self.create("companies", domain=domain, name=name or domain, **props)

    def contact(self, email: str, *, company: str | None = None, **props: Any) -> str:
        if company is not None:
            props["associatedcompanyid"] = company
        contact_id = self.create("contacts", email=email, **props)
        if company is not None:
            self.associate("contacts", contact_id, "companies", company)
        return contact_id

    def deal(
        self, name: str, stage: str, *, company: str, contacts: tuple[str, ...] = (), **props: Any
    ) -> str:
        closed = stage in ("closedwon", "closedlost")
        deal_id = self.create(
            "deals",
            dealname=name,
            dealstage=stage,
            hs_is_closed=closed,
            hs_is_closed_won=stage == "closedwon",
            **props,
        )
        self.associate("deals", deal_id, "companies", company)
        for contact in contacts:
            self.associate("deals", deal_id, "contacts", contact)
        return deal_id

    def associate(self, source: str, source_id: str, target: str, target_id: str) -> None:
        """Associations do not move a record's modification date (as in HubSpot)."""
        with self._lock:
            if target_id not in self.links[(source, target)][source_id]:
                self.links[(source, target)][source_id].append(target_id)
            if source_id not in self.links[(target, source)][target_id]:
                self.links[(target, source)][target_id].append(source_id)

    def prop(self, obj: str, record_id: str, name: str) -> Any:
        return self.objects[obj][record_id]["properties"].get(name)

    # --- webhooks ------------------------------------------------------------------------

    def event(
        self, obj: str, record_id: str, kind: str = "propertyChange", **extra: Any
    ) -> dict[str, Any]:
        self._events += 1
        singular = {"contacts": "contact", "companies": "company", "deals": "deal"}[obj]
        return {
            "eventId": self._events,
            "subscriptionId": 4242,
            "portalId": 62515,
            "appId": 1160452,
            "occurredAt": self.stamps.next(),
            "subscriptionType": f"{singular}.{kind}",
            "attemptNumber": 0,
            "objectId": int(record_id),
            "changeSource": "CRM_UI",
            **extra,
        }

    def send_webhook(
        self,
        url: str,
        events: list[dict[str, Any]],
        *,
        secret: str,
        timestamp_ms: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        body = json.dumps(events).encode()
        timestamp = str(timestamp_ms if timestamp_ms is not None else self.stamps.next())
        source = b"POST" + url.encode() + body + timestamp.encode()
        signed = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest())
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature or signed.decode(),
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature-Version": "v3",
        }
        return httpx.post(url, content=body, headers=headers, timeout=30)

    # --- the API -------------------------------------------------------------------------

    def _build(self, comm_prefs_path: str) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            self.calls[f"{request.method} {request.url.path}"] += 1
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _error(
                    401, "Authentication credentials not found.", "INVALID_AUTHENTICATION"
                )
            admitted, remaining, wait = self.rate.admit()
            if not admitted:
                self.rate_limited += 1
                response = _error(
                    429, "You have reached your ten_secondly_rolling limit.", "RATE_LIMIT"
                )
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
            injected = self.failures.take(request.method, request.url.path)
            if injected is not None:
                return JSONResponse(
                    injected.body or {"status": "error"}, status_code=injected.status
                )
            response = await call_next(request)
            # As in HubSpot, search answers carry no rate-limit headers.
            if self.rate.limit is not None and not request.url.path.endswith("/search"):
                response.headers["X-HubSpot-RateLimit-Max"] = str(self.rate.limit)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(remaining)
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(
                    int(self.window * 1000)
                )
            return response

        @app.get("/crm/v3/objects/{obj}")
        def list_objects(
            obj: str, limit: int = 10, after: str | None = None, properties: str = ""
        ) -> Any:
            with self._lock:
                rows = sorted(self.objects[obj].values(), key=lambda r: int(r["id"]))
                if after:
                    rows = [r for r in rows if int(r["id"]) >= int(after)]
                limit = min(limit, 100)
                page, rest = rows[:limit], rows[limit:]
                body: dict[str, Any] = {"results": [_view(r, properties.split(",")) for r in page]}
                if rest:
                    body["paging"] = {
                        "next": {"after": rest[0]["id"], "link": "?after=" + rest[0]["id"]}
                    }
                return JSONResponse(body)

        @app.post("/crm/v3/objects/{obj}/search")
        async def search(obj: str, request: Request) -> Any:
            data = await request.json()
            limit = min(int(data.get("limit") or 10), 200)
            after = int(data.get("after") or 0)
            self.max_after_requested = max(self.max_after_requested, after)
            if after + limit > self.search_cap and after >= self.search_cap:
                return _error(
                    400, f"Search results are capped at {self.search_cap}", "VALIDATION_ERROR"
                )
            with self._lock:
                indexed = self._indexed_search(obj, data, after, limit)
                if indexed is not None:
                    return JSONResponse(indexed)
                rows = [
                    r
                    for r in self.objects[obj].values()
                    if _matches(r, data.get("filterGroups") or [])
                ]
                sort = (data.get("sorts") or [{"propertyName": "hs_object_id"}])[0]
                name = sort["propertyName"] if isinstance(sort, dict) else str(sort)
                reverse = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
                rows.sort(
                    key=lambda r: (_comparable(name, r["properties"].get(name)), int(r["id"])),
                    reverse=reverse,
                )
                page = rows[after : min(after + limit, self.search_cap)]
                body: dict[str, Any] = {
                    "total": len(rows),
                    "results": [_view(r, data.get("properties") or []) for r in page],
                }
                if after + limit < len(rows):
                    body["paging"] = {"next": {"after": str(after + limit)}}
                return JSONResponse(body)

        @app.post("/crm/v3/objects/{obj}/batch/read")
        async def batch_read(obj: str, request: Request) -> Any:
            data = await request.json()
            found, missing = [], []
            with self._lock:
                for item in data.get("inputs") or []:
                    record = self.objects[obj].get(str(item["id"]))
                    (found if record else missing).append(record or str(item["id"]))
                results = [_view(r, data.get("properties") or []) for r in found]
            return _batch(results, missing, obj)

        @app.post("/crm/v3/objects/{obj}/batch/update")
        async def batch_update(obj: str, request: Request) -> Any:
            data = await request.json()
            results, missing = [], []
            for item in data.get("inputs") or []:
                record_id = self._find(obj, str(item["id"]), item.get("idProperty"))
                if record_id is None:
                    missing.append(str(item["id"]))
                    continue
                self.update(obj, record_id, **(item.get("properties") or {}))
                results.append(
                    _view(self.objects[obj][record_id], list(item.get("properties") or {}))
                )
            return _batch(results, missing, obj)

        @app.post("/crm/v4/associations/{source}/{target}/batch/read")
        async def associations(source: str, target: str, request: Request) -> Any:
            data = await request.json()
            results = []
            with self._lock:
                for item in data.get("inputs") or []:
                    linked = self.links[(source, target)].get(str(item["id"])) or []
                    if linked:
                        results.append(
                            {
                                "from": {"id": str(item["id"])},
                                "to": [
                                    {
                                        "toObjectId": int(t),
                                        "associationTypes": [
                                            {
                                                "category": "HUBSPOT_DEFINED",
                                                "typeId": 3,
                                                "label": None,
                                            }
                                        ],
                                    }
                                    for t in linked
                                ],
                            }
                        )
            return {
                "status": "COMPLETE",
                "results": results,
                "startedAt": iso(0),
                "completedAt": iso(0),
            }

        @app.post(f"{comm_prefs_path.rstrip('/')}/statuses/batch/unsubscribe-all")
        async def unsubscribe_all(request: Request, channel: str = "") -> Any:
            if channel != "EMAIL":
                return _error(400, "channel must be EMAIL", "VALIDATION_ERROR")
            data = await request.json()
            results = []
            for email in data.get("inputs") or []:
                address = str(email).lower()
                self.unsubscribed.add(address)
                contact = self._find("contacts", address, "email")
                if contact is not None:
                    self.update("contacts", contact, hs_email_optout=True)
                results.append(
                    {
                        "subscriberIdString": address,
                        "statuses": [{"channel": "EMAIL", "status": "NOT_SUBSCRIBED"}],
                    }
                )
            return {"status": "COMPLETE", "results": results}

        return app

    def _indexed_search(
        self, obj: str, data: dict[str, Any], after: int, limit: int
    ) -> dict[str, Any] | None:
        """`modified >= x` (or `> x`) sorted by modification: answered from an index, as a
        real search engine would, so 100,000-record benchmarks measure optout."""
        groups = data.get("filterGroups") or []
        sorts = data.get("sorts") or []
        name = MODIFIED[obj]
        if len(groups) != 1 or len(sorts) != 1 or sorts[0].get("propertyName") != name:
            return None
        filters = groups[0].get("filters") or []
        if sorts[0].get("direction") == "DESCENDING" or len(filters) != 1:
            return None
        [flt] = filters
        if flt.get("propertyName") != name or flt.get("operator") not in ("GTE", "GT"):
            return None
        if self._by_modified[obj] is None:
            self._by_modified[obj] = sorted(
                (r["ms"], int(r["id"])) for r in self.objects[obj].values()
            )
        index = self._by_modified[obj] or []
        bound = int(flt["value"]) + (0 if flt["operator"] == "GTE" else 1)
        start = bisect.bisect_left(index, (bound, -1))
        total = len(index) - start
        chosen = index[start + after : start + min(after + limit, self.search_cap)]
        properties = data.get("properties") or []
        body: dict[str, Any] = {
            "total": total,
            "results": [_view(self.objects[obj][str(i)], properties) for _, i in chosen],
        }
        if after + limit < total:
            body["paging"] = {"next": {"after": str(after + limit)}}
        return body

    def _find(self, obj: str, key: str, id_property: str | None) -> str | None:
        with self._lock:
            if not id_property or id_property == "hs_object_id":
                return key if key in self.objects[obj] else None
            for record_id, record in self.objects[obj].items():
                if str(record["properties"].get(id_property) or "").lower() == key.lower():
                    return record_id
            return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds") + "Z"
    return str(value)


def _view(record: dict[str, Any], properties: list[str]) -> dict[str, Any]:
    wanted = [p for p in properties if p] or ["email", "firstname", "lastname", "createdate"]
    props = {p: record["properties"].get(p) for p in wanted}
    props["hs_object_id"] = record["id"]
    return {
        "id": record["id"],
        "properties": props,
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "archived": False,
    }


def _batch(results: list[Any], missing: list[str], obj: str) -> Any:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if not missing:
        return JSONResponse(body)
    body["numErrors"] = 1
    body["errors"] = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {obj} objects, they may be deleted or not exist.",
            "context": {"ids": missing},
        }
    ]
    return JSONResponse(body, status_code=207)


def _comparable(name: str, value: Any) -> Any:
    if value is None:
        return (0, 0)
    if name in DATE_PROPERTIES and not str(value).isdigit():
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
        return (1, int((moment - datetime(1970, 1, 1)).total_seconds() * 1000))
    try:
        return (1, float(value))
    except ValueError:
        return (2, str(value).lower())


def _matches(record: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
    if not groups:
        return True
    return any(all(_holds(record, f) for f in group.get("filters") or []) for group in groups)


def _holds(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    name, op = flt["propertyName"], flt["operator"]
    value = record["properties"].get(name)
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if value is None:
        return False
    have = _comparable(name, value)
    if op == "IN":
        return any(have == _comparable(name, v) for v in flt.get("values") or [])
    want = _comparable(name, flt.get("value"))
    return {
        "EQ": have == want,
        "NEQ": have != want,
        "GT": have > want,
        "GTE": have >= want,
        "LT": have < want,
        "LTE": have <= want,
    }[op]


def _error(status: int, message: str, category: str) -> JSONResponse:
    body = {"status": "error", "message": message, "category": category, "correlationId": "emu"}
    if category == "RATE_LIMIT":
        body = {**body, "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
    return JSONResponse(body, status_code=status)
