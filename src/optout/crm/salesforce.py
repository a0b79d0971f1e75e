"""Salesforce: REST query (query locators via `nextRecordsUrl`), composite sObject
collections for writes, OAuth 2.0 (JWT bearer or client credentials).

Changes are read with `SystemModstamp >= bookmark ORDER BY SystemModstamp, Id`; a query
locator is a server-side snapshot, so paging never skips a record that changes meanwhile.
Contact roles are read with `queryAll` so removed ones (`IsDeleted`) are seen too. A 401
`INVALID_SESSION_ID` gets a new token and one retry. Every answer's `Sforce-Limit-Info`
feeds the API allowance: requests slow down near it and stop before it.

Requests stay on the connection's host: a `nextRecordsUrl` or a token's `instance_url`
naming another host is not followed (the outbound guard checks every request besides).
A Lead's or Contact's owner (`OwnerId`) is read as the owner's email address, through the
relationship field `Owner.Email` of the same query.
The JWT flow's private key is read only from the key folder (OPTOUT_CRM_KEY_FOLDER).
Its assertion's audience is Salesforce's login host, https://login.salesforce.com, or
https://test.salesforce.com for a sandbox, whatever address the token is asked at (a My
Domain address is never an audience Salesforce takes).
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
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from optout.config import CrmTimeouts
from optout.crm.http import Http, timeout_options
from optout.crm.mapping import OBJECTS, as_datetime
from optout.crm.outbound import OutboundRefused
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
OWNER_ID, OWNER_EMAIL = "OwnerId", "Owner.Email"  # a Lead's or Contact's owner
OWNED = frozenset({"Lead", "Contact"})
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUTH_MODES = ("jwt", "client_credentials", "token")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
KEY_FOLDER_SETTING = "OPTOUT_CRM_KEY_FOLDER"


@dataclass(frozen=True)
class SalesforceSettings:
    api_version: str = "v60.0"
    auth: str = "client_credentials"
    client_id: str = ""
    username: str = ""  # jwt: the integration user
    private_key_path: str = ""  # jwt: PEM key of the connected app's certificate
    login_url: str = ""  # token host; jwt default https://login.salesforce.com
    sandbox: bool = False  # jwt: the org is a sandbox (audience test.salesforce.com)
    batch_size: int = 2000  # query page size asked for (Sforce-Query-Options), 200 to 2000
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
        allowed_hosts: frozenset[str] = frozenset(),
        key_folder: Path | None = None,
        max_retries: int = 6,
        timeouts: CrmTimeouts | None = None,
    ) -> None:
        self.settings = SalesforceSettings.from_dict(settings or {})
        self._key_folder = key_folder
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
            self._login,
            name="Salesforce sign-in",
            headers=dict,
            # OAuth answers 400 to a wrong client, secret, user or key.
            words={400: "it did not accept the sign-in (client id, secret, user or key)"},
            clock=clock,
            sleep=sleep,
            allowed_hosts=allowed_hosts,
            max_retries=max_retries,
            **timeout_options(timeouts),
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
            allowed_hosts=allowed_hosts,
            max_retries=max_retries,
            **timeout_options(timeouts),
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
                    audience=jwt_audience(s),
                    private_key=read_key(s.private_key_path, folder=self._key_folder),
                    now=int(time.time()),
                ),
            }
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": s.client_id,
                "client_secret": self._secrets.get("client_secret", ""),
            }
        data = self._auth_http.json("POST", "/services/oauth2/token", data=form)
        if not isinstance(data.get("access_token"), str) or not data["access_token"]:
            raise ConnectorError("Salesforce sign-in answered without an access token")
        self.tokens_obtained += 1
        instance = str(data.get("instance_url") or "").rstrip("/")
        if instance and _origin(instance) == _origin(self._instance):
            self._instance = instance
        # An instance_url on another host is not followed: requests stay on the
        # connection's address, the one an admin chose.
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
        # Salesforce takes a batch size of 200 to 2,000, and only as a hint: pages may
        # be of any size, so paging follows nextRecordsUrl, never a count.
        batch = min(max(int(self.settings.batch_size), 200), 2000)
        options = {"Sforce-Query-Options": f"batchSize={batch}"}
        response = self._http.request("GET", self._url(path), params={"q": soql}, headers=options)
        while True:
            data = self._http.parse(response)
            yield list(data.get("records") or [])
            next_url = data.get("nextRecordsUrl")
            if data.get("done", True) or not next_url:
                return
            response = self._http.request("GET", self._url(next_url), headers=options)

    def _select(self, obj: str) -> list[str]:
        if obj not in STRUCTURAL:
            raise InvalidInput(f"Salesforce object {obj!r} is not synced")
        fields = self._fields.get(obj, ())
        owner = [OWNER_EMAIL] if obj in OWNED and OWNER_ID in fields else []
        return list(dict.fromkeys(["Id", MODIFIED, *STRUCTURAL[obj], *fields, *owner]))

    def _record(self, obj: str, row: Mapping[str, Any]) -> Record:
        modified = as_datetime(row.get(MODIFIED))
        if modified is None:
            raise ConnectorError(f"Salesforce {obj} {row.get('Id')} has no {MODIFIED}")
        values = {name: row.get(name) for name in self._fields.get(obj, ())}
        if obj in OWNED and OWNER_ID in values:
            owner = row.get("Owner")
            values[OWNER_ID] = owner.get("Email") if isinstance(owner, Mapping) else None
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
            results = self._http.json("PATCH", url, json=body, shape=list)
            for (_, address), result in zip(batch, results, strict=False):
                if not isinstance(result, dict) or not result.get("success"):
                    result = result if isinstance(result, dict) else {}
                    errors = result.get("errors") or [{"message": "failed"}]
                    failed[by_lower.get(address, address)] = "; ".join(
                        f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}" for e in errors
                    )
        return failed

    def _url(self, path: str) -> str:
        """The address of `path` on the connection's host; an address Salesforce gives
        (a `nextRecordsUrl`) may not lead anywhere else."""
        if path.startswith(("http://", "https://")):
            if _origin(path) != _origin(self._instance):
                raise OutboundRefused(
                    "Salesforce: an answer pointed to another host than the connection's; "
                    "optout does not follow it"
                )
            return path
        if not path.startswith("/") or path.startswith("//"):
            raise OutboundRefused(f"Salesforce: {path[:80]!r} is not a path on its host")
        return f"{self._instance}{path}"


PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"


def jwt_audience(settings: SalesforceSettings) -> str:
    """The `aud` of a JWT bearer assertion: Salesforce's login host for the kind of org,
    never the My Domain address the token is asked at. A sandbox is the `sandbox` setting,
    or a sign-in address at test.salesforce.com or on a sandbox's My Domain."""
    try:
        host = httpx.URL(settings.login_url).host.lower()
    except httpx.InvalidURL:
        host = ""
    sandbox = (
        settings.sandbox is True
        or str(settings.sandbox).strip().lower() in ("true", "yes", "1")
        or host == "test.salesforce.com"
        or host.endswith(".sandbox.my.salesforce.com")
    )
    return SANDBOX_AUDIENCE if sandbox else PRODUCTION_AUDIENCE


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


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = httpx.URL(url)
    return parts.scheme, parts.host.lower(), parts.port


