"""The "Our field" picker of the CRM mapping form: our fields by their labels, grouped by
the CRM object whose records fill them, the custom fields already mapped on each object,
and a choice to name a new custom field. What is stored stays our field's own name
(`title`, `fields.lead_source`).

A choice's value is `<object>|<our field>`, so a field picked under one object is not
taken for another's field of the same name (a company's `name` is no deal's `name`);
`<object>|fields.` stands for "a new custom field", named in its own input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from optout.crm.mapping import OBJECTS, OUR_FIELDS, FieldMapping, field_label
from optout.crm.protocol import Kind
from optout.errors import InvalidMapping
from optout.filters.fields import CUSTOM_FIELD_NAME

__all__ = ["CUSTOM", "Choice", "Group", "choices", "picked_field"]

SEPARATOR = "|"
CUSTOM = "fields."  # after the separator: a new custom field, named apart
_SPACES = re.compile(r"[\s-]+")


@dataclass(frozen=True)
class Choice:
    value: str  # `contacts|title`
    label: str  # "Job title"


@dataclass(frozen=True)
class Group:
    crm_object: str
    choices: tuple[Choice, ...]
    takes_custom: bool  # whether a new custom field may be named for this object


def choices(crm: str, mapped: Mapping[str, Iterable[FieldMapping]]) -> list[Group]:
    """Every field of ours a field of each object of `crm` may feed, by label (sorted),
    with the custom fields `mapped` already names on that object."""
    groups = []
    for obj in OBJECTS[crm]:
        ours = set(OUR_FIELDS[obj.kind])
        ours |= {m.our_field for m in mapped.get(obj.name, ()) if m.our_field.startswith(CUSTOM)}
        found = sorted(
            (Choice(f"{obj.name}{SEPARATOR}{our}", field_label(obj.kind, our)) for our in ours),
            key=lambda c: c.label.lower(),
        )
        groups.append(Group(obj.name, tuple(found), takes_custom=obj.kind is not Kind.ROLE))
    return groups


def picked_field(crm: str, crm_object: str, picked: str, custom_name: str) -> str:
    """Our field's own name from the picker's `picked` value (and the new custom field's
    name as typed); a plain name (`title`, as the API takes it) is kept as it is."""
    obj_name, sep, our = picked.strip().partition(SEPARATOR)
    if not sep:
        return picked.strip()
    kinds = {obj.name: obj.kind for obj in OBJECTS[crm]}
    if obj_name not in kinds:
        raise InvalidMapping("pick one of our fields from the list", where="our_field")
    if our == CUSTOM:
        our = CUSTOM + _custom_name(custom_name)
    if obj_name != crm_object:
        raise InvalidMapping(
            f"“{field_label(kinds[obj_name], our)}” is filled from {obj_name}, not from "
            f"{crm_object}: pick a field listed under {crm_object}, or choose {obj_name} as "
            "the object",
            where="our_field",
        )
    return our


def _custom_name(typed: str) -> str:
    """The name a custom field is stored under: `Lead source` is `lead_source`."""
    name = _SPACES.sub("_", typed.strip().lower())
    if not name:
        raise InvalidMapping(
            "name the new custom field (such as Lead source) in the box below the list",
            where="our_field",
        )
    if not CUSTOM_FIELD_NAME.match(name):
        raise InvalidMapping(
            f"custom field name {typed.strip()!r}: use letters, digits and spaces, starting "
            "with a letter (at most 63)",
            where="our_field",
        )
    return name
