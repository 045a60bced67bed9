"""notify schema: messages to deliver, their attempts, endpoint health, erased leads, inbox.

Revision ID: notify_0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from shared.migrations import create_plumbing

revision = "notify_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The outbox is unused (notify publishes nothing) but keeps the runtime's relay uniform.
    create_plumbing(op, "notify")  # type: ignore[arg-type]
    op.execute(
        """
        CREATE TABLE notify.messages (
            id uuid PRIMARY KEY,
            seq bigserial NOT NULL,
            event_id text NOT NULL,
            event_type text NOT NULL,
            lead_id text,
            channel text NOT NULL,
            target text NOT NULL,
            endpoint text NOT NULL
                GENERATED ALWAYS AS (CASE WHEN channel = 'webhook' THEN target ELSE channel END)
                STORED,
            kind text NOT NULL,
            body jsonb NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
            attempts int NOT NULL DEFAULT 0,
            step int NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            last_status int,
            last_error text
        )
        """
    )
    # The dispatcher's claims: due pending messages of one endpoint, oldest first; the
    # earliest next time over everything pending.
    op.execute(
        "CREATE INDEX messages_due ON notify.messages (endpoint, next_attempt_at) "
        "WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX messages_next ON notify.messages (next_attempt_at) WHERE status = 'pending'"
    )
    # Per-lead order to one target: is there an older pending message of this (lead, target)?
    op.execute(
        "CREATE INDEX messages_lead_order ON notify.messages (lead_id, channel, target, seq) "
        "WHERE status = 'pending'"
    )
    op.execute("CREATE INDEX messages_lead ON notify.messages (lead_id)")
    op.execute("CREATE INDEX messages_replay ON notify.messages (endpoint, created_at)")
    op.execute(
        """
        CREATE TABLE notify.attempts (
            message_id uuid NOT NULL REFERENCES notify.messages (id) ON DELETE CASCADE,
            n int NOT NULL,
            at timestamptz NOT NULL,
            outcome text NOT NULL,
            status int,
            duration_seconds double precision NOT NULL,
            error text,
            PRIMARY KEY (message_id, n)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify.endpoints (
            name text PRIMARY KEY,
            last_success_at timestamptz,
            last_failure_at timestamptz,
            failing_since timestamptz,
            disabled_at timestamptz,
            disabled_reason text
        )
        """
    )
    # Leads whose contact was erased: a lead.assigned for one of them that arrives late (on
    # another topic than the erasure) plans nothing.
    op.execute(
        """
        CREATE TABLE notify.erased_leads (
            lead_id text PRIMARY KEY,
            erased_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA notify CASCADE")
