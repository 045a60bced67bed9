"""`make demo`: submit a handful of leads to a running `make run` and print their assignments."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from standardwebhooks.webhooks import Webhook

INTAKE = f"http://127.0.0.1:{os.environ.get('INTAKE_PORT', '8001')}"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOPIC = os.environ.get("TOPIC_LEADS_ASSIGNED", "leads.assigned")


def tag() -> str:
    return uuid.uuid4().hex[:6]


FORMS = [
    {
        "email": f"ada.{tag()}@acme-industries.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "job_title": "VP Engineering",
        "company_size": "1200",
        "country": "DE",
        "demo_request": "yes",
        "consent": "yes",
    },
    {
        "email": f"sam.{tag()}@smallshop.io",
        "first_name": "Sam",
        "last_name": "Rivera",
        "job_title": "Operations Manager",
        "company_size": "40",
        "country": "US",
        "consent": "yes",
    },
    {
        "email": f"lee.{tag()}@gmail.com",
        "first_name": "Lee",
        "job_title": "Student",
        "country": "GB",
    },
    {"email": f"kim.{tag()}@rival.example", "first_name": "Kim", "job_title": "Analyst"},
]


def chat_lead() -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(
        {
            "visitor": {
                "email": f"noor.{tag()}@northwind-traders.com",
                "first_name": "Noor",
                "title": "Director of Sales",
                "country": "FR",
                "marketing_opt_in": True,
            },
            "conversation": {
                "first_message": "Can we get pricing for 200 seats?",
                "has_message": True,
            },
            "session": {"pages_viewed": ["/pricing", "/enterprise"], "visited_pricing": True},
        }
    )
    msg_id = f"msg_{uuid.uuid4().hex}"
    ts = datetime.now(UTC)
    sig = Webhook(os.environ["BATON_SECRET_CHAT_WIDGET"]).sign(msg_id, ts, body.decode())
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(ts.timestamp())),
        "webhook-signature": sig,
        "content-type": "application/json",
    }


async def main() -> None:
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=BOOTSTRAP, auto_offset_reset="latest", group_id=None
    )
    await consumer.start()
    await consumer.seek_to_end()
    lead_ids: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for form in FORMS:
            r = await http.post(
                f"{INTAKE}/v1/webhooks/website-demo",
                data=form,
                headers={"Origin": "http://localhost:8001"},
            )
            print(f"POST website-demo -> {r.status_code} {r.text}")
            if r.status_code == 202:
                lead_ids[r.json()["lead_id"]] = time.monotonic()
        body, headers = chat_lead()
        r = await http.post(f"{INTAKE}/v1/webhooks/chat-widget", content=body, headers=headers)
        print(f"POST chat-widget  -> {r.status_code} {r.text}")
        if r.status_code == 202:
            lead_ids[r.json()["lead_id"]] = time.monotonic()
    print(f"\nEvents on {TOPIC}:")
    pending = set(lead_ids)
    deadline = time.monotonic() + 15
    try:
        while pending and time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                for msg in msgs:
                    event = orjson.loads(msg.value)
                    if event["subject"] not in pending:
                        continue
                    pending.discard(event["subject"])
                    took = (time.monotonic() - lead_ids[event["subject"]]) * 1000
                    d = event["data"]
                    if event["type"] == "lead.assigned":
                        print(
                            f"- {event['type']} {d['lead_id']} -> {d['owner']['name']} "
                            f"({d['team']['name']}), score {d['score']} {d['tier']}/{d['stage']}, "
                            f"SLA {d['sla']['window_seconds']}s due {d['sla']['due_at']}, "
                            f"rule {d['routing']['rule_id']} [{took:.0f} ms]"
                        )
                        for line in d["explanation"][-3:]:
                            print(f"    {line}")
                    else:
                        print(
                            f"- {event['type']} {event['subject']}: "
                            f"{d.get('reason') or d.get('into_lead_id')} [{took:.0f} ms]"
                        )
    finally:
        await consumer.stop()
    if pending:
        print(f"{len(pending)} lead(s) produced no event within 15 s")


if __name__ == "__main__":
    asyncio.run(main())
