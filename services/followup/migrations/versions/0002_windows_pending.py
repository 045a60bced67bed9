"""followup: SLA window history (completion rate) and pending activities (dead-letter).

Revision ID: followup_0002
Revises: followup_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "followup_0002"
down_revision = "followup_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (lead, assignment): the clock table keeps only the latest assignment, but the
    # completion rate must count a breached first owner even after the lead was reassigned.
    op.execute(
        """
        CREATE TABLE followup.windows (
            lead_id uuid NOT NULL,
            assignment_seq int NOT NULL,
            team_id text NOT NULL,
            tier text NOT NULL,
            started_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            touched_at timestamptz,
            PRIMARY KEY (lead_id, assignment_seq)
        )
        """
    )
    op.execute("CREATE INDEX windows_due ON followup.windows (due_at) INCLUDE (touched_at)")
    op.execute(
        """
        INSERT INTO followup.windows
            (lead_id, assignment_seq, team_id, tier, started_at, due_at, touched_at)
        SELECT lead_id, assignment_seq, team_id, tier, started_at, due_at,
               coalesce(contacted_at, CASE WHEN status IN ('closed', 'nurture', 'rejected')
                                           THEN closed_at END)
        FROM followup.clocks
        """
    )
    # Activities for a lead not (yet) assigned wait as 'pending'; the ticker dead-letters those
    # still pending after the grace period. 'applied' = recorded against a clock.
    op.execute(
        "ALTER TABLE followup.activities ADD COLUMN state text NOT NULL DEFAULT 'applied', "
        "ADD COLUMN source_event_id text"
    )
    op.execute(
        "CREATE INDEX activities_pending ON followup.activities (recorded_at) "
        "WHERE state = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX followup.activities_pending")
    op.execute("ALTER TABLE followup.activities DROP COLUMN state, DROP COLUMN source_event_id")
    op.execute("DROP TABLE followup.windows")
