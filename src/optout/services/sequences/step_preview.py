"""One email step rendered for one real person, exactly as the send worker renders it:
the same templates, the same person and company data, the unsubscribe footer added."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from optout.mail.templates import ROOTS, Rendered, render
from optout.services.directory import companies, people
from optout.services.sequences.definitions import Step

# What a template may write, with what each holds (the roots are `ROOTS`).
VARIABLES: tuple[tuple[str, str], ...] = (
    ("person.first_name", "first name"),
    ("person.last_name", "last name"),
    ("person.email", "email address"),
    ("person.title", "job title"),
    ("person.status", "status"),
    ("person.fields.NAME", "a custom field of the person"),
    ("company.name", "company name"),
    ("company.domain", "company domain"),
    ("company.fields.NAME", "a custom field of the company"),
    ("sender.email", "the sequence's From address"),
    ("unsubscribe_url", "the person's unsubscribe link (added as a footer when left out)"),
)
assert {name.split(".")[0] for name, _ in VARIABLES} == set(ROOTS)


@dataclass(frozen=True)
class Preview:
    email: str  # to whom
    rendered: Rendered


def render_step(
    db: Connection,
    *,
    workspace_id: int,
    person_id: int,
    step: Step,
    from_address: str,
    unsubscribe_url: str,
) -> Preview:
    """`step` rendered for the person (InvalidTemplate when a template is wrong)."""
    person = dict(people.get(db, workspace_id=workspace_id, person_id=person_id))
    company = None
    if person["company_id"] is not None:
        company = dict(
            companies.get(db, workspace_id=workspace_id, company_id=person["company_id"])
        )
    rendered = render(
        subject=step.subject,
        body_text=step.body_text,
        body_html=step.body_html,
        person=person,
        company=company,
        sender={"email": from_address},
        unsubscribe_url=unsubscribe_url,
    )
    return Preview(email=person["email"], rendered=rendered)
