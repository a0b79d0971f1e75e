"""A Salesforce emulator: OAuth 2.0 token endpoint (JWT bearer and client credentials),
REST query / queryAll with query locators, sObject PATCH, composite sObject collections,
`Sforce-Limit-Info` with a daily allowance, expiring sessions, and Outbound Messages.

Shapes follow Salesforce's REST API, and every request and answer is checked against
its documented shapes (tests/crm/schemas/salesforce.py): query results carry
`totalSize`, `done`, `nextRecordsUrl` and records with `attributes`, in pages whose size
varies around the batch size asked for (Salesforce treats it as a hint); errors are lists
of `{"message", "errorCode"}`; an expired session answers 401 `INVALID_SESSION_ID`. A JWT
bearer assertion's audience must be https://login.salesforce.com (a production org),
https://test.salesforce.com (a sandbox) or one of the org's Experience Cloud sites, never
the address the token is asked at.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import defaultdict
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.crm.emulators import soql
from tests.crm.emulators.common import Failures, FakeClock, Stamps, ms_to_datetime
from tests.crm.emulators.conformance import Conformance
from tests.crm.schemas import salesforce as schema
from tests.crm.schemas.shapes import check

PREFIX = {
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "User": "005",
}


def stamp(ms: int) -> str:
    return ms_to_datetime(ms).isoformat(timespec="milliseconds") + "+0000"


class Salesforce:
    def __init__(
        self,
        *,
        client_id: str = "3MVG9-test-client",
        client_secret: str = "test-client-secret",
        username: str = "integration@acme.example",
        public_key_pem: bytes | None = None,
        api_limit: int = 100_000,
        token_ttl: float | None = None,
        clock: FakeClock | None = None,
        default_batch: int = 2000,
        organization_id: str = "00D000000000001AAA",
        sandbox: bool = False,
        sites: tuple[str, ...] = (),
        conformance: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.public_key_pem = public_key_pem
        self.api_limit = api_limit
        self.api_used = 0
        self.token_ttl = token_ttl
        self.clock = clock
        self.default_batch = default_batch
        self.organization_id = organization_id
        self.sandbox = sandbox
        self.sites = sites  # Experience Cloud site URLs, also valid JWT audiences
        self.audiences: list[str] = []  # the `aud` of every JWT assertion received
        self.conformance = Conformance("Salesforce", enabled=conformance)
        self.base_url = ""  # set once served: the instance_url of tokens
        self.url = ""
        self.records: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.invalid_sessions = 0
        self.failures = Failures()
        self.fail_records: dict[str, int] = {}  # record id -> failures left in composite writes
        self.composite_requests: list[list[dict[str, Any]]] = []
        self.stamps = Stamps()
        self.calls: dict[str, int] = defaultdict(int)
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._batch_sizes: dict[str, int] = {}
        self._ids = 0
        self._notes = 0
        self._lock = threading.RLock()
        self.app = self._build()

    # --- the org, from the test's side ---------------------------------------------------

    def create(self, obj: str, at: datetime | None = None, **fields: Any) -> str:
        with self._lock:
            self._ids += 1
            record_id = f"{PREFIX[obj]}{self._ids:012d}AAA"
            ms = self.stamps.next(at)
            self.records[obj][record_id] = {
                "Id": record_id,
                "CreatedDate": stamp(ms),
                "SystemModstamp": stamp(ms),
                "IsDeleted": False,
                **fields,
            }
            return record_id

    def update(self, obj: str, record_id: str, at: datetime | None = None, **fields: Any) -> None:
        with self._lock:
            record = self.records[obj][record_id]
            record.update(fields)
            record["SystemModstamp"] = stamp(self.stamps.next(at))

    def delete(self, obj: str, record_id: str) -> None:
        self.update(obj, record_id, IsDeleted=True)

    def expire_sessions(self) -> None:
        with self._lock:
            self.tokens.clear()

    # --- outbound messages ---------------------------------------------------------------

    def outbound_message(
        self, items: list[tuple[str, str]], note_ids: list[str] | None = None
    ) -> bytes:
        """A SOAP notifications() call for the records, with their current fields."""
        notes = []
        for n, (obj, record_id) in enumerate(items):
            if note_ids is not None:
                note_id = note_ids[n]
            else:
                self._notes += 1
                note_id = f"04l{self._notes:012d}AAA"
            fields = "".join(
                f"<sf:{k}>{_xml(v)}</sf:{k}>"
                for k, v in self.records[obj][record_id].items()
                if v is not None and k != "IsDeleted"
            )
            notes.append(
                f"<Notification><Id>{note_id}</Id>"
                f'<sObject xsi:type="sf:{obj}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                f"{fields}</sObject></Notification>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
            f"<OrganizationId>{self.organization_id}</OrganizationId>"
            "<ActionId>04k000000000001AAA</ActionId>"
            '<SessionId xsi:nil="true"/>'
            f"<EnterpriseUrl>{self.base_url}/services/Soap/c/60.0/00D</EnterpriseUrl>"
            f"<PartnerUrl>{self.base_url}/services/Soap/u/60.0/00D</PartnerUrl>"
            f"{''.join(notes)}</notifications></soapenv:Body></soapenv:Envelope>"
        ).encode()

    def send_outbound(self, url: str, body: bytes) -> httpx.Response:
        return httpx.post(
            url,
            content=body,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            timeout=30,
        )

    # --- the API -------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock() if self.clock is not None else 0.0

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/services/oauth2/token")
        async def token(request: Request) -> Any:
            self.calls["token"] += 1
            form = {
                k: v[0]
                for k, v in parse_qs(
                    (await request.body()).decode(), keep_blank_values=True
                ).items()
            }
            grant = form.get("grant_type")
            expected = schema.TOKEN_FORMS.get(str(grant))
            if expected is not None and set(form) != expected:
                self.conformance.record(
                    "POST /services/oauth2/token",
                    [f"the {grant} form has {sorted(form)}, not {sorted(expected)}"],
                )
            if grant == "client_credentials":
                ok = (
                    form.get("client_id") == self.client_id
                    and form.get("client_secret") == self.client_secret
                )
            elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                ok = self._jwt_ok(form.get("assertion", ""))
            else:
                return JSONResponse(
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "grant type not supported",
                    },
                    status_code=400,
                )
            if not ok:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "authentication failure"},
                    status_code=400,
                )
            with self._lock:
                issued = secrets.token_urlsafe(24)
                self.tokens[issued] = self._now()
                self.tokens_issued += 1
            return {
                "access_token": issued,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/00D/005",
                "token_type": "Bearer",
                "issued_at": "1700000000000",
                "signature": "emulated",
            }

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            path = request.url.path
            if not path.startswith("/services/data/"):
                return await call_next(request)
            self.calls[
                f"{request.method} {path.rsplit('/', 1)[0] if '/query/' in path else path}"
            ] += 1
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            with self._lock:
                issued = self.tokens.get(token)
                expired = issued is None or (
                    self.token_ttl is not None and self._now() - issued > self.token_ttl
                )
                if expired:
                    self.invalid_sessions += 1
                    return JSONResponse(
                        [
                            {
                                "message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID",
                            }
                        ],
                        status_code=401,
                    )
                self.api_used += 1
                usage = f"api-usage={self.api_used}/{self.api_limit}"
            if self.api_used > self.api_limit:
                response: Response = JSONResponse(
                    [
                        {
                            "message": "TotalRequests Limit exceeded.",
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                        }
                    ],
                    status_code=403,
                )
            elif (injected := self.failures.take(request.method, path)) is not None:
                response = JSONResponse(
                    injected.body or [{"message": "injected", "errorCode": "UNKNOWN_EXCEPTION"}],
                    status_code=injected.status,
                )
            else:
                response = await call_next(request)
            response.headers["Sforce-Limit-Info"] = usage
            return response

        @app.middleware("http")
        async def check(request: Request, call_next: Any) -> Response:
            """Hold every request and answer to the documented shapes (added last, so it
            sees the gate's answers too)."""
            path = request.url.path
            name = f"{request.method} {path}"
            route = next(
                (r for r in schema.ROUTES if r.method == request.method and r.pattern.match(path)),
                None,
            )
            if route is None:
                self.conformance.record(name, ["no such endpoint in Salesforce's REST API"])
                return await call_next(request)
            if route.request is not None:
                self.conformance.check_json(name, await request.body(), route.request, "request")
            if path.startswith("/services/data/"):
                options = request.headers.get("Sforce-Query-Options", "")
                if "batchSize=" in options:
                    size = options.split("batchSize=")[1].split(",")[0]
                    if not size.isdigit() or int(size) not in schema.QUERY_BATCH_SIZES:
                        self.conformance.record(
                            name, [f"a query batch size of {size}: Salesforce takes 200 to 2000"]
                        )
            try:
                response = await call_next(request)
            except Exception as exc:
                self.conformance.record(name, [f"the emulator failed: {exc!r}"])
                raise
            answers = dict(route.answers)
            if path.startswith("/services/data/"):
                answers.update(dict.fromkeys((400, 401, 403, 404, 500, 503), schema.ERRORS))
            return await self.conformance.answer(request, response, answers, also=_next_records_url)

        @app.get("/services/data/{version}/query")
        def query(version: str, q: str, request: Request) -> Any:
            return self._query(version, q, request, all_rows=False)

        @app.get("/services/data/{version}/queryAll")
        def query_all(version: str, q: str, request: Request) -> Any:
            return self._query(version, q, request, all_rows=True)

        @app.get("/services/data/{version}/query/{locator}")
        def query_more(version: str, locator: str) -> Any:
            cursor, _, offset = locator.rpartition("-")
            rows = self._cursors.get(cursor)
            if rows is None:
                return JSONResponse(
                    [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}],
                    status_code=400,
                )
            return self._page(version, cursor, rows, int(offset))

        @app.patch("/services/data/{version}/sobjects/{obj}/{record_id}")
        async def patch(version: str, obj: str, record_id: str, request: Request) -> Any:
            if record_id not in self.records[obj]:
                return JSONResponse(
                    [{"message": "not found", "errorCode": "NOT_FOUND"}], status_code=404
                )
            self.update(obj, record_id, **(await request.json()))
            return Response(status_code=204)

        @app.patch("/services/data/{version}/composite/sobjects")
        async def composite(version: str, request: Request) -> Any:
            data = await request.json()
            records = data.get("records") or []
            if len(records) > 200:
                return JSONResponse(
                    [{"message": "more than 200 records", "errorCode": "EXCEEDED_ID_LIMIT"}],
                    status_code=400,
                )
            self.composite_requests.append(records)
            results: list[dict[str, Any]] = []
            for item in records:
                record_id = item.get("id", "")
                obj = item.get("attributes", {}).get("type", "")
                left = self.fail_records.get(record_id, 0)
                if left > 0:
                    self.fail_records[record_id] = left - 1
                    results.append(
                        _failure(
                            record_id,
                            "UNABLE_TO_LOCK_ROW",
                            "unable to obtain exclusive access to this record",
                        )
                    )
                elif record_id not in self.records[obj]:
                    results.append(_failure(record_id, "ENTITY_IS_DELETED", "entity is deleted"))
                else:
                    results.append({"id": record_id, "success": True, "errors": []})
            if data.get("allOrNone") and not all(r["success"] for r in results):
                return [
                    r
                    if not r["success"]
                    else _failure(r["id"], "ALL_OR_NONE_OPERATION_ROLLED_BACK", "rolled back")
                    for r in results
                ]
            for item, result in zip(records, results, strict=True):
                if result["success"]:
                    fields = {k: v for k, v in item.items() if k not in ("attributes", "id")}
                    self.update(item["attributes"]["type"], item["id"], **fields)
            return results

        return app

    def _query(self, version: str, text: str, request: Request, *, all_rows: bool) -> Any:
        try:
            parsed = soql.parse(text)
        except soql.SoqlError as exc:
            return JSONResponse(
                [{"message": str(exc), "errorCode": "MALFORMED_QUERY"}], status_code=400
            )
        with self._lock:
            rows = [
                r
                for r in self.records[parsed.obj].values()
                if (all_rows or not r.get("IsDeleted"))
                and all(soql.holds(r, c) for c in parsed.where)
            ]
            if parsed.order:
                rows.sort(key=lambda r: tuple(soql.comparable(r.get(f)) for f in parsed.order))
            if parsed.limit is not None:
                rows = rows[: parsed.limit]
            selected = [
                {
                    "attributes": {
                        "type": parsed.obj,
                        "url": f"/services/data/{version}/sobjects/{parsed.obj}/{r['Id']}",
                    },
                    **{f: r.get(f) for f in parsed.fields if "." not in f},
                    **self._related(version, r, [f for f in parsed.fields if "." in f]),
                }
                for r in rows
            ]
            cursor = f"01g{secrets.token_hex(6)}"
            # The batch size asked for is a hint: pages are never larger than the
            # org's own (`default_batch`, which tests make small to page few records).
            batch = self.default_batch
            options = request.headers.get("Sforce-Query-Options", "")
            if "batchSize=" in options:
                batch = min(batch, int(options.split("batchSize=")[1].split(",")[0]))
            self._cursors[cursor] = selected
            self._batch_sizes[cursor] = batch
        return self._page(version, cursor, selected, 0)

    def _related(self, version: str, record: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """Relationship fields (`Owner.Email`) as Salesforce answers them: one object per
        relationship, with its `attributes` and the fields asked for, or null when the
        record has no such link. A Lead's or Contact's `Owner` is the User of `OwnerId`."""
        related: dict[str, Any] = {}
        for path in paths:
            relationship, _, name = path.partition(".")
            linked_id = record.get(f"{relationship}Id")
            linked_type = "User" if relationship == "Owner" else relationship
            linked = self.records[linked_type].get(linked_id) if linked_id else None
            if linked is None:
                related[relationship] = None
                continue
            holder = related.setdefault(
                relationship,
                {
                    "attributes": {
                        "type": linked_type,
                        "url": f"/services/data/{version}/sobjects/{linked_type}/{linked_id}",
                    }
                },
            )
            holder[name] = linked.get(name)
        return related

    def _page(self, version: str, cursor: str, rows: list[dict[str, Any]], offset: int) -> Any:
        """A page near the batch size asked for, not always of it: Salesforce takes the
        size as a hint and answers smaller or larger pages as it sees fit."""
        asked = self._batch_sizes.get(cursor, self.default_batch)
        size = max(1, asked + VARIATION[(offset // max(asked, 1)) % len(VARIATION)] * asked // 8)
        page = rows[offset : offset + size]
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": offset + size >= len(rows),
            "records": page,
        }
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor}-{offset + size}"
        return body

    def _jwt_ok(self, assertion: str) -> bool:
        try:
            header, claims, signature = assertion.split(".")
            key = serialization.load_pem_public_key(self.public_key_pem or b"")
            key.verify(
                _unb64(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            data = json.loads(_unb64(claims))
        except Exception:
            return False
        self.audiences.append(str(data.get("aud")))
        self.conformance.record(
            "POST /services/oauth2/token", [f"JWT {p}" for p in check(data, schema.JWT_CLAIMS)]
        )
        login = "https://test.salesforce.com" if self.sandbox else "https://login.salesforce.com"
        return (
            data.get("iss") == self.client_id
            and data.get("sub") == self.username
            and data.get("aud") in (login, *self.sites)
            and int(data.get("exp", 0)) > time.time()
        )


# Page sizes around the batch size, in eighths of it: smaller, larger, exact.
VARIATION = (0, -3, 1, -1, -5, 0, 2)


def _next_records_url(status: int, data: Any) -> list[str]:
    """A query page that is not the last names the next, in the documented form; the
    last names none."""
    if status != 200 or not isinstance(data, dict) or "done" not in data:
        return []
    url = data.get("nextRecordsUrl")
    if data["done"]:
        return [] if url is None else ["a last query page (done) names a nextRecordsUrl"]
    if not isinstance(url, str) or not schema.NEXT_RECORDS_URL.match(url):
        return [f"a query page that is not the last has nextRecordsUrl {url!r}"]
    return []


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _failure(record_id: str, code: str, message: str) -> dict[str, Any]:
    return {
        "id": record_id,
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": []}],
    }


def _xml(value: Any) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
