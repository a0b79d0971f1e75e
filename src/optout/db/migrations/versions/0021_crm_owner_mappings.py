"""existing CRM connections read each person's owner, and HubSpot's time zone

Revision ID: 0021_crm_owner_mappings
Revises: 0020_mailbox_imap
Create Date: 2026-12-07 15:10:00

New connections map the record owner to a person's `owner` (HubSpot contacts'
`hubspot_owner_id`, Salesforce Leads' and Contacts' `OwnerId`) and HubSpot's
`hs_timezone` to the person's time zone. Existing connections get the same mappings,
unless they map something to that field already. Records synced before are filled when
they next change, or by a full sync.

Downgrade removes every mapping to the owner or the time zone (no earlier version could
make one).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_crm_owner_mappings"
down_revision = "0020_mailbox_imap"
branch_labels = None
depends_on = None

ADDED = (
    ("hubspot", "contacts", "hubspot_owner_id", "owner"),
    ("hubspot", "contacts", "hs_timezone", "time_zone"),
    ("salesforce", "Lead", "OwnerId", "owner"),
    ("salesforce", "Contact", "OwnerId", "owner"),
)

connections = sa.table("crm_connections", sa.column("id", sa.Integer), sa.column("kind", sa.String))
mappings = sa.table(
    "crm_field_mappings",
    sa.column("connection_id", sa.Integer),
    sa.column("crm_object", sa.String),
    sa.column("crm_field", sa.String),
    sa.column("our_field", sa.String),
    sa.column("mode", sa.String),
)


def upgrade() -> None:
    db = op.get_bind()
    for kind, crm_object, crm_field, our_field in ADDED:  # four statements, set-based each
        taken = sa.exists().where(
            mappings.c.connection_id == connections.c.id,
            mappings.c.crm_object == crm_object,
            mappings.c.our_field == our_field,
        )
        db.execute(
            mappings.insert().from_select(
                ["connection_id", "crm_object", "crm_field", "our_field", "mode"],
                sa.select(
                    connections.c.id,
                    sa.literal(crm_object, sa.String),
                    sa.literal(crm_field, sa.String),
                    sa.literal(our_field, sa.String),
                    sa.literal("read", sa.String),
                ).where(connections.c.kind == kind, ~taken),
            )
        )


def downgrade() -> None:
    op.get_bind().execute(mappings.delete().where(mappings.c.our_field.in_(("owner", "time_zone"))))
