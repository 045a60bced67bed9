"""followup schema: SLA clocks, escalations, activities, re-engagements, outbox/inbox.

Revision ID: followup_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from shared.migrations import create_plumbing

revision = "followup_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing(op, "followup")  # type: ignore[arg-type]
    op.execute(
        """
        CREATE TABLE followup.clocks (
            lead_id uuid PRIMARY KEY,
            assignment_seq int NOT NULL,
            owner jsonb NOT NULL,
            manager jsonb,
            team_id text NOT NULL,
            tier text NOT NULL,
            window_seconds int NOT NULL,
            started_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            status text NOT NULL,
            next_level int,
            next_fire_at timestamptz,
            chain jsonb NOT NULL,
            contacted_at timestamptz,
            closed_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX clocks_due ON followup.clocks (next_fire_at) WHERE status = 'open'")
    op.execute(
        """
        CREATE TABLE followup.escalations (
            lead_id uuid NOT NULL,
            assignment_seq int NOT NULL,
            level int NOT NULL,
            action text NOT NULL,
            team_id text NOT NULL,
            due_at timestamptz NOT NULL,
            fired_at timestamptz NOT NULL,
            seconds_late double precision NOT NULL,
            PRIMARY KEY (lead_id, assignment_seq, level)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE followup.activities (
            activity_id text PRIMARY KEY,
            lead_id uuid NOT NULL,
            type text NOT NULL,
            at timestamptz NOT NULL,
            actor text NOT NULL,
            note text,
            reengage_at timestamptz,
            other_owner boolean NOT NULL DEFAULT false,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX activities_lead ON followup.activities (lead_id, at)")
    op.execute(
        """
        CREATE TABLE followup.reengagements (
            lead_id uuid PRIMARY KEY,
            owner jsonb NOT NULL,
            reengage_at timestamptz NOT NULL,
            note text,
            status text NOT NULL DEFAULT 'pending'
        )
        """
    )
    op.execute(
        "CREATE INDEX reengage_due ON followup.reengagements (reengage_at) WHERE status = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA followup CASCADE")
