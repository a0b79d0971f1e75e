"""Salesforce: REST query (query locators via `nextRecordsUrl`), composite sObject
collections for writes, OAuth 2.0 (JWT bearer or client credentials).

Changes are read with `SystemModstamp >= bookmark ORDER BY SystemModstamp, Id`; a query
locator is a server-side snapshot, so paging never skips a record that changes meanwhile.
Contact roles are read with `queryAll` so removed ones (`IsDeleted`) are seen too. A 401
`INVALID_SESSION_ID` gets a new token and one retry. Every answer's `Sforce-Limit-Info`
feeds the API allowance: requests slow down near it and stop before it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from optout.crm.http import Http
from optout.crm.mapping import OBJECTS, as_datetime
from optout.crm.protocol import Page, Record, Ref
from optout.crm.ratelimit import Budget, Clock, Sleep
from optout.errors import ConnectorError, InvalidInput

MODIFIED = "SystemModstamp"
STRUCTURAL: Mapping[str, tuple[str, ...]] = {
    "Account": (),
    "Lead": (),
    "Contact": ("AccountId",),
    "Opportunity": ("AccountId",),
    "OpportunityContactRole": ("OpportunityId", "ContactId", "IsDeleted"),
}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUTH_MODES = ("jwt", "client_credentials", "token")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


@dataclass(frozen=True)
class SalesforceSettings:
    api_version: str = "v60.0"
    auth: str = "client_credentials"
    client_id: str = ""
    username: str = ""  # jwt: the integration user
    private_key_path: str = ""  # jwt: PEM key of the connected app's certificate
    login_url: str = ""  # token host; jwt default https://login.salesforce.com
    batch_size: int = 2000  # query page size (Sforce-Query-Options)
    write_batch: int = 200  # composite collections take at most 200 records
    slow_at: float = 0.8  # share of the daily API allowance where requests slow down
    stop_at: float = 0.95  # ... and where the sync stops until later
    slow_delay: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SalesforceSettings:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        settings = cls(**known)
        if settings.auth not in AUTH_MODES:
            raise InvalidInput(f"Salesforce auth {settings.auth!r}: use {', '.join(AUTH_MODES)}")
        return settings


class SalesforceConnector:
    kind = "salesforce"
    objects = OBJECTS["salesforce"]

    def __init__(
        self,
        *,
        base_url: str,
        fields: Mapping[str, Sequence[str]],
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.settings = SalesforceSettings.from_dict(settings or {})
        self._fields = fields
        self._secrets = dict(secrets or {})
        self._instance = base_url.rstrip("/")
        self._access: str | None = None
        self.budget = Budget(
            slow_at=self.settings.slow_at,
            stop_at=self.settings.stop_at,
            slow_delay=self.settings.slow_delay,
            sleep=sleep,
        )
        self.tokens_obtained = 0
        login = self.settings.login_url or (
            "https://login.salesforce.com" if self.settings.auth == "jwt" else self._instance
        )
        self._login = login.rstrip("/")
        self._auth_http = Http(
            self._login, name="Salesforce OAuth", headers=dict, clock=clock, sleep=sleep
        )
        self._http = Http(
            self._instance,
            name="Salesforce",
            headers=lambda: {"Authorization": f"Bearer {self._token()}"},
            clock=clock,
            sleep=sleep,
            before=self.budget.check,
            after=lambda r: self.budget.observe(r.headers.get("Sforce-Limit-Info")),
            renew=self._renew,
        )

    @property
    def calls(self) -> int:
        return self._http.calls + self._auth_http.calls

    def close(self) -> None:
        self._http.close()
        self._auth_http.close()

    # --- OAuth --------------------------------------------------------------------------

    def _token(self) -> str:
        if self._access is None:
            self._access = self._obtain()
        return self._access

    def _obtain(self) -> str:
        s = self.settings
        if s.auth == "token":
            token = self._secrets.get("token", "")
            if not token:
                raise ConnectorError("Salesforce: no access token in the connection's token env")
            return token
        if s.auth == "jwt":
            form = {
                "grant_type": JWT_GRANT,
                "assertion": jwt_assertion(
                    client_id=s.client_id,
                    username=s.username,
                    audience=self._login,
                    private_key=_read_key(s.private_key_path),
                    now=int(time.time()),
                ),
            }
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": s.client_id,
                "client_secret": self._secrets.get("client_secret", ""),
            }
        data = self._auth_http.request("POST", "/services/oauth2/token", data=form).json()
        self.tokens_obtained += 1
        if data.get("instance_url"):
            self._instance = str(data["instance_url"]).rstrip("/")
        return str(data["access_token"])

    def _renew(self, response: httpx.Response) -> bool:
        """A session that expired gets a new token; a static token cannot be renewed."""
        if self.settings.auth == "token" or "INVALID_SESSION_ID" not in response.text:
            return False
        self._access = None
        return True

    # --- reading ------------------------------------------------------------------------

    def changes(self, obj: str, *, since: datetime | None, full: bool = False) -> Iterator[Page]:
        where = "" if since is None or full else f" WHERE {MODIFIED} >= {soql_datetime(since)}"
        soql = f"SELECT {', '.join(self._select(obj))} FROM {obj}{where} ORDER BY {MODIFIED}, Id"
        for rows in self._query(soql, all_rows=obj == "OpportunityContactRole"):
            records = [self._record(obj, row) for row in rows]
            if records:
                yield Page(records, max(r.modified_at for r in records))

    def fetch(self, obj: str, ids: Sequence[str]) -> list[Record]:
        wanted = list(dict.fromkeys(ids))
        bad = [i for i in wanted if not _ID.match(i)]
        if bad:
            raise InvalidInput(f"not Salesforce record ids: {', '.join(bad[:5])}")
        records: list[Record] = []
        for start in range(0, len(wanted), 200):
            chunk = ", ".join(soql_string(i) for i in wanted[start : start + 200])
            soql = f"SELECT {', '.join(self._select(obj))} FROM {obj} WHERE Id IN ({chunk})"
            for rows in self._query(soql, all_rows=obj == "OpportunityContactRole"):
                records.extend(self._record(obj, row) for row in rows)
        return records

    def _query(self, soql: str, *, all_rows: bool = False) -> Iterator[list[Any]]:
        version = self.settings.api_version
        path = f"/services/data/{version}/{'queryAll' if all_rows else 'query'}"
        options = {"Sforce-Query-Options": f"batchSize={self.settings.batch_size}"}
        response = self._http.request("GET", self._url(path), params={"q": soql}, headers=options)
        while True:
            data = response.json()
            yield list(data.get("records") or [])
            next_url = data.get("nextRecordsUrl")
            if data.get("done", True) or not next_url:
                return
            response = self._http.request("GET", self._url(next_url), headers=options)

    def _select(self, obj: str) -> list[str]:
        if obj not in STRUCTURAL:
            raise InvalidInput(f"Salesforce object {obj!r} is not synced")
        return list(dict.fromkeys(["Id", MODIFIED, *STRUCTURAL[obj], *self._fields.get(obj, ())]))

    def _record(self, obj: str, row: Mapping[str, Any]) -> Record:
        modified = as_datetime(row.get(MODIFIED))
        if modified is None:
            raise ConnectorError(f"Salesforce {obj} {row.get('Id')} has no {MODIFIED}")
        values = {name: row.get(name) for name in self._fields.get(obj, ())}
        company: Ref | None = None
        if row.get("AccountId"):
            company = ("Account", str(row["AccountId"]))
        if obj == "OpportunityContactRole":
            return Record(
                obj,
                str(row["Id"]),
                modified,
                values,
                deal=("Opportunity", str(row["OpportunityId"])),
                person=("Contact", str(row["ContactId"])),
                deleted=bool(row.get("IsDeleted")),
            )
        return Record(obj, str(row["Id"]), modified, values, company=company)

    # --- writing ------------------------------------------------------------------------

    def write(self, obj: str, crm_field: str, emails: Sequence[str], value: Any) -> dict[str, str]:
        """Update every Lead or Contact with one of the addresses whose field differs, with
        composite collections of at most 200 records and `allOrNone: false`."""
        if obj not in ("Lead", "Contact"):
            raise InvalidInput(f"Salesforce write-backs go to Lead and Contact, not {obj}")
        by_lower = {e.lower(): e for e in emails}
        failed: dict[str, str] = {}
        targets: list[tuple[str, str]] = []
        addresses = list(by_lower.values())
        for start in range(0, len(addresses), 100):
            listed = ", ".join(soql_string(e) for e in addresses[start : start + 100])
            soql = (
                f"SELECT Id, Email FROM {obj} WHERE Email IN ({listed}) "
                f"AND {crm_field} != {soql_value(value)}"
            )
            if obj == "Lead":
                soql += " AND IsConverted = false"  # converted leads cannot be updated
            for rows in self._query(soql):
                targets.extend((str(r["Id"]), str(r["Email"]).lower()) for r in rows)
        url = self._url(f"/services/data/{self.settings.api_version}/composite/sobjects")
        for start in range(0, len(targets), self.settings.write_batch):
            batch = targets[start : start + self.settings.write_batch]
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": obj}, "id": record_id, crm_field: value}
                    for record_id, _ in batch
                ],
            }
            results = self._http.request("PATCH", url, json=body).json()
            for (_, address), result in zip(batch, results, strict=False):
                if not result.get("success"):
                    errors = result.get("errors") or [{"message": "failed"}]
                    failed[by_lower.get(address, address)] = "; ".join(
                        f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}" for e in errors
                    )
        return failed

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self._instance}{path}"


def soql_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def soql_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return soql_string(str(value))


def soql_datetime(moment: datetime) -> str:
    """A naive UTC time as a SOQL datetime literal (whole seconds, rounded down)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_key(path: str) -> bytes:
    if not path:
        raise ConnectorError("Salesforce JWT auth needs private_key_path in the settings")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConnectorError(f"cannot read the Salesforce private key {path}: {exc}") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_assertion(
    *, client_id: str, username: str, audience: str, private_key: bytes, now: int
) -> str:
    """An RS256-signed JWT for the OAuth 2.0 JWT bearer flow (valid three minutes)."""
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError) as exc:
        raise ConnectorError(f"the Salesforce private key is not a PEM RSA key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConnectorError("the Salesforce private key must be an RSA key")
    header = _b64url(json.dumps({"alg": "RS256"}).encode())
    claims = _b64url(
        json.dumps({"iss": client_id, "sub": username, "aud": audience, "exp": now + 180}).encode()
    )
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64url(signature)}"
