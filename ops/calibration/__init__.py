"""Closing the scoring loop: outcomes per score band, stage, source and rule, rejections by
reason, cost per qualified opportunity, a suggested threshold, its gauges and its PNG plot.

``queries`` reads leads and their activities (router and followup schemas, read-only);
``report`` computes (pure); ``plot`` draws the PNG; ``metrics`` sets the gauges.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ops.calibration.queries import load_outcomes
from ops.calibration.report import CalibrationReport, calibrate
from shared.policy import Policy


async def run_calibration(
    session: AsyncSession,
    *,
    policy: Policy,
    since: datetime,
    until: datetime,
    keep: float = 1.0,
) -> CalibrationReport:
    """The report for leads received in ``[since, until)``; reads only, writes nothing."""
    rows = await load_outcomes(session, since=since, until=until)
    return calibrate(rows, policy, since=since, until=until, keep=keep)
