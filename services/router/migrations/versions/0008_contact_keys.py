"""router: identity keys per contact, so a touch finds the person behind any key it gives;
the lead as received kept aside once merged touches add facts to it (`leads.received_lead`).

`contact_keys`: one row per (lead, key) for every stored lead: its e-mail's matching key
(`e:` + `shared.identity.matching_email`: no `+tag`, no Gmail dots) and its E.164 phone
(`p:` + number), the lead the touch ended in (`target_id`: itself, or the lead it was merged
into), the e-mail key given with it (a phone seen with several is a shared line) and the
folded name (supporting evidence only). Written with each decision in the same statement;
read by `decision_inputs` through `contact_keys_recent` (the newest rows of a key first: the
only index that starts with the key, so the planner cannot pick another and sort); the
primary key serves erasure, by lead.
Personal data: an erasure deletes a lead's rows.

Backfill: existing leads' keys, the e-mail key derived in SQL as `matching_email` does it
(part before `+`, Gmail dots dropped, `googlemail.com` as `gmail.com`), no names.

Revision ID: router_0008
Revises: router_0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "router_0008"
down_revision = "router_0007"
branch_labels = None
depends_on = None

_EMAIL_KEY = """
    CASE WHEN email IS NULL THEN NULL ELSE 'e:' || (
        CASE WHEN split_part(email, '@', 2) IN ('gmail.com', 'googlemail.com')
             THEN coalesce(nullif(replace(coalesce(nullif(split_part(split_part(email, '@', 1),
                  '+', 1), ''), split_part(email, '@', 1)), '.', ''), ''),
                  split_part(email, '@', 1)) || '@gmail.com'
             ELSE coalesce(nullif(split_part(split_part(email, '@', 1), '+', 1), ''),
                  split_part(email, '@', 1)) || '@' || split_part(email, '@', 2)
        END) END
"""


def upgrade() -> None:
    # A merged touch's facts reach its open lead's document; the lead as it was received is
    # kept here the first time (the what-if replay decides on it), erased with the lead.
    op.execute("ALTER TABLE router.leads ADD COLUMN received_lead jsonb")
    op.execute(
        """
        CREATE TABLE router.contact_keys (
            key text NOT NULL,
            lead_id uuid NOT NULL,
            target_id uuid NOT NULL,
            email_key text,
            name text,
            at timestamptz NOT NULL,
            PRIMARY KEY (lead_id, key)
        )
        """
    )
    op.execute("CREATE INDEX contact_keys_recent ON router.contact_keys (key, at DESC)")
    op.execute(
        f"""
        INSERT INTO router.contact_keys (key, lead_id, target_id, email_key, name, at)
        SELECT k.key, l.lead_id, coalesce(l.merged_into, l.lead_id), l.ekey, NULL, l.received_at
        FROM (SELECT *, {_EMAIL_KEY} AS ekey FROM router.leads WHERE erased_at IS NULL) l
        CROSS JOIN LATERAL (VALUES (l.ekey), ('p:' || l.phone)) AS k (key)
        WHERE k.key IS NOT NULL
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE router.contact_keys")
    op.execute("ALTER TABLE router.leads DROP COLUMN received_lead")
