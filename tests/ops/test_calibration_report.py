"""The calibration report on a generated year of leads with known outcomes (real PostgreSQL,
rows inserted in the test's rolled-back transaction): it must recover the planted threshold."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ops.calibration import run_calibration
from ops.calibration.metrics import calibration_gauges
from ops.calibration.plot import BLUE, RED, plot_png
from ops.calibration.report import render_text
from shared.settings import Settings
from tests.router.whatif.synthetic import THRESHOLD, Synth, generate, policy_data, to_policy

pytestmark = pytest.mark.integration

SINCE = datetime(2019, 1, 1, tzinfo=UTC)
UNTIL = datetime(2020, 1, 1, tzinfo=UTC)


def _rule(s: Synth) -> str:
    size = s.lead["company_size"]
    return "enterprise" if size and size >= 500 else "smb" if size else "default"


async def _insert(db: AsyncSession, leads: list[Synth], tag: str) -> dict[str, int]:
    policy = to_policy(policy_data(tag))
    q = policy.qualification
    lead_rows, assignment_rows, activity_rows = [], [], []
    for i, s in enumerate(leads):
        merged = i % 50 == 49 and not s.disqualified
        status = "disqualified" if s.disqualified else "merged" if merged else "assigned"
        lead_rows.append(
            {
                "id": s.lead_id,
                "source": s.lead["source"],
                "at": s.received_at,
                "status": status,
                "owner": None if status != "assigned" else f"rep-{i % 3}",
                "score": None if merged else s.score,
                "tier": None if merged else q.tier_for_score(s.score),
                "stage": None if merged else q.stage_for_score(s.score),
                "lead": orjson.dumps(s.lead).decode(),
            }
        )
        if status != "assigned":
            continue
        assignment_rows.append(
            {"id": s.lead_id, "owner": f"rep-{i % 3}", "rule": _rule(s), "at": s.received_at}
        )
        for n, (kind, at, note) in enumerate(s.activities):
            activity_rows.append(
                {"aid": f"{s.lead_id}-{n}", "id": s.lead_id, "t": kind, "at": at, "note": note}
            )
    await db.execute(
        text(
            "INSERT INTO router.leads (lead_id, source, received_at, status, owner_id, team_id, "
            "assignment_seq, score, tier, stage, policy_version, lead) VALUES (CAST(:id AS uuid),"
            " :source, :at, :status, :owner, 'team', 1, :score, :tier, :stage, 'v1', "
            "CAST(:lead AS jsonb))"
        ),
        lead_rows,
    )
    await db.execute(
        text(
            "INSERT INTO router.assignments (lead_id, seq, owner_id, team_id, rule_id, strategy, "
            "reason, assigned_at, due_at, policy_version) VALUES (CAST(:id AS uuid), 1, :owner, "
            "'team', :rule, 'round_robin', 'test', :at, :at, 'v1')"
        ),
        assignment_rows,
    )
    await db.execute(
        text(
            "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, note) "
            "VALUES (:aid, CAST(:id AS uuid), :t, :at, 'rep', :note)"
        ),
        activity_rows,
    )
    return {"leads": len(lead_rows), "assigned": len(assignment_rows)}


async def test_calibration_recovers_the_planted_threshold(db: AsyncSession) -> None:
    tag = "cal19"
    leads = generate(3000, tag=tag, seed=19, start=SINCE, end=UNTIL)
    counts = await _insert(db, leads, tag)
    policy = to_policy(policy_data(tag))

    report = await run_calibration(db, policy=policy, since=SINCE, until=UNTIL)

    handed = [
        s for i, s in enumerate(leads) if not s.disqualified and i % 50 != 49
    ]  # what _insert assigned
    assert len(handed) == counts["assigned"]
    converted = [s for s in handed if s.outcome == "converted"]
    assert min(s.score for s in converted) == THRESHOLD  # the data does plant it
    s = report.suggestion
    assert s is not None
    assert s.threshold == THRESHOLD
    assert s.conversions_kept == s.conversions_now == len(converted)
    assert s.handoffs_now == len(handed)
    assert s.handoffs_at_threshold == sum(1 for x in handed if x.score >= THRESHOLD)
    assert s.wasted_now - s.wasted_at_threshold == sum(1 for x in handed if x.score < THRESHOLD)

    assert report.leads == len(leads)
    merged = sum(1 for i, x in enumerate(leads) if i % 50 == 49 and not x.disqualified)
    assert report.outcomes["merged"] == merged > 0
    for band, rate in report.by_band.items():
        low = int(band.split("-")[0])
        if low + 9 < THRESHOLD:
            assert rate.converted == 0, band
        else:
            assert rate.converted > 0, band
    assert set(report.by_stage) == {"lead", "mql", "sql"}
    assert report.by_stage["sql"].conversion_rate > report.by_stage["mql"].conversion_rate
    assert set(report.by_rule) == {"enterprise", "smb", "default", "(screened out)"}
    assert report.by_rule["(screened out)"].handed_off == 0
    assert set(report.by_signal) == {"b1", "b2", "b4", "b8", "b16", "b32"}
    assert report.by_signal["b32"].conversion_rate > report.by_signal["b1"].conversion_rate

    planted = Counter(
        " ".join(note.split()).lower()
        for x in handed
        for kind, _, note in x.activities
        if kind == "rejected" and note
    )
    assert {k: sum(v.values()) for k, v in report.rejections.items()} == dict(planted)
    assert "no budget" in report.rejections  # "No budget" and "no budget" are one reason

    web = report.costs["web"]
    web_leads = sum(1 for x in leads if x.lead["source"] == "web")
    web_won = sum(1 for x in converted if x.lead["source"] == "web")
    assert (web.leads, web.opportunities) == (web_leads, web_won)
    assert web.cost_per_opportunity == pytest.approx(web_leads * 20.0 / web_won, abs=0.01)
    assert report.costs["events"].cost is None
    assert report.costs["events"].cost_per_opportunity is None

    text_report = render_text(report)
    assert f"Suggested handoff threshold: score >= {THRESHOLD} keeps" in text_report
    assert "no budget" in text_report
    as_json = orjson.loads(orjson.dumps(report.as_dict()))
    assert as_json["suggestion"]["threshold"] == THRESHOLD

    registry = CollectorRegistry()
    calibration_gauges(report, registry)
    assert registry.get_sample_value("baton_calibration_suggested_threshold_score") == THRESHOLD
    assert registry.get_sample_value(
        "baton_calibration_conversion_ratio", {"dimension": "band", "group": "000-009"}
    ) == pytest.approx(0.0)
    assert registry.get_sample_value(
        "baton_calibration_cost_per_opportunity", {"source": "web"}
    ) == pytest.approx(web.cost_per_opportunity or 0)

    png = plot_png(report)
    width, height, pixels = _decode(png)
    assert (width, height) == (800, 480)
    colours = Counter(pixels[i : i + 3] for i in range(0, len(pixels), 3))
    assert colours[bytes(RED)] > 300 and colours[bytes(BLUE)] > 1000


async def test_empty_period_has_no_suggestion(db: AsyncSession) -> None:
    policy = to_policy(policy_data("empty"))
    report = await run_calibration(
        db, policy=policy, since=datetime(1990, 1, 1, tzinfo=UTC), until=SINCE - timedelta(days=1)
    )
    assert report.leads == 0 and report.suggestion is None
    assert "none (no conversions recorded yet)" in render_text(report)
    assert plot_png(report).startswith(b"\x89PNG")


def _decode(png: bytes) -> tuple[int, int, bytes]:
    """Minimal PNG reader for the writer's own output (8-bit RGB, filter 0, one IDAT)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks[kind] = data
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * 3 + 1
    assert len(raw) == height * stride
    assert all(raw[y * stride] == 0 for y in range(height))
    return width, height, b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))


def test_calibration_cli_writes_prometheus_text(migrated: Settings, tmp_path: Path) -> None:
    """`baton report calibration --prom FILE` exposes the report as metrics (textfile format)."""
    out = tmp_path / "calibration.prom"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "report",
            "calibration",
            "--since",
            "3650d",
            "--prom",
            str(out),
        ],
        env={
            **os.environ,
            "DATABASE_URL": migrated.database_url,
            "POLICY_PATH": str(migrated.policy_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "# TYPE baton_calibration_conversion_ratio gauge" in text
