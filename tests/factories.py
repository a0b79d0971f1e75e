"""Building realistic test data through the real services (no mocks, no raw inserts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose
from optout.services import workspaces
from optout.services.directory import companies, opportunities, people
from optout.services.eligibility import Explanation, explain
from optout.services.enrollments import enrolling
from optout.services.exclusions import saves
from optout.services.sequences import audiences, definitions, personas, rulesets

ONE_EMAIL = (
    definitions.Step(kind="email", subject="Hello {{ person.first_name }}", body_text="Hi there"),
)


class World:
    """One workspace and shortcuts to fill it."""

    def __init__(self, db: Connection, now: datetime, slug: str = "acme-sales") -> None:
        self.db = db
        self.now = now
        self.workspace = workspaces.create(db, slug=slug, name=slug.title(), now=now)
        self.ws = self.workspace.id
        self._default_ruleset: str | None = None

    def company(self, domain: str, name: str = "", **fields: Any) -> int:
        return companies.create(
            self.db, workspace_id=self.ws, domain=domain, name=name, fields=fields, now=self.now
        )

    def person(
        self,
        email: str,
        *,
        company: str | None = None,
        title: str = "",
        status: str = "",
        first_name: str = "",
        fields: dict[str, Any] | None = None,
    ) -> int:
        company_id = None
        if company is not None:
            try:
                company_id = companies.get_id(self.db, workspace_id=self.ws, domain=company)
            except Exception:
                company_id = self.company(company)
        return people.create(
            self.db,
            workspace_id=self.ws,
            email=email,
            company_id=company_id,
            title=title,
            status=status,
            first_name=first_name,
            fields=fields,
            now=self.now,
        )

    def opportunity(self, company: str, **values: Any) -> int:
        company_id = companies.get_id(self.db, workspace_id=self.ws, domain=company)
        return opportunities.create(
            self.db, workspace_id=self.ws, company_id=company_id, now=self.now, **values
        )

    def ruleset(self, name: str = "Default", **values: Any) -> str:
        rulesets.create(self.db, workspace_id=self.ws, name=name, now=self.now, **values)
        return name

    def sequence(
        self,
        name: str = "Outbound",
        *,
        ruleset: str | None = None,
        audience: str | None = None,
        steps: Sequence[definitions.Step] = ONE_EMAIL,
    ) -> int:
        if ruleset is None:
            if self._default_ruleset is None:
                self._default_ruleset = self.ruleset()
            ruleset = self._default_ruleset
        return definitions.create(
            self.db,
            workspace_id=self.ws,
            name=name,
            ruleset=ruleset,
            audience=audience,
            steps=steps,
            from_address="Sam Seller <sam@acme-sales.com>",
            now=self.now,
        )

    def persona(self, name: str, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> str:
        personas.create(
            self.db,
            workspace_id=self.ws,
            name=name,
            include_keywords=include,
            exclude_keywords=exclude,
            now=self.now,
        )
        return name

    def audience(self, name: str, filter: str | None = None, persona: str | None = None) -> int:
        return audiences.create(
            self.db, workspace_id=self.ws, name=name, filter=filter, persona=persona, now=self.now
        )

    def exclusion(self, name: str, level: str, filter: str, **toggles: Any) -> saves.Saved:
        toggles.setdefault("confirm", True)
        return saves.create(
            self.db,
            workspace_id=self.ws,
            name=name,
            level=level,
            filter=filter,
            actor="test@optout",
            now=self.now,
            **toggles,
        )

    def enroll(
        self, sequence_id: int, person_ids: Sequence[int], audience_id: int | None = None
    ) -> enrolling.Enrolled:
        return enrolling.enroll(
            self.db,
            workspace_id=self.ws,
            sequence_id=sequence_id,
            people=list(person_ids),
            actor="test@optout",
            now=self.now,
            audience_id=audience_id,
        )

    def explain(
        self, email: str, sequence: str = "Outbound", purpose: Purpose = Purpose.ENROLL, **kw: Any
    ) -> Explanation:
        return explain(
            self.db,
            workspace_id=self.ws,
            email=email,
            sequence=sequence,
            now=self.now,
            purpose=purpose,
            **kw,
        )

    def status_of(self, sequence_id: int, person_id: int) -> str | None:
        """The status of the person's latest enrollment in the sequence."""
        e = t.enrollments
        return self.db.scalar(
            sa.select(e.c.status)
            .where(e.c.sequence_id == sequence_id, e.c.person_id == person_id)
            .order_by(e.c.id.desc())
            .limit(1)
        )


def queued_email(world: World, sequence_id: int, person_id: int) -> int:
    """The queued email of the person's active enrollment in the sequence."""
    e, o = t.enrollments, t.outbound_emails
    return int(
        world.db.execute(
            sa.select(o.c.id)
            .join(e, e.c.id == o.c.enrollment_id)
            .where(
                e.c.sequence_id == sequence_id,
                e.c.person_id == person_id,
                e.c.status.in_(t.ACTIVE_STATUSES),
                o.c.status == "queued",
            )
        ).scalar_one()
    )


def email_status(world: World, email_id: int) -> str:
    o = t.outbound_emails
    return str(world.db.execute(sa.select(o.c.status).where(o.c.id == email_id)).scalar_one())
