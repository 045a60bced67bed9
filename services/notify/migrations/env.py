"""Alembic environment: the shared runner applies this service's tree in its own schema."""

from alembic import context

from shared.migrations import run_env

run_env(context)
