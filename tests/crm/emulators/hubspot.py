"""A HubSpot emulator: CRM v3 objects (list, search, batch read and update), v4
associations, communication preferences (v4 batch), token information, rate limits, and
signed webhooks (v3).

Shapes follow HubSpot's public API, and every request and answer is checked against its
official SDK's models (tests/crm/schemas): properties come back as strings, dates as ISO
strings, searches filter and sort on any property (dates compared in epoch milliseconds;
a sort is the object form or the property name as a string) and refuse to page past
`search_cap` results (10,000 in HubSpot; configurable here to keep tests fast). Batch
answers carry `startedAt` and `completedAt`, and 207 with an error for each input that
found nothing. Association ids are strings; a record's associations come in pages of
`association_page`, and a deal's primary company is labelled with its own type. Requests
past `burst` in a `window` of seconds get 429 with Retry-After.
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
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.crm.emulators.common import Failures, FakeClock, Stamps, Window, ms_to_datetime
from tests.crm.emulators.conformance import Conformance
from tests.crm.schemas import hubspot as schema

MODIFIED = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
DATE_PROPERTIES = {"lastmodifieddate", "hs_lastmodifieddate", "createdate", "closedate"}
# HubSpot-defined association types (HubSpot's association type reference): the
# unlabelled type of each pair, and the "Primary" one where a pair has it.
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
}
PRIMARY_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
}
# Scopes that let a token write communication preferences; without one, 403.
WRITE_SCOPES = frozenset(
    {
        "communication_preferences.write",
        "communication_preferences.read_write",
        "communication_preferences.statuses.batch.write",
    }
)
# The portal's email subscription types (id, name).
SUBSCRIPTIONS = ((1_001, "Marketing Information"), (1_002, "One to One"))
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
# What a private app's token may do here, unless a test says otherwise.
DEFAULT_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "crm.objects.owners.read",
    "communication_preferences.read_write",
    "communication_preferences.statuses.batch.read",
    "communication_preferences.statuses.batch.write",
)
OWNERS_SCOPE = "crm.objects.owners.read"


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
        association_page: int = 500,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        conformance: bool = True,
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
        self.primary: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        self.association_page = association_page
        self.scopes = scopes
        self.conformance = Conformance("HubSpot", enabled=conformance)
        self._routes = schema.routes(comm_prefs_path)
        self.unsubscribed: set[str] = set()
        self.owners: dict[str, dict[str, Any]] = {}  # the portal's users who own records
        self._owner_ids = 41629700
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
            self.primary.clear()
            self.unsubscribed.clear()
            self.owners.clear()

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
            self.associate("contacts", contact_id, "companies", company, primary=True)
        return contact_id

    def owner(self, email: str, first_name: str = "", last_name: str = "") -> str:
        """A user of the portal who can own records; their owner id (not their user id)."""
        with self._lock:
            self._owner_ids += 1
            owner_id = str(self._owner_ids)
            at = _now()
            self.owners[owner_id] = {
                "id": owner_id,
                "email": email,
                "type": "PERSON",
                "firstName": first_name,
                "lastName": last_name,
                "userId": self._owner_ids + 9_000_000,
                "userIdIncludingInactive": self._owner_ids + 9_000_000,
                "createdAt": at,
                "updatedAt": at,
                "archived": False,
                "teams": [],
            }
            return owner_id

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
        self.associate("deals", deal_id, "companies", company, primary=True)
        for contact in contacts:
            self.associate("deals", deal_id, "contacts", contact)
        return deal_id

    def associate(
        self, source: str, source_id: str, target: str, target_id: str, *, primary: bool = False
    ) -> None:
        """Associations do not move a record's modification date (as in HubSpot). A
        primary association (a deal's or a contact's company) replaces the former one."""
        with self._lock:
            if primary:  # held on the side that has one: a deal's or a contact's company
                if (source, target) in PRIMARY_TYPES and target == "companies":
                    self.primary[(source, target)][source_id] = target_id
                else:
                    self.primary[(target, source)][target_id] = source_id
            if target_id not in self.links[(source, target)][source_id]:
                self.links[(source, target)][source_id].append(target_id)
            if source_id not in self.links[(target, source)][target_id]:
                self.links[(target, source)][target_id].append(source_id)

    def is_primary(self, source: str, source_id: str, target: str, target_id: str) -> bool:
        if target == "companies":
            return self.primary[(source, target)].get(source_id) == target_id
        return self.primary[(target, source)].get(target_id) == source_id

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
        comm = comm_prefs_path.rstrip("/")

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            path = request.url.path
            self.calls[f"{request.method} {path}"] += 1
            if request.headers.get("authorization") != f"Bearer {self.token}":
                response: Response = _error(
                    401, "Authentication credentials not found.", "INVALID_AUTHENTICATION"
                )
                return await self.conformance.answer(request, response, schema.GATE_ANSWERS)
            admitted, remaining, wait = self.rate.admit()
            if not admitted:
                self.rate_limited += 1
                response = _error(
                    429, "You have reached your ten_secondly_rolling limit.", "RATE_LIMIT"
                )
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return await self.conformance.answer(request, response, schema.GATE_ANSWERS)
            injected = self.failures.take(request.method, path)
            if injected is not None:  # a test's own answer: not checked
                return JSONResponse(
                    injected.body or {"status": "error"}, status_code=injected.status
                )
            route = next(
                (r for r in self._routes if r.method == request.method and r.pattern.match(path)),
                None,
            )
            name = f"{request.method} {path}"
            if route is None:
                self.conformance.record(name, ["no such endpoint in HubSpot's API"])
            elif route.request is not None:
                self.conformance.check_json(name, await request.body(), route.request, "request")
            try:
                response = await call_next(request)
            except Exception as exc:
                self.conformance.record(name, [f"the emulator failed: {exc!r}"])
                raise
            # As in HubSpot, search answers carry no rate-limit headers.
            if self.rate.limit is not None and not path.endswith("/search"):
                response.headers["X-HubSpot-RateLimit-Max"] = str(self.rate.limit)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(remaining)
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(
                    int(self.window * 1000)
                )
            if route is None:
                return response
            return await self.conformance.answer(request, response, route.answers)

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

        @app.get("/crm/v3/owners")
        @app.get("/crm/v3/owners/")
        def list_owners(
            limit: int = 100, after: str | None = None, archived: bool = False, email: str = ""
        ) -> Any:
            """The owners API (GET /crm/v3/owners): active owners by default, at most 500
            a page, `paging.next.after` while more remain; 403 without the owners scope."""
            if OWNERS_SCOPE not in self.scopes:
                return _missing_scopes()
            with self._lock:
                rows = sorted(
                    (
                        o
                        for o in self.owners.values()
                        if o["archived"] == archived
                        and (not email or o["email"].lower() == email.lower())
                    ),
                    key=lambda o: int(o["id"]),
                )
                if after:
                    rows = [o for o in rows if int(o["id"]) >= int(after)]
                limit = min(max(limit, 1), 500)
                page, rest = rows[:limit], rows[limit:]
                body: dict[str, Any] = {"results": page}
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
            sorts = [_sort(s) for s in data.get("sorts") or []]
            with self._lock:
                indexed = self._indexed_search(obj, data, sorts, after, limit)
                if indexed is not None:
                    return JSONResponse(indexed)
                rows = [
                    r
                    for r in self.objects[obj].values()
                    if _matches(r, data.get("filterGroups") or [])
                ]
                name, direction = (sorts or [("hs_object_id", "ASCENDING")])[0]
                rows.sort(
                    key=lambda r: (_comparable(name, r["properties"].get(name)), int(r["id"])),
                    reverse=direction == "DESCENDING",
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
            started = _now()
            data = await request.json()
            found, missing = [], []
            with self._lock:
                for item in data.get("inputs") or []:
                    record = self.objects[obj].get(str(item["id"]))
                    (found if record else missing).append(record or str(item["id"]))
                results = [_view(r, data.get("properties") or []) for r in found]
            return _batch(results, missing, obj, started)

        @app.post("/crm/v3/objects/{obj}/batch/update")
        async def batch_update(obj: str, request: Request) -> Any:
            started = _now()
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
            return _batch(results, missing, obj, started)

        @app.post("/crm/v4/associations/{source}/{target}/batch/read")
        async def associations(source: str, target: str, request: Request) -> Any:
            started = _now()
            data = await request.json()
            results, errors = [], []
            with self._lock:
                for item in data.get("inputs") or []:
                    source_id = str(item["id"])
                    linked = self.links[(source, target)].get(source_id) or []
                    if not linked:
                        errors.append(_no_associations(source, source_id, target))
                        continue
                    start = int(item.get("after") or 0)
                    page = linked[start : start + self.association_page]
                    result: dict[str, Any] = {
                        "from": {"id": source_id},
                        "to": [
                            {
                                "toObjectId": target_id,
                                "associationTypes": self._types(
                                    source, source_id, target, target_id
                                ),
                            }
                            for target_id in page
                        ],
                    }
                    if start + self.association_page < len(linked):
                        after = str(start + self.association_page)
                        result["paging"] = {"next": {"after": after, "link": None}}
                    results.append(result)
            body: dict[str, Any] = {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": _now(),
            }
            if not errors:
                return JSONResponse(body)
            return JSONResponse({**body, "numErrors": len(errors), "errors": errors}, 207)

        @app.post(f"{comm}/statuses/batch/unsubscribe-all")
        async def unsubscribe_all(request: Request, channel: str = "") -> Any:
            started = _now()
            if not set(self.scopes) & WRITE_SCOPES:
                return _missing_scopes()
            if channel != "EMAIL":
                return _error(400, "channel must be EMAIL", "VALIDATION_ERROR")
            data = await request.json()
            results = []
            for email in data.get("inputs") or []:
                address = str(email).lower()
                already = address in self.unsubscribed
                self.unsubscribed.add(address)
                contact = self._find("contacts", address, "email")
                if contact is not None:
                    self.update("contacts", contact, hs_email_optout=True)
                reason = "NO_STATUS_CHANGE" if already else "UNSUBSCRIBE_FROM_ALL_OCCURRED"
                results.append(
                    {
                        "subscriberIdString": address,
                        "statuses": [
                            _status(address, "NOT_SUBSCRIBED", reason, subscription)
                            for subscription in SUBSCRIPTIONS
                        ],
                    }
                )
            return {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": _now(),
            }

        @app.post(f"{comm}/statuses/batch/write")
        async def write_statuses(request: Request) -> Any:
            """Only the statuses and subscription types the portal knows; anything else is
            refused whole, as HubSpot does."""
            started = _now()
            if not set(self.scopes) & WRITE_SCOPES:
                return _missing_scopes()
            data = await request.json()
            inputs = data.get("inputs") or []
            for item in inputs:
                if item.get("statusState") not in schema.STATUSES:
                    return _error(
                        400,
                        f"Invalid input JSON: statusState {item.get('statusState')!r} "
                        f"is not one of {sorted(schema.STATUSES)}",
                        "VALIDATION_ERROR",
                    )
                if item.get("channel") not in schema.CHANNELS:
                    return _error(400, "Invalid input JSON: channel", "VALIDATION_ERROR")
                if item.get("subscriptionId") not in dict(SUBSCRIPTIONS):
                    return _error(
                        400,
                        f"Subscription {item.get('subscriptionId')!r} does not exist",
                        "VALIDATION_ERROR",
                    )
            results = []
            for item in inputs:
                address = str(item["subscriberIdString"]).lower()
                if item["statusState"] == "NOT_SUBSCRIBED":
                    self.unsubscribed.add(address)
                subscription = (item["subscriptionId"], dict(SUBSCRIPTIONS)[item["subscriptionId"]])
                results.append(
                    _status(address, item["statusState"], "REQUESTED_CHANGE_OCCURRED", subscription)
                )
            return {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": _now(),
            }

        @app.post("/oauth/v2/private-apps/get/access-token-info")
        async def private_token_info(request: Request) -> Any:
            data = await request.json()
            if data.get("tokenKey") != self.token:
                return _error(404, "Token not found", "OBJECT_NOT_FOUND")
            return {
                "userId": 2_000_001,
                "hubId": 62515,
                "appId": 1160452,
                "scopes": list(self.scopes),
            }

        @app.get("/oauth/v1/access-tokens/{token}")
        def oauth_token_info(token: str) -> Any:
            if token != self.token:
                return _error(404, "Token not found", "OBJECT_NOT_FOUND")
            return {
                "token": token,
                "user": "ops@acme-sales.com",
                "hub_domain": "acme-sales.com",
                "scopes": list(self.scopes),
                "hub_id": 62515,
                "app_id": 1160452,
                "expires_in": 1800,
                "user_id": 2_000_001,
                "token_type": "access",
            }

        return app

    def _types(self, source: str, source_id: str, target: str, target_id: str) -> list[Any]:
        types = [
            {
                "category": "HUBSPOT_DEFINED",
                "typeId": ASSOCIATION_TYPES[(source, target)],
                "label": None,
            }
        ]
        if (source, target) in PRIMARY_TYPES and self.is_primary(
            source, source_id, target, target_id
        ):
            types.append(
                {
                    "category": "HUBSPOT_DEFINED",
                    "typeId": PRIMARY_TYPES[(source, target)],
                    "label": "Primary",
                }
            )
        return types

    def _indexed_search(
        self, obj: str, data: dict[str, Any], sorts: list[tuple[str, str]], after: int, limit: int
    ) -> dict[str, Any] | None:
        """`modified >= x` (or `> x`) sorted by modification: answered from an index, as a
        real search engine would, so 100,000-record benchmarks measure optout."""
        groups = data.get("filterGroups") or []
        name = MODIFIED[obj]
        if len(groups) != 1 or sorts != [(name, "ASCENDING")]:
            return None
        filters = groups[0].get("filters") or []
        if len(filters) != 1:
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


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _sort(sort: Any) -> tuple[str, str]:
    """(property, direction) of a sort: the object form, or a property name (ascending)."""
    if isinstance(sort, str):
        return sort, "ASCENDING"
    return str(sort["propertyName"]), str(sort.get("direction") or "ASCENDING")


def _batch(results: list[Any], missing: list[str], obj: str, started: str) -> Any:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": _now(),
    }
    if not missing:
        return JSONResponse(body)
    body["numErrors"] = 1
    body["errors"] = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {obj} objects, they may be deleted or not exist.",
            "context": {"ids": missing},
            "links": {},
            "errors": [],
        }
    ]
    return JSONResponse(body, status_code=207)


def _no_associations(source: str, source_id: str, target: str) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {SINGULAR[target]} is associated with {SINGULAR[source]} {source_id}.",
        "context": {"fromObjectId": [source_id]},
        "links": {},
        "errors": [],
    }


def _status(
    address: str, status: str, reason: str, subscription: tuple[int, str]
) -> dict[str, Any]:
    return {
        "channel": "EMAIL",
        "source": "Public API",
        "status": status,
        "subscriberIdString": address,
        "subscriptionId": subscription[0],
        "subscriptionName": subscription[1],
        "timestamp": _now(),
        "setStatusSuccessReason": reason,
    }


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


def _missing_scopes() -> JSONResponse:
    return _error(
        403,
        "This app hasn't been granted all required scopes to make this call.",
        "MISSING_SCOPES",
    )


def _error(status: int, message: str, category: str) -> JSONResponse:
    body = {"status": "error", "message": message, "category": category, "correlationId": "emu"}
    if category == "RATE_LIMIT":
        body = {**body, "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
    return JSONResponse(body, status_code=status)
