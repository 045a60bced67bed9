"""Drive a running `make run` with a few minutes of demo traffic and contacts, for the dashboard.

Posts form and chat leads at a steady pace, then, like reps would, reports a `contacted`
activity for most assigned leads (some late), so every dashboard panel has real data.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, os.path.dirname(__file__))
from demo import FORMS, INTAKE, chat_lead

FOLLOWUP = f"http://127.0.0.1:{os.environ.get('FOLLOWUP_PORT', '8003')}"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


async def contact_assigned(stop: asyncio.Event, token: str) -> None:
    consumer = AIOKafkaConsumer(
        "leads.assigned", bootstrap_servers=BOOTSTRAP, group_id=None, auto_offset_reset="latest"
    )
    await consumer.start()
    rnd = random.Random(7)
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            while not stop.is_set():
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    for msg in msgs:
                        event = orjson.loads(msg.value)
                        if event["type"] != "lead.assigned" or rnd.random() < 0.2:
                            continue  # some leads are never touched: they escalate
                        data = event["data"]
                        await asyncio.sleep(rnd.uniform(0, 3))
                        await http.post(
                            f"{FOLLOWUP}/v1/leads/{data['lead_id']}/activities",
                            headers={"Authorization": f"Bearer {token}"},
                            json={
                                "type": "contacted",
                                "actor": data["owner"]["id"],
                                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            },
                        )
        finally:
            await consumer.stop()


async def main(minutes: float) -> None:
    stop = asyncio.Event()
    contacts = asyncio.create_task(contact_assigned(stop, os.environ["BATON_DEMO_TOKEN"]))
    rnd = random.Random(11)
    end = time.monotonic() + minutes * 60
    sent = 0
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < end:
            if rnd.random() < 0.35:
                body, headers = chat_lead()
                await http.post(f"{INTAKE}/v1/webhooks/chat-widget", content=body, headers=headers)
            else:
                form = dict(rnd.choice(FORMS))
                form["email"] = f"demo{sent}.{form['email']}"
                await http.post(
                    f"{INTAKE}/v1/webhooks/website-demo",
                    data=form,
                    headers={"Origin": "http://localhost:8001"},
                )
            sent += 1
            await asyncio.sleep(rnd.uniform(0.2, 1.2))
    stop.set()
    await contacts
    print(f"sent {sent} leads")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5))
