"""The services Baton is made of: the one list `baton serve`, `baton migrate`, `baton docs` and
`make run` walk. Each name is a package `services/<name>` with its own schema and Alembic tree."""

from __future__ import annotations

SERVICES: tuple[str, ...] = ("intake", "router", "followup", "notify")
