"""HubSpot: CRM v3 objects and search, v4 associations, communication preferences.

Changes are listed with the search endpoint, filtered on the modification date and sorted
by it. Paging re-anchors on every page (keyset: `modified >= last seen`, skipping the ids
already read at that instant) instead of walking `after` offsets, so the 10,000-result
cap of a search is never reached, and a record modified while we page moves to the end
instead of shifting the offsets and making us skip a neighbour. An instant holding more
records than a page is walked by `hs_object_id`. `full` uses the plain list endpoint.

Rate limits: a 10-second window for every request, a per-second one for search, a pause
when HubSpot reports its window spent, and 429 answers retried after Retry-After.
Opt-outs are written through the communication-preferences API (its date-versioned base
path is a setting), because `hs_email_optout` is read-only; any other mapped property is
written with a batch update keyed by email. `write_scope_missing` tells, before any
write-back, when the token may not write communication preferences.

A deal's company is its primary associated company (the HubSpot-defined "Primary"
association type), or its only one when none is primary.

A contact's owner (`hubspot_owner_id`, an owner id) is read as the owner's email address,
from the owners API (`/crm/v3/owners`, every page, once per connector). An owner id the
list does not hold (an owner removed since) reads as no owner; a token that may not read
owners (no `crm.objects.owners.read` scope) syncs everything else, without owners.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from optout.config import CrmTimeouts
from optout.crm.http import Http, timeout_options
from optout.crm.mapping import OBJECTS, as_datetime
from optout.crm.protocol import Page, Record, Ref
from optout.crm.ratelimit import Clock, Sleep, WindowLimiter
from optout.errors import ConnectorError, InvalidInput

MODIFIED = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
EXTRA = {"contacts": ("associatedcompanyid",), "companies": (), "deals": ()}
OPT_OUT_PROPERTY = "hs_email_optout"
OWNER_PROPERTY = "hubspot_owner_id"
log = logging.getLogger("optout.crm.hubspot")
# The scopes that let a token write communication preferences (opt-outs).
WRITE_SCOPES = frozenset(
    {
        "communication_preferences.write",
        "communication_preferences.read_write",
        "communication_preferences.statuses.batch.write",
    }
)
# HubSpot-defined association type of a deal's primary company.
PRIMARY_COMPANY_TYPE = 5
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class HubSpotSettings:
    search_page_size: int = 200
    list_page_size: int = 100
    batch_size: int = 100
    requests_per_10s: int | None = 100
    search_per_second: int | None = 4
    comm_prefs_path: str = "/communication-preferences/v4"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HubSpotSettings:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class HubSpotConnector:
    kind = "hubspot"
    objects = OBJECTS["hubspot"]

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        fields: Mapping[str, Sequence[str]],
        settings: Mapping[str, Any] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        allowed_hosts: frozenset[str] = frozenset(),
        max_retries: int = 6,
        timeouts: CrmTimeouts | None = None,
    ) -> None:
        self.settings = HubSpotSettings.from_dict(settings or {})
        self._token = token
        self._fields = fields
        self._owners: dict[str, str] | None = None  # owner id -> email, read once
        self._limiter = WindowLimiter(
            self.settings.requests_per_10s, 10.0, clock=clock, sleep=sleep
        )
        self._search_limiter = WindowLimiter(
            self.settings.search_per_second, 1.0, clock=clock, sleep=sleep
        )
        self._http = Http(
            base_url,
            name="HubSpot",
            headers=lambda: {"Authorization": f"Bearer {token}"},
            clock=clock,
            sleep=sleep,
            after=self._observe,
            allowed_hosts=allowed_hosts,
            max_retries=max_retries,
            **timeout_options(timeouts),
        )

    @property
    def calls(self) -> int:
        return self._http.calls

    @property
    def waited(self) -> float:
        return self._limiter.waited + self._search_limiter.waited

    def close(self) -> None:
        self._http.close()

    # --- reading ------------------------------------------------------------------------

    def changes(self, obj: str, *, since: datetime | None, full: bool = False) -> Iterator[Page]:
        self._check_object(obj)
        if full:
            yield from self._list_all(obj)
            return
        size = self.settings.search_page_size
        anchor = epoch_ms(since) if since is not None else 0
        operator = "GTE"
        seen: set[str] = set()  # ids read whose modification instant is `anchor`
        while True:
            items = self._search(obj, [_filter(MODIFIED[obj], operator, anchor)], MODIFIED[obj])
            instants = [self._modified_ms(obj, item) for item in items]
            if len(items) == size and all(ms == anchor for ms in instants):
                # One instant fills a whole page (a bulk update): walk it by id.
                yield from self._walk_instant(obj, anchor, seen)
                operator, seen = "GT", set()
                continue
            fresh = [item for item in items if str(item["id"]) not in seen]
            if fresh:
                yield self._page(obj, fresh, watermark=True)
            if len(items) < size:
                return
            latest = max(instants)
            at_latest = {
                str(i["id"]) for i, ms in zip(items, instants, strict=True) if ms == latest
            }
            seen = seen | at_latest if latest == anchor else at_latest
            anchor, operator = latest, "GTE"

    def _walk_instant(self, obj: str, instant: int, seen: set[str]) -> Iterator[Page]:
        size = self.settings.search_page_size
        cursor = 0
        while True:
            items = self._search(
                obj,
                [
                    _filter(MODIFIED[obj], "EQ", instant),
                    _filter("hs_object_id", "GT", cursor),
                ],
                "hs_object_id",
            )
            fresh = [item for item in items if str(item["id"]) not in seen]
            if fresh:
                yield self._page(obj, fresh, watermark=True)
            if len(items) < size:
                return
            cursor = max(int(item["id"]) for item in items)

    def _list_all(self, obj: str) -> Iterator[Page]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {
                "limit": self.settings.list_page_size,
                "properties": ",".join(self._properties(obj)),
                "archived": "false",
            }
            if after:
                params["after"] = after
            data = self._http.json(
                "GET", f"/crm/v3/objects/{obj}", params=params, limiter=self._limiter
            )
            items = data.get("results") or []
            if items:
                yield self._page(obj, items, watermark=False)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _search(self, obj: str, filters: list[dict[str, str]], sort: str) -> list[Any]:
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self._properties(obj),
            "limit": self.settings.search_page_size,
        }
        self._search_limiter.acquire()
        data = self._http.json(
            "POST", f"/crm/v3/objects/{obj}/search", json=body, limiter=self._limiter
        )
        return list(data.get("results") or [])

    def fetch(self, obj: str, ids: Sequence[str]) -> list[Record]:
        self._check_object(obj)
        records: list[Record] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), self.settings.batch_size):
            data = self._http.json(
                "POST",
                f"/crm/v3/objects/{obj}/batch/read",
                json={
                    "properties": self._properties(obj),
                    "propertiesWithHistory": [],
                    "inputs": [{"id": i} for i in chunk],
                },
                limiter=self._limiter,
            )
            items = data.get("results") or []
            if items:
                records.extend(self._page(obj, items, watermark=False).records)
        return records

    def _page(self, obj: str, items: Sequence[Any], *, watermark: bool) -> Page:
        records = [self._record(obj, item) for item in items]
        if obj == "deals":
            records = self._with_deal_links(records)
        mark = max(r.modified_at for r in records) if watermark and records else None
        return Page(records, mark)

    def _record(self, obj: str, item: Mapping[str, Any]) -> Record:
        props = item.get("properties") or {}
        modified = as_datetime(props.get(MODIFIED[obj])) or as_datetime(item.get("updatedAt"))
        if modified is None:
            raise ConnectorError(f"HubSpot {obj} {item.get('id')} has no modification date")
        company: Ref | None = None
        if obj == "contacts" and props.get("associatedcompanyid"):
            company = ("companies", str(props["associatedcompanyid"]))
        values = {name: props.get(name) for name in self._fields.get(obj, ())}
        if obj == "contacts" and values.get(OWNER_PROPERTY):
            values[OWNER_PROPERTY] = self.owner_emails().get(str(values[OWNER_PROPERTY]).strip())
        return Record(obj, str(item["id"]), modified, values, company=company)

    def owner_emails(self) -> dict[str, str]:
        """Every owner's email address by owner id (the active owners), read once."""
        if self._owners is not None:
            return self._owners
        owners: dict[str, str] = {}
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, "archived": "false"}
            if after:
                params["after"] = after
            response = self._http.request(
                "GET", "/crm/v3/owners", params=params, limiter=self._limiter, accept=(200, 403)
            )
            if response.status_code == 403:  # the token may not read owners
                log.warning("HubSpot refused to list owners: contacts are synced without one")
                break
            data = self._http.parse(response)
            for owner in data.get("results") or []:
                if owner.get("id") is not None and owner.get("email"):
                    owners[str(owner["id"])] = str(owner["email"]).strip().lower()
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        self._owners = owners
        return owners

    def _with_deal_links(self, deals: list[Record]) -> list[Record]:
        """A deal's company (its primary one) and people come from the v4 associations,
        one call each per page of deals."""
        ids = [d.id for d in deals]
        companies = self._associations("deals", "companies", ids)
        contacts = self._associations("deals", "contacts", ids)
        return [
            replace(
                d,
                company=_primary_company(companies.get(d.id, [])),
                contacts=tuple(("contacts", c.id) for c in contacts.get(d.id, [])),
            )
            for d in deals
        ]

    def _associations(
        self, source: str, target: str, ids: Sequence[str]
    ) -> dict[str, list[Associated]]:
        """Each record's associated records, every page of them. A record with none is
        named in the answer's errors (207), and left out here."""
        linked: dict[str, list[Associated]] = {}
        pending = [{"id": i} for i in ids]
        while pending:
            batch, pending = (
                pending[: self.settings.batch_size],
                pending[self.settings.batch_size :],
            )
            data = self._http.json(
                "POST",
                f"/crm/v4/associations/{source}/{target}/batch/read",
                json={"inputs": batch},
                limiter=self._limiter,
            )
            for result in data.get("results") or []:
                source_id = str(result["from"]["id"])
                targets = linked.setdefault(source_id, [])
                targets.extend(_associated(t) for t in result.get("to") or [])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:  # more associations of this record than one answer holds
                    pending.append({"id": source_id, "after": after})
        return linked

    # --- access -------------------------------------------------------------------------

    def scopes(self) -> frozenset[str]:
        """The scopes HubSpot granted the token: a private app's (`pat-` tokens) or an
        OAuth access token's."""
        if self._token.startswith("pat-"):
            data = self._http.json(
                "POST",
                "/oauth/v2/private-apps/get/access-token-info",
                json={"tokenKey": self._token},
                limiter=self._limiter,
            )
        else:
            data = self._http.json(
                "GET", f"/oauth/v1/access-tokens/{self._token}", limiter=self._limiter
            )
        return frozenset(str(scope) for scope in data.get("scopes") or [])

    # --- writing ------------------------------------------------------------------------

    def write(self, obj: str, crm_field: str, emails: Sequence[str], value: Any) -> dict[str, str]:
        if obj != "contacts":
            raise InvalidInput(f"HubSpot write-backs go to contacts, not {obj}")
        failed: dict[str, str] = {}
        for chunk in _chunks(list(emails), self.settings.batch_size):
            if crm_field == OPT_OUT_PROPERTY:
                failed.update(self._unsubscribe_all(chunk, value))
            else:
                failed.update(self._update_by_email(chunk, crm_field, value))
        return failed

    def _unsubscribe_all(self, emails: list[str], value: Any) -> dict[str, str]:
        if value is not True:
            raise InvalidInput("HubSpot opt-outs can only be set, never cleared, through optout")
        path = f"{self.settings.comm_prefs_path.rstrip('/')}/statuses/batch/unsubscribe-all"
        response = self._http.request(
            "POST",
            path,
            params={"channel": "EMAIL"},
            json={"inputs": emails},
            limiter=self._limiter,
        )
        return _batch_errors(self._http, response, emails, ignore=())

    def _update_by_email(self, emails: list[str], crm_field: str, value: Any) -> dict[str, str]:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        response = self._http.request(
            "POST",
            "/crm/v3/objects/contacts/batch/update",
            json={
                "inputs": [
                    {"id": e, "idProperty": "email", "properties": {crm_field: text}}
                    for e in emails
                ]
            },
            limiter=self._limiter,
        )
        return _batch_errors(self._http, response, emails, ignore=("OBJECT_NOT_FOUND",))

    # --- helpers ------------------------------------------------------------------------

    def _properties(self, obj: str) -> list[str]:
        names = [*self._fields.get(obj, ()), MODIFIED[obj], *EXTRA[obj]]
        return list(dict.fromkeys(names))

    def _modified_ms(self, obj: str, item: Mapping[str, Any]) -> int:
        props = item.get("properties") or {}
        moment = as_datetime(props.get(MODIFIED[obj])) or as_datetime(item.get("updatedAt"))
        return epoch_ms(moment) if moment is not None else 0

    def _observe(self, response: httpx.Response) -> None:
        """HubSpot reports its 10-second window on every answer: when it is spent, wait."""
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if remaining is not None and remaining.strip() == "0" and interval:
            with contextlib.suppress(ValueError):
                self._limiter.pause(int(interval) / 1000)

    def _check_object(self, obj: str) -> None:
        if obj not in MODIFIED:
            raise InvalidInput(f"HubSpot object {obj!r} is not synced")


