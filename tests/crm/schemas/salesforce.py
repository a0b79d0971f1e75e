"""Salesforce's requests and answers, written from its REST API and OAuth documentation:
query results (`totalSize`, `done`, `nextRecordsUrl`, records with `attributes`), sObject
collections (at most 200 records in, SaveResults out), the OAuth token answers, and the
error list `[{"message", "errorCode", "fields"}]`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.crm.schemas.shapes import ListOf, Shape

ERROR = Shape(
    "Error",
    {"message": "str", "errorCode": "str", "fields": ListOf("str")},
    required=frozenset({"message", "errorCode"}),
)
ERRORS = ListOf(ERROR)

ATTRIBUTES = Shape("attributes", {"type": "str", "url": "str"}, required=frozenset({"type"}))
RECORD = Shape("sObject", {"attributes": ATTRIBUTES}, required=frozenset({"attributes"}), open=True)
QUERY_RESULT = Shape(
    "QueryResult",
    {"totalSize": "int", "done": "bool", "nextRecordsUrl": "str", "records": ListOf(RECORD)},
    required=frozenset({"totalSize", "done", "records"}),
)
NEXT_RECORDS_URL = re.compile(r"^/services/data/v\d+\.\d+/query/[0-9A-Za-z]{15,18}-\d+$")

COLLECTION_RECORD = Shape(
    "sObject",
    {"attributes": ATTRIBUTES, "id": "str"},
    required=frozenset({"attributes", "id"}),
    open=True,
)
COLLECTION_UPDATE = Shape(
    "sObjectCollectionRequest",
    {"allOrNone": "bool", "records": ListOf(COLLECTION_RECORD, max_items=200)},
    required=frozenset({"records"}),
)
SAVE_ERROR = Shape(
    "Error",
    {"statusCode": "str", "message": "str", "fields": ListOf("str")},
    required=frozenset({"statusCode", "message", "fields"}),
)
SAVE_RESULT = Shape(
    "SaveResult",
    {"id": "str", "success": "bool", "errors": ListOf(SAVE_ERROR)},
    required=frozenset({"success", "errors"}),
)

# OAuth 2.0: the token answer (JWT bearer, client credentials) and its errors.
TOKEN = Shape(
    "TokenResponse",
    {
        "access_token": "str",
        "instance_url": "str",
        "id": "str",
        "token_type": "str",
        "scope": "str",
        "issued_at": "str",
        "signature": "str",
        "api_instance_url": "str",
    },
    required=frozenset({"access_token", "instance_url", "id", "token_type"}),
)
OAUTH_ERROR = Shape(
    "OAuthError",
    {"error": "str", "error_description": "str"},
    required=frozenset({"error", "error_description"}),
    enums={
        "error": frozenset(
            {
                "invalid_grant",
                "invalid_client",
                "invalid_client_id",
                "invalid_request",
                "unsupported_grant_type",
                "invalid_app_access",
                "inactive_user",
                "inactive_org",
                "rate_limit_exceeded",
            }
        )
    },
)
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_FORMS: Mapping[str, frozenset[str]] = {
    JWT_GRANT: frozenset({"grant_type", "assertion"}),
    "client_credentials": frozenset({"grant_type", "client_id", "client_secret"}),
}
# The JWT bearer flow's audience: the login hosts, or an Experience Cloud site's URL.
AUDIENCES = frozenset({"https://login.salesforce.com", "https://test.salesforce.com"})
JWT_CLAIMS = Shape(
    "JwtClaims",
    {"iss": "str", "sub": "str", "aud": "str", "exp": "int"},
    required=frozenset({"iss", "sub", "aud", "exp"}),
)
QUERY_BATCH_SIZES = range(200, 2001)  # Sforce-Query-Options batchSize: 200 to 2,000


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    request: Any | None
    answers: Mapping[int, Any] = field(default_factory=dict)


DATA = r"/services/data/v\d+\.\d+"
ROUTES = [
    Route("GET", re.compile(f"^{DATA}/(query|queryAll)$"), None, {200: QUERY_RESULT}),
    Route("GET", re.compile(f"^{DATA}/query/[^/]+$"), None, {200: QUERY_RESULT}),
    Route(
        "PATCH",
        re.compile(f"^{DATA}/sobjects/[A-Za-z_]+/[A-Za-z0-9]+$"),
        Shape("sObject", {}, open=True),
        {204: None},
    ),
    Route(
        "PATCH",
        re.compile(f"^{DATA}/composite/sobjects$"),
        COLLECTION_UPDATE,
        {200: ListOf(SAVE_RESULT)},
    ),
    Route(
        "POST",
        re.compile("^/services/oauth2/token$"),
        None,
        {200: TOKEN, 400: OAUTH_ERROR, 401: OAUTH_ERROR},
    ),
]
# Any REST answer of 400 and up is the error list.
ERROR_ANSWER = ERRORS
