"""each mailbox's own IMAP login, so replies come back to the rep's own mailbox

Revision ID: 0020_mailbox_imap
Revises: 0019_automatic_enrollment
Create Date: 2026-12-07 14:30:00

A mailbox may name the IMAP server its replies arrive at: host, port, login, whether to
use TLS, the folder to read, and the password, kept encrypted like the CRM secrets. The
inbound poller reads every mailbox that has them. All are empty for existing mailboxes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_mailbox_imap"
down_revision = "0019_automatic_enrollment"
branch_labels = None
depends_on = None

COLUMNS = ("imap_host", "imap_port", "imap_user", "imap_password", "imap_ssl", "imap_folder")


def upgrade() -> None:
    op.add_column("mailboxes", sa.Column("imap_host", sa.String(255), nullable=True))
    op.add_column("mailboxes", sa.Column("imap_port", sa.Integer(), nullable=True))
    op.add_column("mailboxes", sa.Column("imap_user", sa.String(320), nullable=True))
    op.add_column("mailboxes", sa.Column("imap_password", sa.Text(), nullable=True))
    op.add_column(
        "mailboxes",
        sa.Column("imap_ssl", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "mailboxes",
        sa.Column("imap_folder", sa.String(200), nullable=False, server_default="INBOX"),
    )


def downgrade() -> None:
    # Plain DROP COLUMN, not a batch copy: on SQLite a copy drops the old table, and the
    # cascades of its references would clear the mailbox of every enrollment and email.
    for column in reversed(COLUMNS):
        op.execute(f"ALTER TABLE mailboxes DROP COLUMN {column}")
