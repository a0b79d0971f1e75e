"""Test a CRM connection with one real, harmless API call: list the people changed since
now (a HubSpot search, a Salesforce SOQL query). It proves the address answers, the
credentials sign in and the integration may read people, and it writes nothing. For a
HubSpot connection that writes opt-outs back, it also asks which scopes the token has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from optout.crm.http import Unreachable
from optout.crm.hubspot import HubSpotConnector, write_scope_missing
from optout.crm.outbound import OutboundRefused
from optout.crm.protocol import Connector, Kind
from optout.errors import OptoutError

CRM_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    api_calls: int


def check(connector: Connector, *, now: datetime) -> ProbeResult:
    name = CRM_NAMES.get(connector.kind, connector.kind)
    people = next(o.name for o in connector.objects if o.kind is Kind.PERSON)
    try:
        next(iter(connector.changes(people, since=now)), None)
    except OutboundRefused as exc:
        return ProbeResult(False, f"Nothing was sent. {exc.message}", connector.calls)
    except Unreachable as exc:
        return ProbeResult(False, exc.message, connector.calls)
    except OptoutError as exc:
        return ProbeResult(
            False, f"{name} did not accept the connection: {exc.message}", connector.calls
        )
    return ProbeResult(
        True,
        f"Connected: {name} accepted the credentials and let optout read {people}.",
        connector.calls,
    )


def may_write(connector: Connector, connected: ProbeResult) -> ProbeResult:
    """After a successful test of a connection that writes back: whether the token may
    write opt-outs, so a missing scope shows now, not at the first write-back."""
    if not isinstance(connector, HubSpotConnector):
        return connected  # Salesforce grants writes by profile; the first write says
    try:
        missing = write_scope_missing(connector)
    except OptoutError as exc:
        missing = f"HubSpot did not say what its access token may do: {exc.message}"
    if missing is None:
        return connected
    return ProbeResult(False, missing, connector.calls)
