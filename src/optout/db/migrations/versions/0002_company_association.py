"""company association by email domain

A workspace setting (create missing companies from email domains, on by default), how
each person's company was set, and the links the rule implies for existing data: a
person with no company whose email domain is a company's domain (not a free-mail
provider) now belongs to it.

Revision ID: 0002_company_association
Revises: 0001
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from optout.normalize import free_mail_domains

revision = "0002_company_association"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "create_companies_from_email_domain",
                sa.Boolean(),
                nullable=False,
                server_default=sa.true(),
            )
        )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("company_link_source", sa.String(length=16), nullable=True))
    people = sa.table(
        "people",
        sa.column("workspace_id", sa.Integer),
        sa.column("email_domain", sa.String),
        sa.column("company_id", sa.Integer),
        sa.column("company_link_source", sa.String),
    )
    companies = sa.table(
        "companies",
        sa.column("id", sa.Integer),
        sa.column("workspace_id", sa.Integer),
        sa.column("domain", sa.String),
    )
    same_domain = sa.and_(
        companies.c.workspace_id == people.c.workspace_id,
        companies.c.domain == people.c.email_domain,
    )
    op.execute(
        people.update()
        .where(
            people.c.company_id.is_(None),
            people.c.email_domain.not_in(sorted(free_mail_domains())),
            sa.exists().where(same_domain),
        )
        .values(
            company_id=sa.select(companies.c.id).where(same_domain).scalar_subquery(),
            company_link_source="email_domain",
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("company_link_source")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("create_companies_from_email_domain")
