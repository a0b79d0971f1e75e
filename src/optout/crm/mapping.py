"""Field mappings per CRM object (R31): which CRM field feeds which of ours, and whether
ours is written back (`read_write`). Pure: the defaults, the checks, and the translation of
a record's raw values into ours.

The opt-out field maps to whichever CRM field the team treats as the master suppression
flag: `HasOptedOutOfEmail` on Salesforce Lead and Contact by default (a custom field such as
`Do_Not_Email__c` can replace it), `hs_email_optout` on HubSpot contacts.

A person's owner (HubSpot `hubspot_owner_id`, Salesforce `OwnerId`) arrives as the owning
user's email address, which the connector reads from the CRM's users; it picks the
mailbox a new enrollment sends from. A time zone (HubSpot `hs_timezone`) is read as the
zone database's name; HubSpot's values write its slash as `_slash_` (`us_slash_eastern`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from optout.crm.protocol import CrmObject, Kind, Record
from optout.errors import InvalidInput, InvalidMapping
from optout.filters.fields import CUSTOM_FIELD_NAME
from optout.filters.fields import label as filter_label
from optout.mail.windows import zone_name

READ = "read"
READ_WRITE = "read_write"
MODES = (READ, READ_WRITE)
OPT_OUT = "email_opt_out"
# The only field optout itself changes and so ever writes back to a CRM.
WRITABLE = frozenset({OPT_OUT})

OBJECTS: Mapping[str, tuple[CrmObject, ...]] = {
    "hubspot": (
        CrmObject("companies", Kind.COMPANY),
        CrmObject("contacts", Kind.PERSON),
        CrmObject("deals", Kind.DEAL),
    ),
    "salesforce": (
        CrmObject("Account", Kind.COMPANY),
        CrmObject("Lead", Kind.PERSON),
        CrmObject("Contact", Kind.PERSON),
        CrmObject("Opportunity", Kind.DEAL),
        CrmObject("OpportunityContactRole", Kind.ROLE),
    ),
}

# Our fields a CRM field may feed, per kind, with the type the CRM value is read as.
OUR_FIELDS: Mapping[Kind, Mapping[str, str]] = {
    Kind.PERSON: {
        "email": "text",
        "first_name": "text",
        "last_name": "text",
        "title": "text",
        "status": "text",
        OPT_OUT: "bool",
        "last_activity_at": "datetime",  # activity read in counts as source `crm` (R21)
        "company_domain": "text",  # a company named on the record itself (Salesforce Lead)
        "company_name": "text",
        "owner": "email",  # the owning user's address: their mailbox sends to the person
        "time_zone": "time_zone",
    },
    Kind.COMPANY: {"domain": "text", "name": "text"},
    Kind.DEAL: {
        "name": "text",
        "stage": "text",
        "amount": "number",
        "is_closed": "bool",
        "is_won": "bool",
        "close_date": "datetime",
    },
    Kind.ROLE: {"role": "text"},
}

DEFAULTS: Mapping[str, Mapping[str, Sequence[tuple[str, str]]]] = {
    "hubspot": {
        "companies": [("domain", "domain"), ("name", "name")],
        "contacts": [
            ("email", "email"),
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("jobtitle", "title"),
            ("hs_lead_status", "status"),
            ("hs_email_optout", OPT_OUT),
            ("notes_last_updated", "last_activity_at"),
            ("hubspot_owner_id", "owner"),
            ("hs_timezone", "time_zone"),
        ],
        "deals": [
            ("dealname", "name"),
            ("dealstage", "stage"),
            ("amount", "amount"),
            ("closedate", "close_date"),
            ("hs_is_closed", "is_closed"),
            ("hs_is_closed_won", "is_won"),
        ],
    },
    "salesforce": {
        "Account": [("Website", "domain"), ("Name", "name")],
        "Lead": [
            ("Email", "email"),
            ("FirstName", "first_name"),
            ("LastName", "last_name"),
            ("Title", "title"),
            ("Status", "status"),
            ("HasOptedOutOfEmail", OPT_OUT),
            ("LastActivityDate", "last_activity_at"),
            ("Website", "company_domain"),
            ("Company", "company_name"),
            ("OwnerId", "owner"),
        ],
        "Contact": [
            ("Email", "email"),
            ("FirstName", "first_name"),
            ("LastName", "last_name"),
            ("Title", "title"),
            ("HasOptedOutOfEmail", OPT_OUT),
            ("LastActivityDate", "last_activity_at"),
            ("OwnerId", "owner"),
        ],
        "Opportunity": [
            ("Name", "name"),
            ("StageName", "stage"),
            ("Amount", "amount"),
            ("IsClosed", "is_closed"),
            ("IsWon", "is_won"),
            ("CloseDate", "close_date"),
        ],
        "OpportunityContactRole": [("Role", "role")],
    },
}

# How pages name our fields: by the labels of the filter field registry
# (`optout.filters.fields`), so that a mapping, a filter and a field picker name a field
# alike ("Job title", "Opportunity stage", "Lead source (custom)"). The relation each kind
# of record fills there; our fields a filter names otherwise; and the few a filter cannot
# name, labelled here.
_FILTER_RELATIONS: Mapping[Kind, str] = {
    Kind.PERSON: "person",
    Kind.COMPANY: "company",
    Kind.DEAL: "opportunity",
}
_FILTER_NAMES: Mapping[Kind, Mapping[str, str]] = {
    Kind.PERSON: {"company_domain": "company.domain", "company_name": "company.name"},
}
_OWN_LABELS: Mapping[Kind, Mapping[str, str]] = {
    Kind.PERSON: {OPT_OUT: "Opted out of email", "owner": "Owner", "time_zone": "Time zone"},
    Kind.ROLE: {"role": "Contact role"},
}


def field_label(kind: Kind, our: str) -> str:
    """How pages name our field `our` of a record of `kind`: `title` of a person reads
    "Job title", `fields.lead_source` of a company "Company lead source (custom)"."""
    own = _OWN_LABELS.get(kind, {}).get(our)
    if own is not None:
        return own
    relation = _FILTER_RELATIONS.get(kind)
    if relation is None:
        return our
    return filter_label(_FILTER_NAMES.get(kind, {}).get(our) or f"{relation}.{our}")


def our_field_label(crm: str, mapping: FieldMapping) -> str:
    """How pages name the field of ours that `mapping` feeds."""
    try:
        kind = crm_object(crm, mapping.crm_object).kind
    except InvalidMapping:
        return mapping.our_field
    return field_label(kind, mapping.our_field)


def in_words(crm: str, crm_name: str, mapping: FieldMapping) -> str:
    """What a saved mapping does, as a sentence: which CRM field feeds which of ours, and
    whether opt-outs made here are written back."""
    told = (
        f"{crm_name} {mapping.crm_object} field {mapping.crm_field} now feeds "
        f"“{our_field_label(crm, mapping)}”"
    )
    if mapping.our_field != OPT_OUT:
        return f"{told}."
    if mapping.mode == READ_WRITE:
        return f"{told}; opt-outs made here are written back to it."
    return f"{told}; opt-outs made here are not written back to {crm_name}."


# CRM field names end up in SOQL and in HubSpot property lists: identifiers only.
_CRM_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class FieldMapping:
    crm_object: str
    crm_field: str
    our_field: str
    mode: str = READ


def crm_object(crm: str, name: str) -> CrmObject:
    """The object called `name` in CRM `crm`, or InvalidInput listing the known ones."""
    objects = OBJECTS.get(crm)
    if objects is None:
        raise InvalidMapping(
            f"unknown CRM {crm!r}; use one of {', '.join(OBJECTS)}", where="crm_object"
        )
    for obj in objects:
        if obj.name.lower() == name.lower():
            return obj
    known = ", ".join(o.name for o in objects)
    raise InvalidMapping(
        f"{crm} has no object {name!r} that optout syncs; use one of {known}", where="crm_object"
    )


def check(crm: str, mapping: FieldMapping) -> FieldMapping:
    """The mapping in canonical form, or InvalidInput saying what is wrong (R34)."""
    obj = crm_object(crm, mapping.crm_object)
    if not _CRM_FIELD.match(mapping.crm_field):
        raise InvalidMapping(
            f"CRM field {mapping.crm_field!r}: use the field's API name (letters, digits, _)",
            where="crm_field",
        )
    our = mapping.our_field
    if our.startswith("fields."):
        if obj.kind is Kind.ROLE or not CUSTOM_FIELD_NAME.match(our[len("fields.") :]):
            raise InvalidMapping(
                f"custom field {our!r}: use fields.<name> with lowercase letters, digits and _",
                where="our_field",
            )
    elif our not in OUR_FIELDS[obj.kind]:
        known = ", ".join([*OUR_FIELDS[obj.kind], "fields.<name>"])
        raise InvalidMapping(
            f"{obj.name} ({obj.kind}) cannot feed {our!r}; use one of {known}", where="our_field"
        )
    if mapping.mode not in MODES:
        raise InvalidMapping(f"mode {mapping.mode!r}: use read or read_write", where="mode")
    if mapping.mode == READ_WRITE and our not in WRITABLE:
        raise InvalidMapping(
            f"{our} cannot be read_write: optout writes only {', '.join(sorted(WRITABLE))} "
            "back to the CRM",
            where="mode",
        )
    return FieldMapping(obj.name, mapping.crm_field, our, mapping.mode)


def defaults(crm: str) -> list[FieldMapping]:
    """The mappings a new connection starts with: all `read`, so nothing is written to the
    CRM until someone switches the opt-out field to `read_write`."""
    return [
        FieldMapping(obj, crm_field, our)
        for obj, pairs in DEFAULTS[crm].items()
        for crm_field, our in pairs
    ]


def crm_fields(mappings: Iterable[FieldMapping]) -> dict[str, list[str]]:
    """The CRM fields to request, per object."""
    out: dict[str, list[str]] = {}
    for m in mappings:
        names = out.setdefault(m.crm_object, [])
        if m.crm_field not in names:
            names.append(m.crm_field)
    return out


def translate(record: Record, mappings: Iterable[FieldMapping], kind: Kind) -> dict[str, Any]:
    """Our values for `record`: each mapped field read as its type; custom fields as text
    under `fields`. A value the CRM leaves empty is "" for text and None otherwise."""
    ours: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for m in mappings:
        if m.crm_object != record.object or m.crm_field not in record.values:
            continue
        raw = record.values[m.crm_field]
        if m.our_field.startswith("fields."):
            if raw is not None and raw != "":
                custom[m.our_field[len("fields.") :]] = as_text(raw)
            continue
        ours[m.our_field] = read_as(OUR_FIELDS[kind][m.our_field], raw)
    if custom:
        ours["fields"] = custom
    return ours


def read_as(type_: str, raw: Any) -> Any:
    if type_ == "bool":
        return as_bool(raw)
    if type_ == "number":
        return as_number(raw)
    if type_ == "datetime":
        return as_datetime(raw)
    if type_ == "email":
        return as_text(raw).lower()
    if type_ == "time_zone":
        return as_zone(raw)
    return as_text(raw)


def as_zone(raw: Any) -> str | None:
    """The zone database's name of a CRM time zone (`Europe/Berlin`, or HubSpot's
    `us_slash_eastern` for `US/Eastern`), in any case; None for anything else."""
    text = as_text(raw).replace("_slash_", "/")
    if not text:
        return None
    try:
        return zone_name(text)
    except InvalidInput:
        return None


def as_text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def as_bool(raw: Any) -> bool | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() in ("true", "1", "yes", "y", "on")


def as_number(raw: Any) -> float | None:
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def as_datetime(raw: Any) -> datetime | None:
    """ISO dates and times (`Z`, `+0000`, `+00:00`), plain dates, and epoch milliseconds,
    as naive UTC; None for anything else."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, int | float) or (isinstance(raw, str) and raw.strip().isdigit()):
        return datetime.fromtimestamp(int(raw) / 1000, UTC).replace(tzinfo=None)
    else:
        text = str(raw).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        elif re.search(r"[+-]\d{4}$", text):
            text = f"{text[:-2]}:{text[-2:]}"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
