"""The exclusion form's data: what the form posts, the unsaved exclusion a preview looks
at, and the filter builder's "field, operator, value" turned into filter text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form

from optout.articles import with_article
from optout.eligibility.model import ExclusionSpec
from optout.errors import InvalidFilter, InvalidInput
from optout.filters import Condition, Level, parse, to_text
from optout.filters.ast import AnyOf, Scalar, Value
from optout.filters.fields import FIELDS, FieldType, lookup
from optout.filters.operators import OPERATORS, Arg
from optout.services.filters import read_filter

RELATION_TITLES = {
    "person": "Person",
    "company": "Company",
    "opportunity": "Company's opportunities",
    "person_opportunity": "Person's opportunities (contact roles)",
}


@dataclass(frozen=True)
class ExclusionForm:
    """The form's fields as posted (checkboxes: present means on)."""

    name: str = ""
    level: str = "company"
    filter: str = ""
    enabled: bool = True
    exclude_from_sequences: bool = False
    unenroll_existing_on_save: bool = False

    @classmethod
    def of(cls, spec: ExclusionSpec) -> ExclusionForm:
        return cls(
            name=spec.name,
            level=spec.level.value,
            filter=to_text(spec.filter),
            enabled=spec.enabled,
            exclude_from_sequences=spec.exclude_from_sequences,
            unenroll_existing_on_save=spec.unenroll_existing_on_save,
        )

    def level_of(self) -> Level:
        try:
            return Level(self.level)
        except ValueError:
            raise InvalidInput(f"level must be 'company' or 'people', not {self.level!r}") from None

    def draft(self, exclusion_id: int = 0) -> ExclusionSpec:
        """The unsaved exclusion these fields describe (InvalidFilter when the filter is bad)."""
        if not self.filter.strip():
            raise InvalidFilter("write a filter, or add a condition with the builder")
        level = self.level_of()
        return ExclusionSpec(
            exclusion_id,
            self.name or "(draft)",
            level,
            read_filter(self.filter, level),
            self.enabled,
            self.exclude_from_sequences,
            self.unenroll_existing_on_save,
        )


def posted_form(
    name: Annotated[str, Form()] = "",
    level: Annotated[str, Form()] = "company",
    filter: Annotated[str, Form()] = "",
    enabled: Annotated[str | None, Form()] = None,
    exclude_from_sequences: Annotated[str | None, Form()] = None,
    unenroll_existing_on_save: Annotated[str | None, Form()] = None,
) -> ExclusionForm:
    """A FastAPI dependency reading the exclusion form from a POST."""
    return ExclusionForm(
        name=name.strip(),
        level=level,
        filter=filter.strip(),
        enabled=enabled is not None,
        exclude_from_sequences=exclude_from_sequences is not None,
        unenroll_existing_on_save=unenroll_existing_on_save is not None,
    )


def field_groups() -> list[tuple[str, list[dict[str, str]]]]:
    """The field registry grouped by relation, for the builder's field select."""
    groups: dict[str, list[dict[str, str]]] = {}
    for field in FIELDS.values():
        groups.setdefault(field.relation.name, []).append(
            {
                "name": field.name,
                "label": field.label,
                "type": field.type.value,
                "description": field.description,
                "levels": " ".join(sorted(level.value for level in field.relation.levels)),
            }
        )
    return [(RELATION_TITLES.get(k, k), v) for k, v in groups.items()]


def operator_choices() -> list[dict[str, str]]:
    return [
        {"name": op.name, "syntax": op.syntax, "description": op.description, "arg": op.arg.value}
        for op in OPERATORS.values()
    ]


def _scalar(raw: str, kind: FieldType) -> Scalar:
    text = raw.strip()
    if kind is FieldType.NUMBER:
        try:
            number = float(text)
        except ValueError:
            raise InvalidInput(f"{text!r} is not a number") from None
        return int(number) if number.is_integer() else number
    if kind is FieldType.BOOLEAN:
        folded = text.lower()
        if folded in ("true", "yes", "1"):
            return True
        if folded in ("false", "no", "0"):
            return False
        raise InvalidInput(f"{text!r} is not true or false")
    if not text:
        raise InvalidInput("give a value")
    return text


def condition_text(field_name: str, op_name: str, raw: str) -> str:
    """One condition in the text syntax, its value quoted as needed."""
    field = lookup(field_name, where="field")
    op = OPERATORS.get(op_name)
    if op is None:
        raise InvalidInput(f"unknown operator {op_name!r}")
    if field.type not in op.types:
        raise InvalidInput(
            f"{op.syntax!r} does not apply to {field.label} "
            f"({with_article(field.type.value)} field)"
        )
    value: Value
    if op.arg is Arg.NONE:
        value = None
    elif op.arg is Arg.DAYS:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidInput(f"{raw.strip()!r} is not a whole number of days") from None
    elif op.arg is Arg.LIST:
        parts = [part for part in raw.split(",") if part.strip()]
        if not parts:
            raise InvalidInput("give one or more values, separated by commas")
        value = tuple(_scalar(part, field.type) for part in parts)
    else:
        value = _scalar(raw, field.type)
    return to_text(Condition(field.name, op.name, value), quote_text=True)


def with_condition(current: str, addition: str) -> str:
    """The filter `current` and `addition`; rewritten canonically when `current` parses,
    else joined as text (the preview then says what is wrong with it)."""
    if not current.strip():
        return addition
    try:
        node = parse(current)
    except InvalidFilter:
        return f"{current.strip()} and {addition}"
    text = to_text(node)
    return f"({text}) and {addition}" if isinstance(node, AnyOf) else f"{text} and {addition}"


def form_context(form: ExclusionForm, **extra: Any) -> dict[str, Any]:
    return {
        "form": form,
        "field_groups": field_groups(),
        "operators": operator_choices(),
        "where": "",
        **extra,
    }
