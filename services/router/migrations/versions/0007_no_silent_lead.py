"""router: no silent lead and capacity that stays true.

- `pending_reassignments`: a reassignment that found nobody (an escalation `reassign`, a
  rejection, an owner's out-of-office start) waits here and is retried by the ticker.
- `rep_state.missed_slas`, `paused_at`, `paused_reason`: consecutive missed SLAs and the pause
  they lead to (read with the rest of the rep state, so eligibility costs no extra read).
- `leads.contacted_at`: the first `contacted` activity the router saw (an out-of-office start
  reassigns only leads nobody has contacted yet).
- `ooo_handled`: one row per out-of-office period already acted on (idempotent ticker).
- `leads_open_by_owner`: open leads per owner, for the load reconcile and the out-of-office
  look-up (one small partial index entry per assigned lead).

Revision ID: router_0007
Revises: router_0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "router_0007"
down_revision = "router_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE router.pending_reassignments (
            lead_id uuid PRIMARY KEY REFERENCES router.leads (lead_id),
            seq int NOT NULL,
            exclude_rep text,
            reason text NOT NULL,
            created_at timestamptz NOT NULL,
            attempts int NOT NULL DEFAULT 0
        )
        """
    )
    op.execute("ALTER TABLE router.rep_state ADD COLUMN missed_slas int NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE router.rep_state ADD COLUMN paused_at timestamptz")
    op.execute("ALTER TABLE router.rep_state ADD COLUMN paused_reason text")
    op.execute("ALTER TABLE router.leads ADD COLUMN contacted_at timestamptz")
    op.execute(
        """
        CREATE TABLE router.ooo_handled (
            rep_id text NOT NULL,
            starts_at timestamptz NOT NULL,
            handled_at timestamptz NOT NULL,
            leads int NOT NULL,
            PRIMARY KEY (rep_id, starts_at)
        )
        """
    )
    op.execute(
        "CREATE INDEX leads_open_by_owner ON router.leads (owner_id) "
        "WHERE status = 'assigned' AND closed_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX router.leads_open_by_owner")
    op.execute("DROP TABLE router.ooo_handled")
    op.execute("ALTER TABLE router.leads DROP COLUMN contacted_at")
    op.execute("ALTER TABLE router.rep_state DROP COLUMN paused_reason")
    op.execute("ALTER TABLE router.rep_state DROP COLUMN paused_at")
    op.execute("ALTER TABLE router.rep_state DROP COLUMN missed_slas")
    op.execute("DROP TABLE router.pending_reassignments")