@dataclass(frozen=True)
class Associated:
    id: str
    primary: bool  # a HubSpot-defined primary association (a deal's primary company)


def _associated(item: Mapping[str, Any]) -> Associated:
    types = item.get("associationTypes") or []
    primary = any(
        t.get("category") == "HUBSPOT_DEFINED" and t.get("typeId") == PRIMARY_COMPANY_TYPE
        for t in types
        if isinstance(t, Mapping)
    )
    return Associated(str(item["toObjectId"]), primary)


def _primary_company(companies: Sequence[Associated]) -> Ref | None:
    """The primary company, or the only one when none is marked primary."""
    chosen = next((c for c in companies if c.primary), None)
    if chosen is None and len(companies) == 1:
        chosen = companies[0]
    return ("companies", chosen.id) if chosen is not None else None


def write_scope_missing(connector: HubSpotConnector) -> str | None:
    """What to tell an admin when the token may not write opt-outs back to HubSpot (the
    connection test, for a connection that writes back), or None when it may."""
    if connector.scopes() & WRITE_SCOPES:
        return None
    return (
        "HubSpot accepted the connection, but its access token may not write opt-outs: "
        "give its app the communication_preferences.write scope, or turn write-back off"
    )


def _filter(prop: str, operator: str, value: int) -> dict[str, str]:
    return {"propertyName": prop, "operator": operator, "value": str(value)}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batch_errors(
    http: Http, response: httpx.Response, inputs: Sequence[str], *, ignore: tuple[str, ...]
) -> dict[str, str]:
    """The addresses a batch answer (200, or 207 with `errors`) reports as failed."""
    if response.status_code != 207:
        return {}
    failed: dict[str, str] = {}
    lowered = {i.lower(): i for i in inputs}
    for error in http.parse(response).get("errors") or []:
        if error.get("category") in ignore:
            continue
        message = str(error.get("message") or error.get("category") or "failed")
        ids = (error.get("context") or {}).get("ids") or []
        named = [lowered[i.lower()] for i in ids if isinstance(i, str) and i.lower() in lowered]
        for address in named or inputs:
            failed[address] = message
    return failed
