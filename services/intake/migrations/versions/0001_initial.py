"""intake schema: leads, idempotency keys, outbox/inbox.

Revision ID: intake_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from shared.migrations import create_plumbing

revision = "intake_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing(op, "intake")  # type: ignore[arg-type]
    op.execute(
        """
        CREATE TABLE intake.leads (
            lead_id uuid PRIMARY KEY,
            source text NOT NULL,
            channel text NOT NULL,
            received_at timestamptz NOT NULL,
            lead jsonb NOT NULL,
            erased_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX leads_received_at ON intake.leads (received_at)")
    op.execute(
        """
        CREATE TABLE intake.idempotency (
            source text NOT NULL,
            key text NOT NULL,
            lead_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, key)
        )
        """
    )
    op.execute("CREATE INDEX idempotency_created_at ON intake.idempotency (created_at)")


def downgrade() -> None:
    op.execute("DROP SCHEMA intake CASCADE")
