"""router schema: leads and their decisions, assignments, rep state, accounts, outbox/inbox.

Revision ID: router_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from shared.migrations import create_plumbing

revision = "router_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing(op, "router")  # type: ignore[arg-type]
    op.execute(
        """
        CREATE TABLE router.leads (
            lead_id uuid PRIMARY KEY,
            source text NOT NULL,
            received_at timestamptz NOT NULL,
            email text,
            phone text,
            company_domain text,
            status text NOT NULL,
            owner_id text,
            team_id text,
            assignment_seq int NOT NULL DEFAULT 0,
            merged_into uuid,
            score int,
            tier text,
            stage text,
            policy_version text NOT NULL,
            lead jsonb NOT NULL,
            open_until timestamptz,
            closed_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX leads_email_open ON router.leads (email) WHERE closed_at IS NULL")
    op.execute("CREATE INDEX leads_phone_open ON router.leads (phone) WHERE closed_at IS NULL")
    op.execute("CREATE INDEX leads_domain ON router.leads (company_domain)")
    op.execute("CREATE INDEX leads_received_at ON router.leads (received_at)")
    op.execute(
        """
        CREATE TABLE router.assignments (
            lead_id uuid NOT NULL REFERENCES router.leads (lead_id),
            seq int NOT NULL,
            owner_id text NOT NULL,
            team_id text NOT NULL,
            rule_id text NOT NULL,
            strategy text NOT NULL,
            reason text NOT NULL,
            previous_owner_id text,
            assigned_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            policy_version text NOT NULL,
            PRIMARY KEY (lead_id, seq)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE router.decisions (
            id bigserial PRIMARY KEY,
            lead_id uuid NOT NULL,
            kind text NOT NULL,
            policy_version text NOT NULL,
            at timestamptz NOT NULL,
            trace jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX decisions_lead ON router.decisions (lead_id, id)")
    op.execute(
        """
        CREATE TABLE router.rep_state (
            rep_id text PRIMARY KEY,
            open_leads int NOT NULL DEFAULT 0 CHECK (open_leads >= 0),
            rr_current_weight int NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE router.accounts (
            domain text PRIMARY KEY,
            owner_id text NOT NULL,
            first_lead_id uuid,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA router CASCADE")