def read_key(path: str, *, folder: Path | None) -> bytes:
    """The private key file `path`, read only inside the key folder (a path relative to
    it, or an absolute one that lies in it once symbolic links are followed). Whatever is
    wrong with it, the answer is the same, so it tells nothing about other files."""
    if not path:
        raise ConnectorError("Salesforce JWT sign-in needs private_key_path in the settings")
    if folder is None:
        raise ConnectorError(
            "Salesforce JWT sign-in reads its private key from the key folder: set "
            f"{KEY_FOLDER_SETTING} to the folder that holds the key file"
        )
    refused = ConnectorError(
        f"the Salesforce private key {path!r} is not a readable file in the key folder "
        f"({KEY_FOLDER_SETTING}): put the key file there and give its name"
    )
    try:
        root = folder.resolve(strict=True)
        wanted = (root / path).resolve(strict=True)
        if not wanted.is_relative_to(root) or not wanted.is_file():
            raise refused
        return wanted.read_bytes()
    except (OSError, RuntimeError, ValueError) as exc:
        raise refused from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_assertion(
    *, client_id: str, username: str, audience: str, private_key: bytes, now: int
) -> str:
    """An RS256-signed JWT for the OAuth 2.0 JWT bearer flow (valid three minutes)."""
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConnectorError("the Salesforce private key is not a PEM RSA key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConnectorError("the Salesforce private key must be an RSA key")
    header = _b64url(json.dumps({"alg": "RS256"}).encode())
    claims = _b64url(
        json.dumps({"iss": client_id, "sub": username, "aud": audience, "exp": now + 180}).encode()
    )
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64url(signature)}"
