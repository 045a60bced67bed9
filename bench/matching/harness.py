"""Run generated submissions through the real intake and router and score the merges.

    python -m bench.matching [--seed 18] [--people 120] [--out FILE]     (make bench-matching)

Needs the local stack (`make stack`). Like `make bench`, it clones a migrated database and
uses topics with a fresh prefix, starts intake and the router as processes on the example
policy made fit for a bench (every rep on duty with room, no rate limit on signed sources,
SLA windows of a day: nothing is reassigned mid-run), sends the touches one at a time in
order (each waits for the router's decision, so a run is deterministic), and drops it all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from bench.common import (
    BenchDatabases,
    bench_policy,
    bench_secrets,
    delete_topics,
    machine,
    make_env,
)
from bench.matching.generator import Touch, generate
from bench.matching.metrics import Outcome, leads_of, pairwise, recall_by_kind
from bench.payloads import sign_standard_webhooks

SECRET_OF = {"chat-widget": "BATON_SECRET_CHAT_WIDGET", "hubspot-forms": "BATON_SECRET_HUBSPOT"}


def signed(touch: Touch, url: str, secret: str) -> tuple[bytes, dict[str, str]]:
    """The touch's body and the headers its source signs it with (Standard Webhooks for the
    chat widget, HubSpot's v3 signature over method + URL + body + timestamp)."""
    body = orjson.dumps(touch.payload())
    headers = {"content-type": "application/json"}
    if touch.source == "chat-widget":
        msg_id, ts = f"msg_match_{uuid.uuid4().hex}", int(time.time())
        headers.update(
            {
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign_standard_webhooks(secret, msg_id, ts, body),
            }
        )
    else:
        ts_ms = str(int(time.time() * 1000))
        mac = hmac.new(
            secret.encode(), b"POST" + url.encode() + body + ts_ms.encode(), hashlib.sha256
        )
        headers.update(
            {
                "X-HubSpot-Signature-v3": base64.b64encode(mac.digest()).decode(),
                "X-HubSpot-Request-Timestamp": ts_ms,
            }
        )
    return body, headers


async def send_all(
    touches: Sequence[Touch],
    *,
    intake_url: str,
    secrets: Mapping[str, str],
    bootstrap: str,
    assigned_topic: str,
    timeout_s: float = 30.0,
) -> list[Outcome]:
    """Post each touch to intake and wait for the router's decision on it before the next."""
    decided: dict[str, dict[str, Any]] = {}
    consumer = AIOKafkaConsumer(
        assigned_topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        group_id=None, enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    outcomes: list[Outcome] = []
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            for touch in touches:
                url = f"{intake_url}/v1/webhooks/{touch.source}"
                body, headers = signed(touch, url, secrets[SECRET_OF[touch.source]].split()[0])
                resp = await client.post(url, content=body, headers=headers)
                if resp.status_code != 202:
                    outcomes.append(Outcome(touch.index, None, f"refused:{resp.status_code}"))
                    continue
                lead_id = str(resp.json()["lead_id"])
                deadline = time.monotonic() + timeout_s
                while lead_id not in decided:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no decision for touch {touch.index} in {timeout_s}s")
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            event = orjson.loads(record.value)
                            decided.setdefault(str(event["subject"]), event)
                event = decided[lead_id]
                into = event["data"].get("into_lead_id") if event["type"] == "lead.merged" else None
                outcomes.append(Outcome(touch.index, lead_id, str(event["type"]), into))
    finally:
        await consumer.stop()
    return outcomes


def report(touches: Sequence[Touch], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    predicted = leads_of(outcomes)
    scores = pairwise({t.index: t.person for t in touches}, predicted)
    kinds = recall_by_kind(touches, predicted)
    events: dict[str, int] = {}
    for o in outcomes:
        events[o.event_type or "none"] = events.get(o.event_type or "none", 0) + 1
    return {
        "touches": len(touches),
        "people": len({t.person for t in touches}),
        **asdict(scores),
        "events": dict(sorted(events.items())),
        "recall_by_kind": {k: {"linked": a, "repeats": b} for k, (a, b) in kinds.items()},
    }


def render(result: Mapping[str, Any]) -> str:
    lines = [
        f"matching: {result['touches']} touches from {result['people']} people (seed "
        f"{result['seed']})",
        f"  pairwise precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
        f"({result['correct_pairs']} of {result['true_pairs']} true pairs found, "
        f"{result['predicted_pairs']} predicted)",
        "  decisions: " + ", ".join(f"{k} {v}" for k, v in result["events"].items()),
        "  repeat touches linked to the person's earlier touches, by kind of mess:",
    ]
    for kind, c in result["recall_by_kind"].items():
        lines.append(f"    {kind:22} {c['linked']:4} / {c['repeats']:<4}")
    return "\n".join(lines)


def run(seed: int, n_people: int) -> dict[str, Any]:
    from shared.settings import Settings

    touches = generate(seed, n_people)
    base = Settings().database_url
    dbs = BenchDatabases(base, f"m{uuid.uuid4().hex[:6]}")
    procs = []
    with tempfile.TemporaryDirectory(prefix="baton-matching-") as tmp:
        logdir = Path(tmp)
        secrets = bench_secrets()
        try:
            dbs.prepare()
            env = make_env(dbs, "matching", logdir, bench_policy(logdir / "policy.yaml"), secrets)
            try:
                procs = [env.service("router"), env.service("intake")]
                outcomes = asyncio.run(
                    send_all(
                        touches,
                        intake_url=procs[1].url,
                        secrets=secrets,
                        bootstrap=env.bootstrap,
                        assigned_topic=env.topics["leads_assigned"],
                    )
                )
            finally:
                for proc in procs:
                    proc.stop()
                asyncio.run(delete_topics(env.bootstrap, list(env.topics.values())))
        finally:
            dbs.drop_all()
    return {"seed": seed, **report(touches, outcomes), "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--people", type=int, default=120)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.seed, args.people)
    print(render(result))
    if args.out:
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
