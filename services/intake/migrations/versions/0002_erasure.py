"""intake: index for retention (leads still holding personal data, oldest first).

Revision ID: intake_0002
Revises: intake_0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX leads_unerased_received ON intake.leads (received_at) WHERE erased_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX intake.leads_unerased_received")
