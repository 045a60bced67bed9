"""followup: the qualification stage a lead was handed off at (conversions by stage).

Revision ID: followup_0004
Revises: followup_0003
Create Date: 2026-12-02
"""

from alembic import op

revision = "followup_0004"
down_revision = "followup_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # From lead.assigned; NULL for clocks started before this column existed.
    op.execute("ALTER TABLE followup.clocks ADD COLUMN stage text")


def downgrade() -> None:
    op.execute("ALTER TABLE followup.clocks DROP COLUMN stage")
