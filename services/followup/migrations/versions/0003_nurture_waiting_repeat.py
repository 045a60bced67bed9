"""followup: re-engagements without an owner (nurture by policy), parked leads' waiting
clocks, repeated escalation levels and activity reason codes.

Revision ID: followup_0003
Revises: followup_0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "followup_0003"
down_revision = "followup_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A lead nurtured by policy has no owner; `event_id` is the lead.nurtured that scheduled the
    # row, so a redelivered event never re-arms a re-engagement already sent.
    op.execute(
        "ALTER TABLE followup.reengagements ALTER COLUMN owner DROP NOT NULL, "
        "ADD COLUMN event_id text"
    )
    # One waiting clock per lead: parked (nobody eligible) until assigned, disqualified or merged.
    op.execute(
        """
        CREATE TABLE followup.waiting (
            lead_id uuid PRIMARY KEY,
            event_id text NOT NULL,
            team_id text NOT NULL,
            manager jsonb,
            wait_seconds int NOT NULL,
            clock text NOT NULL,
            parked_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            status text NOT NULL,
            escalated_at timestamptz,
            closed_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX waiting_due ON followup.waiting (due_at) WHERE status = 'open'")
    # A repeating last level fires once per repetition: the key gains the repetition number.
    op.execute(
        "ALTER TABLE followup.escalations ADD COLUMN repetition int NOT NULL DEFAULT 0, "
        "DROP CONSTRAINT escalations_pkey, "
        "ADD PRIMARY KEY (lead_id, assignment_seq, level, repetition)"
    )
    # `rejected` / `disqualified` carry a reason code from the policy's feedback.reasons.
    op.execute("ALTER TABLE followup.activities ADD COLUMN reason text")


def downgrade() -> None:
    op.execute("ALTER TABLE followup.activities DROP COLUMN reason")
    op.execute("DELETE FROM followup.escalations WHERE repetition > 0")
    op.execute(
        "ALTER TABLE followup.escalations DROP CONSTRAINT escalations_pkey, "
        "DROP COLUMN repetition, ADD PRIMARY KEY (lead_id, assignment_seq, level)"
    )
    op.execute("DROP TABLE followup.waiting")
    op.execute("DELETE FROM followup.reengagements WHERE owner IS NULL")
    op.execute(
        "ALTER TABLE followup.reengagements DROP COLUMN event_id, ALTER COLUMN owner SET NOT NULL"
    )
