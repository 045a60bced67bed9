"""router: fewer indexes to maintain per decision; a small index for parked leads.

The open-lead look-up (`email = … OR phone = …` plus open filters) is served by the 0002
`leads_email` / `leads_phone` indexes, so the 0001 partial copies over open leads only cost
two more index inserts per lead. Parked (unassigned) leads are looked up every few seconds in
arrival order; a partial index keeps that look-up and its count at the size of the parked set
instead of scanning every lead.

Revision ID: router_0003
Revises: router_0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "router_0003"
down_revision = "router_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS router.leads_email_open")
    op.execute("DROP INDEX IF EXISTS router.leads_phone_open")
    op.execute(
        "CREATE INDEX leads_parked ON router.leads (received_at) WHERE status = 'unassigned'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX router.leads_parked")
    op.execute("CREATE INDEX leads_phone_open ON router.leads (phone) WHERE closed_at IS NULL")
    op.execute("CREATE INDEX leads_email_open ON router.leads (email) WHERE closed_at IS NULL")
