"""`make demo`: submit a handful of leads to a running `make run`, print what the router did
with each (assigned, nurtured below the handoff threshold, disqualified), then what notify
delivered to the local sinks (deploy/local/sinks.py): the reps' Slack cards, the e-mails
(assignments, escalations, the leads' acknowledgements) and the signed webhooks."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from standardwebhooks.webhooks import Webhook

INTAKE = f"http://127.0.0.1:{os.environ.get('INTAKE_PORT', '8001')}"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOPIC = os.environ.get("TOPIC_LEADS_ASSIGNED", "leads.assigned")
SINKS = Path(os.environ.get("BATON_LOCAL_DIR") or Path.cwd() / ".local") / "sinks"
# The example policy acknowledges website-demo leads after sources[0].acknowledge.delay_seconds.
NOTIFY_WAIT_SECONDS = float(os.environ.get("DEMO_NOTIFY_WAIT_SECONDS", "30"))


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


class SinkMark:
    """Where each sink's record stood before the demo, so only this run's deliveries show."""

    def __init__(self, *, everything: bool = False) -> None:
        self.slack = 0 if everything else _lines(SINKS / "slack.jsonl")
        self.webhooks = 0 if everything else _lines(SINKS / "webhooks.jsonl")
        self.mail = set() if everything else set(_mails())

    def new_slack(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in _read(SINKS / "slack.jsonl")[self.slack :]]

    def new_webhooks(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in _read(SINKS / "webhooks.jsonl")[self.webhooks :]]

    def new_mail(self) -> list[Path]:
        return sorted(p for p in _mails() if p not in self.mail)


def _read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _lines(path: Path) -> int:
    return len(_read(path))


def _mails() -> list[Path]:
    return list((SINKS / "mail").glob("*.eml")) if (SINKS / "mail").is_dir() else []


_SLACK_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_SLACK_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")


def _mrkdwn(text: str) -> str:
    text = _SLACK_DATE.sub(r"\1", text)
    text = _SLACK_LINK.sub(r"\2 (\1)", text)
    text = re.sub(r"<@([UW][A-Z0-9]+)>", r"@\1", text)
    text = text.replace("*", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text


def slack_card(message: dict[str, Any]) -> list[str]:
    """A Block Kit message as the text lines a reader would see."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(block["text"]["text"].upper())
        elif kind == "section":
            if block.get("text"):
                lines += _mrkdwn(block["text"]["text"]).splitlines()
            fields = [_mrkdwn(f["text"]).replace("\n", ": ", 1) for f in block.get("fields", [])]
            lines += [" | ".join(fields[i : i + 3]) for i in range(0, len(fields), 3)]
        elif kind == "context":
            lines += [_mrkdwn(e.get("text", "")) for e in block.get("elements", [])]
        elif kind == "actions":
            lines += [
                f"[{e['text']['text']}] {e.get('url', '')}" for e in block.get("elements", [])
            ]
    return lines or [_mrkdwn(message.get("text") or "")]


def mail_summary(path: Path) -> list[str]:
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    text = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_content()
            break
    head = [f"To: {msg['To']}   From: {msg['From']}", f"Subject: {msg['Subject']}"]
    body = [line for line in text.splitlines() if line.strip()][:8]
    return head + [f"  {line}" for line in body]


async def show_sinks(mark: SinkMark, *, expect_acks: int) -> None:
    """Wait (a little) for notify's deliveries, then print what each sink received."""
    if not SINKS.is_dir():
        print(f"\nNo local sinks at {SINKS}: start them with `make sinks` (or `make run`).")
        return
    deadline = time.monotonic() + NOTIFY_WAIT_SECONDS
    print(
        f"\nWaiting up to {NOTIFY_WAIT_SECONDS:.0f} s for notify (acknowledgements are delayed)..."
    )
    while time.monotonic() < deadline:
        acks = [p for p in mark.new_mail() if b"Reply-To:" in p.read_bytes()]
        if mark.new_slack() and len(acks) >= expect_acks:
            break
        await asyncio.sleep(0.5)
    slack, mails, hooks = mark.new_slack(), mark.new_mail(), mark.new_webhooks()
    print(f"\nSlack ({len(slack)} message(s) to the fake Web API, {SINKS / 'slack.jsonl'}):")
    for message in slack:
        where = "direct message" if str(message["channel"]).startswith("U") else "channel"
        print(f"- to {message['channel']} ({where})")
        for line in slack_card(message):
            print(f"    {line}")
    print(f"\nE-mail ({len(mails)} message(s) to the SMTP sink, {SINKS / 'mail'}):")
    for path in mails:
        lines = mail_summary(path)
        print(f"- {lines[0]}")
        for line in lines[1:]:
            print(f"    {line}")
    verified = sum(1 for h in hooks if h.get("verified"))
    types = sorted({(h.get("event") or {}).get("type", "?") for h in hooks})
    print(
        f"\nWebhooks: {len(hooks)} delivery(ies) to the webhook sink, {verified} with a valid "
        f"Standard Webhooks signature ({', '.join(types) or 'none'}), {SINKS / 'webhooks.jsonl'}"
    )
    if not any("Reminder" in line or "Overdue" in line for p in mails for line in mail_summary(p)):
        print(
            "\nNo escalation yet: a hot lead's first contact is due in 5 business minutes; "
            "`remind_owner` (level 1) and `notify_manager` (level 2, 15 min later) will show up "
            "in the sinks then (`python deploy/local/demo.py --sinks` prints every delivery so far)."
        )


async def main() -> None:
    mark = SinkMark()
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
    acks_expected = 0
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
                        acks_expected += d["lead"]["source"] == "website-demo"
                        print(
                            f"- {event['type']} {d['lead_id']} -> {d['owner']['name']} "
                            f"({d['team']['name']}), score {d['score']} {d['tier']}/{d['stage']}, "
                            f"SLA {d['sla']['window_seconds']}s due {d['sla']['due_at']}, "
                            f"rule {d['routing']['rule_id']} [{took:.0f} ms]"
                        )
                        for line in d["explanation"][-3:]:
                            print(f"    {line}")
                    elif event["type"] == "lead.nurtured":  # below the handoff: no owner
                        print(
                            f"- {event['type']} {d['lead_id']} -> nobody (kept with marketing), "
                            f"score {d['score']} {d['tier']}/{d['stage']}, rule "
                            f"{d['routing']['rule_id']}, re-engage {d['reengage_at'][:10]} "
                            f"[{took:.0f} ms]"
                        )
                    else:
                        print(
                            f"- {event['type']} {event['subject']}: "
                            f"{d.get('reason') or d.get('into_lead_id')} [{took:.0f} ms]"
                        )
    finally:
        await consumer.stop()
    if pending:
        print(f"{len(pending)} lead(s) produced no event within 15 s")
    await show_sinks(mark, expect_acks=acks_expected)


if __name__ == "__main__":
    if "--sinks" in sys.argv:
        asyncio.run(show_sinks(SinkMark(everything=True), expect_acks=0))
    else:
        asyncio.run(main())
