"""HubSpot's requests and answers, route by route, from its official SDK's models
(`hubspot-api-client`): CRM v3 objects and owners, v4 associations, OAuth token information. The
v4 communication-preferences batch endpoints and the private-app token information are
not in the SDK; their shapes are written here from HubSpot's API reference."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hubspot.crm.associations.v4 import models as associations
from hubspot.crm.objects import models as objects
from hubspot.crm.owners import models as owners
from hubspot.oauth import models as oauth

from tests.crm.schemas.shapes import DictOf, ListOf, OneOf, Refined, Shape

# The search guide's object form of a sort; the SDK's model types `sorts` as strings
# (a property name, ascending). HubSpot takes both.
SORT = Shape(
    "Sort",
    {"propertyName": "str", "direction": "str"},
    required=frozenset({"propertyName"}),
    enums={"direction": frozenset({"ASCENDING", "DESCENDING"})},
)
SEARCH_REQUEST = Refined(objects.PublicObjectSearchRequest, {"sorts": ListOf(OneOf(("str", SORT)))})

# Error answers carry `status: "error"` beside the SDK's Error fields; a rate-limited
# answer also names its policy (HubSpot's rate-limit reference).
ERROR = Refined(objects.Error, {"status": "str"})
RATE_LIMITED = Shape(
    "RateLimitError",
    {
        "status": "str",
        "message": "str",
        "errorType": "str",
        "correlationId": "str",
        "policyName": "str",
        "groupName": "str",
        "category": "str",
    },
    required=frozenset({"status", "message", "errorType", "correlationId", "policyName"}),
    enums={"errorType": frozenset({"RATE_LIMIT"})},
)

BATCH_STATUS = frozenset({"PENDING", "PROCESSING", "CANCELED", "COMPLETE"})
CHANNELS = frozenset({"EMAIL", "WHATSAPP", "SMS"})
STATUSES = frozenset({"SUBSCRIBED", "NOT_SUBSCRIBED", "NOT_SPECIFIED"})
LEGAL_BASES = frozenset(
    {
        "LEGITIMATE_INTEREST_PQL",
        "LEGITIMATE_INTEREST_CLIENT",
        "PERFORMANCE_OF_CONTRACT",
        "CONSENT_WITH_NOTICE",
        "NON_GDPR",
        "PROCESS_AND_STORE",
        "LEGITIMATE_INTEREST_OTHER",
    }
)
SET_STATUS_REASONS = frozenset(
    {
        "NO_STATUS_CHANGE",
        "REQUESTED_CHANGE_OCCURRED",
        "RESUBSCRIBE_OCCURRED",
        "UNSUBSCRIBE_FROM_ALL_OCCURRED",
    }
)

# Communication preferences v4 (HubSpot's API reference, "Subscriptions v4").
BATCH_INPUT_STRING = Shape(
    "BatchInputString", {"inputs": ListOf("str")}, required=frozenset({"inputs"})
)
PUBLIC_STATUS = Shape(
    "PublicStatus",
    {
        "channel": "str",
        "source": "str",
        "status": "str",
        "subscriberIdString": "str",
        "subscriptionId": "int",
        "timestamp": "datetime",
        "businessUnitId": "int",
        "legalBasis": "str",
        "legalBasisExplanation": "str",
        "setStatusSuccessReason": "str",
        "subscriptionName": "str",
    },
    required=frozenset(
        {"channel", "source", "status", "subscriberIdString", "subscriptionId", "timestamp"}
    ),
    enums={
        "channel": CHANNELS,
        "status": STATUSES,
        "legalBasis": LEGAL_BASES,
        "setStatusSuccessReason": SET_STATUS_REASONS,
    },
)
BULK_OPT_OUT = Shape(
    "PublicBulkOptOutFromAllResponse",
    {"subscriberIdString": "str", "statuses": ListOf(PUBLIC_STATUS)},
    required=frozenset({"subscriberIdString", "statuses"}),
)
STATUS_REQUEST = Shape(
    "PublicStatusRequest",
    {
        "channel": "str",
        "statusState": "str",
        "subscriberIdString": "str",
        "subscriptionId": "int",
        "legalBasis": "str",
        "legalBasisExplanation": "str",
    },
    required=frozenset({"channel", "statusState", "subscriberIdString", "subscriptionId"}),
    enums={"channel": CHANNELS, "statusState": STATUSES, "legalBasis": LEGAL_BASES},
)


def _batch_answer(name: str, result: Any) -> Shape:
    return Shape(
        name,
        {
            "completedAt": "datetime",
            "requestedAt": "datetime",
            "startedAt": "datetime",
            "links": DictOf("str"),
            "results": ListOf(result),
            "errors": ListOf(objects.StandardError),
            "numErrors": "int",
            "status": "str",
        },
        required=frozenset({"completedAt", "startedAt", "results", "status"}),
        enums={"status": BATCH_STATUS},
    )


UNSUBSCRIBE_ALL_ANSWER = _batch_answer("BatchResponsePublicBulkOptOutFromAllResponse", BULK_OPT_OUT)
STATUS_WRITE_REQUEST = Shape(
    "BatchInputPublicStatusRequest",
    {"inputs": ListOf(STATUS_REQUEST)},
    required=frozenset({"inputs"}),
)
STATUS_WRITE_ANSWER = _batch_answer("BatchResponsePublicStatus", PUBLIC_STATUS)

# Private apps: POST /oauth/v2/private-apps/get/access-token-info (the private apps guide).
PRIVATE_TOKEN_REQUEST = Shape(
    "PrivateAppTokenRequest", {"tokenKey": "str"}, required=frozenset({"tokenKey"})
)
PRIVATE_TOKEN_INFO = Shape(
    "PrivateAppTokenInfo",
    {"userId": "int", "hubId": "int", "appId": "int", "scopes": ListOf("str")},
    required=frozenset({"hubId", "appId", "scopes"}),
)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    request: Any | None  # None: no JSON body
    answers: Mapping[int, Any] = field(default_factory=dict)


def _route(method: str, path: str, request: Any, answers: Mapping[int, Any]) -> Route:
    return Route(method, re.compile(f"^{path}$"), request, {400: ERROR, 403: ERROR, **answers})


OBJECT = r"/crm/v3/objects/[a-z_0-9-]+"


def routes(comm_prefs_path: str) -> list[Route]:
    comm = re.escape(comm_prefs_path.rstrip("/"))
    return [
        _route(
            "GET",
            OBJECT,
            None,
            {200: objects.CollectionResponseSimplePublicObjectWithAssociationsForwardPaging},
        ),
        _route(
            "POST",
            f"{OBJECT}/search",
            SEARCH_REQUEST,
            {200: objects.CollectionResponseWithTotalSimplePublicObjectForwardPaging},
        ),
        _route(
            "POST",
            f"{OBJECT}/batch/read",
            objects.BatchReadInputSimplePublicObjectId,
            {
                200: objects.BatchResponseSimplePublicObject,
                207: objects.BatchResponseSimplePublicObjectWithErrors,
            },
        ),
        _route(
            "POST",
            f"{OBJECT}/batch/update",
            objects.BatchInputSimplePublicObjectBatchInput,
            {
                200: objects.BatchResponseSimplePublicObject,
                207: objects.BatchResponseSimplePublicObjectWithErrors,
            },
        ),
        _route(
            "POST",
            r"/crm/v4/associations/[a-z_0-9-]+/[a-z_0-9-]+/batch/read",
            associations.BatchInputPublicFetchAssociationsBatchRequest,
            {
                200: associations.BatchResponsePublicAssociationMultiWithLabel,
                207: associations.BatchResponsePublicAssociationMultiWithLabelWithErrors,
            },
        ),
        _route(
            "POST",
            f"{comm}/statuses/batch/unsubscribe-all",
            BATCH_INPUT_STRING,
            {200: UNSUBSCRIBE_ALL_ANSWER, 207: UNSUBSCRIBE_ALL_ANSWER},
        ),
        _route(
            "POST",
            f"{comm}/statuses/batch/write",
            STATUS_WRITE_REQUEST,
            {200: STATUS_WRITE_ANSWER, 207: STATUS_WRITE_ANSWER},
        ),
        _route(
            "POST",
            "/oauth/v2/private-apps/get/access-token-info",
            PRIVATE_TOKEN_REQUEST,
            {200: PRIVATE_TOKEN_INFO, 404: ERROR},
        ),
        _route("GET", "/oauth/v1/access-tokens/[^/]+", None, {200: oauth.AccessTokenInfoResponse}),
        _route(
            "GET",
            "/crm/v3/owners/?",
            None,
            {200: owners.CollectionResponsePublicOwnerForwardPaging},
        ),
    ]


# Answers any route may give before it is reached.
GATE_ANSWERS: Mapping[int, Any] = {401: ERROR, 429: RATE_LIMITED}
