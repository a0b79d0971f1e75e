"""sender mailboxes: daily limits, gaps, time zones, the reputation breaker's thresholds

Revision ID: 0017_mailboxes
Revises: 0016_sending_windows
Create Date: 2026-12-07 07:40:00

A workspace's sender addresses become `mailboxes`; a sequence sends from the mailboxes of
`sequence_mailboxes`, and each enrollment keeps the one it was given (`enrollments
.mailbox_id`). The claim writes the mailbox that sends an email on the email
(`outbound_emails.mailbox_id`), where the reputation breaker reads a mailbox's last sends.

Every distinct From address of the existing sequences becomes a mailbox of its workspace
(its display name from the address, no daily limit and no gap: it sends as the From
address did, until an admin sets limits), attached to those sequences, and every
enrollment of a sequence is given that mailbox. A From address that cannot be read as an
address is kept, lower-cased, as it was.

The workspaces get the breaker's thresholds: hard bounces above 5% or complaints above
0.1% of a mailbox's last sends pause it, complaints above 0.3% pause its whole domain.

Downgrade drops the mailboxes; the sequences' From addresses were never changed.
"""

from __future__ import annotations

from email.utils import parseaddr

import sqlalchemy as sa
from alembic import op

revision = "0017_mailboxes"
down_revision = "0016_sending_windows"
branch_labels = None
depends_on = None


def _canonical(raw: str) -> tuple[str, str]:
    """(address, display name) of a stored From value."""
    from optout.errors import InvalidInput
    from optout.normalize import normalize_email

    name, address = parseaddr(raw)
    try:
        address = normalize_email(address).address
    except InvalidInput:
        address = (address or raw).strip().lower()
    return address, name.strip()


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("bounce_pause_rate", sa.Float(), nullable=False, server_default="0.05")
        )
        batch.add_column(
            sa.Column("complaint_pause_rate", sa.Float(), nullable=False, server_default="0.001")
        )
        batch.add_column(
            sa.Column(
                "domain_complaint_pause_rate", sa.Float(), nullable=False, server_default="0.003"
            )
        )
    mailboxes = op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.Integer(),
            sa.ForeignKey(
                "workspaces.id", name="fk_mailboxes_workspace_id_workspaces", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("smtp_url", sa.String(1000)),
        sa.Column("smtp_password", sa.Text()),
        sa.Column("daily_limit", sa.Integer()),
        sa.Column("min_gap_seconds", sa.Integer(), nullable=False),
        sa.Column("gap_jitter", sa.Float(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column(
            "owner_user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_mailboxes_owner_user_id_users", ondelete="SET NULL"),
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=False),
        sa.Column("paused_at", sa.DateTime()),
        sa.Column("paused_by", sa.String(200)),
        sa.Column("sends_day", sa.Date()),
        sa.Column("sends_today", sa.Integer(), nullable=False),
        sa.Column("next_send_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mailboxes"),
        sa.UniqueConstraint("workspace_id", "address", name="uq_mailboxes_workspace_id_address"),
        sa.CheckConstraint("status IN ('active', 'paused')", name="status"),
        sa.CheckConstraint("daily_limit IS NULL OR daily_limit >= 0", name="daily_limit"),
        sa.CheckConstraint("min_gap_seconds >= 0", name="min_gap_seconds"),
    )
    links = op.create_table(
        "sequence_mailboxes",
        sa.Column(
            "sequence_id",
            sa.Integer(),
            sa.ForeignKey(
                "sequences.id",
                name="fk_sequence_mailboxes_sequence_id_sequences",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey(
                "mailboxes.id",
                name="fk_sequence_mailboxes_mailbox_id_mailboxes",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sequence_id", "mailbox_id", name="pk_sequence_mailboxes"),
    )
    op.create_index("ix_sequence_mailboxes_mailbox", "sequence_mailboxes", ["mailbox_id"])
    _add_mailbox_column("enrollments")
    op.create_index("ix_enrollments_mailbox_status", "enrollments", ["mailbox_id", "status"])
    _add_mailbox_column("outbound_emails")
    op.create_index(
        "ix_outbound_emails_mailbox_handed", "outbound_emails", ["mailbox_id", "handed_over_at"]
    )
    _mailboxes_from_sequences(mailboxes, links)


def _add_mailbox_column(table: str) -> None:
    """A nullable reference to the mailbox (SQLite: the table is rebuilt with it)."""
    name = f"fk_{table}_mailbox_id_mailboxes"
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("mailbox_id", sa.Integer()))
            batch.create_foreign_key(name, "mailboxes", ["mailbox_id"], ["id"], ondelete="SET NULL")
        return
    op.add_column(
        table,
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailboxes.id", name=name, ondelete="SET NULL"),
        ),
    )


def _mailboxes_from_sequences(mailboxes: sa.Table, links: sa.Table) -> None:
    """One mailbox per distinct From address of a workspace (a few rows: one per sequence)."""
    db = op.get_bind()
    s = sa.table(
        "sequences",
        sa.column("id", sa.Integer),
        sa.column("workspace_id", sa.Integer),
        sa.column("from_address", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    made: dict[tuple[int, str], int] = {}
    for sequence_id, workspace_id, raw, created_at in db.execute(
        sa.select(s.c.id, s.c.workspace_id, s.c.from_address, s.c.created_at).order_by(s.c.id)
    ).all():
        if not (raw or "").strip():
            continue
        address, name = _canonical(raw)
        key = (workspace_id, address)
        if key not in made:
            made[key] = db.execute(
                mailboxes.insert()
                .values(
                    workspace_id=workspace_id,
                    address=address,
                    display_name=name,
                    signature="",
                    daily_limit=None,
                    min_gap_seconds=0,
                    gap_jitter=0.0,
                    time_zone="UTC",
                    status="active",
                    pause_reason="",
                    sends_today=0,
                    created_at=created_at,
                    updated_at=created_at,
                )
                .returning(mailboxes.c.id)
            ).scalar_one()
        db.execute(links.insert().values(sequence_id=sequence_id, mailbox_id=made[key]))
    e = sa.table("enrollments", sa.column("sequence_id", sa.Integer), sa.column("mailbox_id"))
    db.execute(
        e.update().values(
            mailbox_id=sa.select(links.c.mailbox_id)
            .where(links.c.sequence_id == e.c.sequence_id)
            .scalar_subquery()
        )
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_emails_mailbox_handed", table_name="outbound_emails")
    with op.batch_alter_table("outbound_emails") as batch:
        batch.drop_constraint("fk_outbound_emails_mailbox_id_mailboxes", type_="foreignkey")
        batch.drop_column("mailbox_id")
    op.drop_index("ix_enrollments_mailbox_status", table_name="enrollments")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_constraint("fk_enrollments_mailbox_id_mailboxes", type_="foreignkey")
        batch.drop_column("mailbox_id")
    op.drop_index("ix_sequence_mailboxes_mailbox", table_name="sequence_mailboxes")
    op.drop_table("sequence_mailboxes")
    op.drop_table("mailboxes")
    # In place (SQLite 3.35+): rebuilding workspaces would break the triggers that name it.
    for column in ("domain_complaint_pause_rate", "complaint_pause_rate", "bounce_pause_rate"):
        op.drop_column("workspaces", column)
