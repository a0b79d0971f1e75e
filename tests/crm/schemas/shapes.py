"""One checker for both CRMs: does a JSON value have the shape an API documents?

A type is written as HubSpot's SDK writes them in `openapi_types` ("str", "int", "bool",
"datetime", "object", "list[X]", "dict(str, X)", or a model's name), or as a `Shape`
written here from documentation, a `ListOf`, a `DictOf`, or a `OneOf`. A HubSpot SDK
model is checked with its own `openapi_types` and `attribute_map`, and then built with the
SDK's client-side validation on, so its required fields and enumerations are the SDK's.

`check` returns the deviations found, each as "where: what", and an empty list when the
value conforms. Keys a model does not know are deviations: an emulator must not invent
fields, and a connector must not send fields the API does not take.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any


@dataclass(frozen=True)
class Shape:
    """A JSON object as documentation describes it."""

    name: str
    fields: Mapping[str, Any]
    required: frozenset[str] = frozenset()
    enums: Mapping[str, frozenset[str]] = field(default_factory=dict)
    open: bool = False  # other keys allowed (an sObject record's fields)


@dataclass(frozen=True)
class ListOf:
    item: Any
    max_items: int | None = None


@dataclass(frozen=True)
class DictOf:
    value: Any
    nullable: bool = False  # values may be null (HubSpot's property values are)


@dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]


@dataclass(frozen=True)
class Refined:
    """An SDK model with some fields typed otherwise, or added, from documentation."""

    model: type
    fields: Mapping[str, Any]


def check(value: Any, kind: Any, where: str = "$") -> list[str]:
    if isinstance(kind, str):
        return _check_named(value, kind, where, models=None)
    if isinstance(kind, Shape):
        return _check_shape(value, kind, where)
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {_kind(value)}"]
        problems = []
        if kind.max_items is not None and len(value) > kind.max_items:
            problems.append(f"{where}: {len(value)} items, at most {kind.max_items} allowed")
        for n, item in enumerate(value):
            problems += check(item, kind.item, f"{where}[{n}]")
        return problems
    if isinstance(kind, DictOf):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {_kind(value)}"]
        problems = []
        for key, item in value.items():
            if item is None and kind.nullable:
                continue
            problems += check(item, kind.value, f"{where}.{key}")
        return problems
    if isinstance(kind, OneOf):
        found = [check(value, option, where) for option in kind.options]
        if any(not f for f in found):
            return []
        return min(found, key=len)
    if isinstance(kind, Refined):
        if not isinstance(value, dict):
            return [f"{where}: expected a {kind.model.__name__} object, got {_kind(value)}"]
        rest = {k: v for k, v in value.items() if k not in kind.fields}
        problems = _check_model(rest, kind.model, where)
        for key, item in value.items():
            if key in kind.fields and item is not None:
                problems += check(item, kind.fields[key], f"{where}.{key}")
        return problems
    if isinstance(kind, type) and hasattr(kind, "openapi_types"):
        return _check_model(value, kind, where)
    raise TypeError(f"not a type to check against: {kind!r}")


_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict[\[(]str, (.+)[\])]$")


def _check_named(value: Any, name: str, where: str, models: str | None) -> list[str]:
    if (inner := _LIST.match(name)) is not None:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {_kind(value)}"]
        problems: list[str] = []
        for n, item in enumerate(value):
            problems += _check_named(item, inner.group(1), f"{where}[{n}]", models)
        return problems
    if (inner := _DICT.match(name)) is not None:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {_kind(value)}"]
        problems = []
        for key, item in value.items():
            # HubSpot's property values are nullable strings in its OpenAPI documents;
            # the generated SDK drops the `nullable`.
            if item is None and inner.group(1) == "str":
                continue
            problems += _check_named(item, inner.group(1), f"{where}.{key}", models)
        return problems
    primitive = _primitive(value, name, where)
    if primitive is not None:
        return primitive
    if models is None:
        raise TypeError(f"{name!r} is no primitive type and no model package was given")
    return _check_model(value, getattr(importlib.import_module(models), name), where)


def _primitive(value: Any, name: str, where: str) -> list[str] | None:
    """Deviations when `name` is a primitive type; None when it names a model."""
    if name == "object":
        return []
    if name == "str":
        ok = isinstance(value, str)
    elif name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif name == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif name == "bool":
        ok = isinstance(value, bool)
    elif name in ("datetime", "date"):
        ok = isinstance(value, str) and _is_instant(value)
    else:
        return None
    return [] if ok else [f"{where}: expected {name}, got {_kind(value)} {value!r:.60}"]


def _is_instant(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_model(value: Any, model: type, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected a {model.__name__} object, got {_kind(value)}"]
    by_key = {key: attr for attr, key in model.attribute_map.items()}  # type: ignore[attr-defined]
    problems = [
        f"{where}: {key!r} is not a field of {model.__name__}" for key in value if key not in by_key
    ]
    models = model.__module__.rsplit(".", 1)[0]
    for key, item in value.items():
        if key in by_key and item is not None:
            kind = model.openapi_types[by_key[key]]  # type: ignore[attr-defined]
            problems += _check_named(item, kind, f"{where}.{key}", models)
    # The SDK's own validation, field by field so that every fault is told: its setters
    # refuse a required field left out and a value outside an enumeration.
    instance = model(local_vars_configuration=_configuration(model.__module__, False))
    instance.local_vars_configuration = _configuration(model.__module__, True)
    for attr, key in model.attribute_map.items():  # type: ignore[attr-defined]
        try:
            setattr(instance, attr, value.get(key))
        except ValueError as exc:
            problems.append(f"{where}: {model.__name__}: {exc}")
    return problems


@cache
def _configuration(module: str, validating: bool) -> Any:
    configuration = importlib.import_module(module).Configuration()
    configuration.client_side_validation = validating
    return configuration


def _check_shape(value: Any, shape: Shape, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected a {shape.name} object, got {_kind(value)}"]
    problems = [
        f"{where}: {shape.name} lacks its required {key!r}"
        for key in sorted(shape.required)
        if value.get(key) is None
    ]
    for key, item in value.items():
        if key not in shape.fields:
            if not shape.open:
                problems.append(f"{where}: {key!r} is not a field of {shape.name}")
            continue
        if item is None:
            continue
        problems += check(item, shape.fields[key], f"{where}.{key}")
        allowed = shape.enums.get(key)
        if allowed is not None and item not in allowed:
            problems.append(f"{where}.{key}: {item!r} is not one of {sorted(allowed)}")
    return problems


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
