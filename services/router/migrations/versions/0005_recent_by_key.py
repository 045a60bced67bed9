"""router: look up a contact's or account's newest leads without reading all of them.

A decision lists the ten newest earlier leads sharing the lead's e-mail, phone or business
domain. With single-column indexes that meant fetching every lead of the key and sorting
them: for a company with thousands of leads, thousands of rows per decision, growing with
the account. With (key, received_at DESC, lead_id DESC) each key gives its ten newest
straight off the index, whatever the account's size. They replace the single-column
indexes, which they also serve for equality look-ups (erasure, the open-lead check).

Revision ID: router_0005
Revises: router_0004
Create Date: 2026-11-27
"""

from alembic import op

revision = "router_0005"
down_revision = "router_0004"
branch_labels = None
depends_on = None

_KEYS = {"email": "leads_email", "phone": "leads_phone", "company_domain": "leads_domain"}


def upgrade() -> None:
    for column, old in _KEYS.items():
        op.execute(
            f"CREATE INDEX {old}_recent ON router.leads ({column}, received_at DESC, lead_id DESC) "
            f"WHERE {column} IS NOT NULL"
        )
        op.execute(f"DROP INDEX IF EXISTS router.{old}")


def downgrade() -> None:
    op.execute("CREATE INDEX leads_email ON router.leads (email) WHERE email IS NOT NULL")
    op.execute("CREATE INDEX leads_phone ON router.leads (phone) WHERE phone IS NOT NULL")
    op.execute("CREATE INDEX leads_domain ON router.leads (company_domain)")
    for old in _KEYS.values():
        op.execute(f"DROP INDEX router.{old}_recent")
