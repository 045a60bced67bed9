"""router: remember erased contacts (as one-way digests) so a lead still in flight is erased.

A lead submitted just before its contact was erased may reach the router only afterwards (its
`lead.received` was still in Kafka). The erasure records a SHA-256 digest of the contact's
normalised e-mail and phone with its time; a lead received before that time whose contact
matches is erased on arrival instead of routed. Entries are dropped by `baton purge` once
Kafka's retention guarantees no such event is left.

Revision ID: router_0004
Revises: router_0003
Create Date: 2026-11-27
"""

from alembic import op

revision = "router_0004"
down_revision = "router_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE router.erased_contacts (
            digest text PRIMARY KEY,  -- hex SHA-256 of 'email:<e-mail>' / 'phone:<E.164>'
            erasure_id uuid NOT NULL,
            erased_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE router.erased_contacts")
