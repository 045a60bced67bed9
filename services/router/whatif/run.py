"""The simulator's entry points (`baton simulate` and the admin API): load history, replay.

``simulate_policy_yaml`` is what ``POST /v1/admin/simulate`` calls (body: the proposed policy
YAML; query: since/until); an invalid policy is a 422 naming the bad field, like the loader.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.router.whatif.history import load_history
from services.router.whatif.simulate import SimulationReport, simulate
from shared.errors import DomainError
from shared.policy import Policy, PolicyError, parse_policy

_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class InvalidSimulation(DomainError):
    status = 422
    type_slug = "invalid-simulation"
    title = "Invalid simulation request"


def parse_when(value: str, *, now: datetime) -> datetime:
    """``30d`` / ``12h`` / ``2w`` / ``90m`` before ``now``, or an ISO date or datetime (UTC if naive)."""
    match = _RELATIVE.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidSimulation(
            f"'{value}' is neither a duration (30d, 12h, 2w, 90m) nor an ISO date"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def period(since: str, until: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    start = parse_when(since, now=now)
    end = parse_when(until, now=now) if until else now
    if end <= start:
        raise InvalidSimulation(f"the period is empty: {start.isoformat()} .. {end.isoformat()}")
    return start, end


async def run_simulation(
    session: AsyncSession, *, policy: Policy, since: datetime, until: datetime
) -> SimulationReport:
    """Replay ``[since, until)`` through ``policy``; reads only, writes nothing."""
    history = await load_history(session, since=since, until=until)
    return simulate(history, policy)


async def simulate_policy_yaml(
    session: AsyncSession, *, policy_yaml: bytes, since: datetime, until: datetime
) -> dict[str, Any]:
    """The admin endpoint's body: validate the proposed policy, replay, return the JSON report."""
    try:
        policy = parse_policy(policy_yaml.decode("utf-8"), content=policy_yaml)
    except UnicodeDecodeError:
        raise InvalidSimulation("the policy must be UTF-8 YAML") from None
    except PolicyError as exc:
        raise InvalidSimulation(f"invalid policy: {exc}") from None
    report = await run_simulation(session, policy=policy, since=since, until=until)
    return report.as_dict()
