"""router: erasure marks on leads and the erasure log (ids only, no personal data).

Revision ID: router_0002
Revises: router_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "router_0002"
down_revision = "router_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE router.leads ADD COLUMN erased_at timestamptz")
    # Retention finds the leads still holding personal data, oldest first.
    op.execute(
        "CREATE INDEX leads_unerased_received ON router.leads (received_at) WHERE erased_at IS NULL"
    )
    # Erasure finds every lead of a contact, open or closed (the 0001 indexes cover open ones).
    op.execute("CREATE INDEX leads_email ON router.leads (email) WHERE email IS NOT NULL")
    op.execute("CREATE INDEX leads_phone ON router.leads (phone) WHERE phone IS NOT NULL")
    op.execute(
        """
        CREATE TABLE router.erasures (
            erasure_id uuid PRIMARY KEY,
            reason text NOT NULL CHECK (reason IN ('request', 'retention')),
            lead_ids uuid[] NOT NULL,
            erased_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE router.erasures")
    op.execute("DROP INDEX router.leads_phone")
    op.execute("DROP INDEX router.leads_email")
    op.execute("DROP INDEX router.leads_unerased_received")
    op.execute("ALTER TABLE router.leads DROP COLUMN erased_at")
