"""sent emails found by their Message-ID through an index

Revision ID: 0022_outbound_message_id_index
Revises: 0021_crm_owner_mappings
Create Date: 2026-12-07 18:00:00

Inbound mail is matched to the email it answers by the Message-IDs it names
(`In-Reply-To`, `References`, a bounce's or a complaint's returned message). Without an
index on `outbound_emails.message_id` each match read every sent email of the
installation, which grows with every email sent.
"""

from __future__ import annotations

from alembic import op

revision = "0022_outbound_message_id_index"
down_revision = "0021_crm_owner_mappings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbound_emails_message_id", "outbound_emails", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbound_emails_message_id", table_name="outbound_emails")
