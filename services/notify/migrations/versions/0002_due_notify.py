"""notify: wake every instance's dispatcher when messages are stored (LISTEN/NOTIFY).

Revision ID: notify_0002
Revises: notify_0001
Create Date: 2026-12-02
"""

from alembic import op

revision = "notify_0002"
down_revision = "notify_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Statement-level and on INSERT only: one notification per consumer batch. Claims and
    # attempt records (UPDATEs, hundreds a second) wake nobody; the admin API's replay and
    # enable send their own pg_notify.
    op.execute(
        """
        CREATE FUNCTION notify.messages_due() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('baton_notify_due', ''); RETURN NULL; END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER messages_due AFTER INSERT ON notify.messages
        FOR EACH STATEMENT EXECUTE FUNCTION notify.messages_due()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER messages_due ON notify.messages")
    op.execute("DROP FUNCTION notify.messages_due()")
