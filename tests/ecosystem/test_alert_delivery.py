"""A real Prometheus fires Baton's BatonServiceDown rule and a real Alertmanager, with the
shipped routing (deploy/alertmanager/alertmanager.yml), delivers it to a receiver the test runs.

Only what makes it quick differs from what ships: the SMTP smarthost is the test's own server,
`for:` is 0s and group waits are 1s. Pages and tickets must land at their own receivers.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import subprocess
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import ROOT
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "deploy"


class Inbox:
    """aiosmtpd handler keeping (recipients, message) for every mail accepted."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def alertmanager_config(smtp_port: int) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    )
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
    for route in [config["route"], *config["route"]["routes"]]:
        route["group_wait"] = "1s"
    return config


def fast_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    rules["groups"].append(
        {
            "name": "test-ticket",
            "rules": [
                {"alert": "TestTicket", "expr": "vector(1)", "labels": {"severity": "ticket"}}
            ],
        }
    )
    return rules


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_a_firing_rule_reaches_the_receiver_its_severity_routes_to(
    smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    prometheus, alertmanager = shutil.which("prometheus"), shutil.which("prometheus-alertmanager")
    assert prometheus and alertmanager, "`make tools` installs Debian's prometheus packages"
    inbox, smtp_port = smtp
    am_port, prom_port, down_port = free_port(), free_port(), free_port()
    (tmp_path / "am.yml").write_text(yaml.safe_dump(alertmanager_config(smtp_port)))
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(fast_rules()))
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        # nothing listens there: the router "is down"
        "scrape_configs": [
            {
                "job_name": "baton-router",
                "static_configs": [{"targets": [f"127.0.0.1:{down_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    procs = [
        start(
            [
                alertmanager,
                f"--config.file={tmp_path / 'am.yml'}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ]
        ),
        start(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",  # an alert sent before Alertmanager listened
            ]
        ),
    ]
    try:
        for _ in range(240):
            subjects = {tuple(to): m["Subject"] or "" for to, m in inbox.mails}
            if any("BatonServiceDown" in s for s in subjects.values()) and any(
                "TestTicket" in s for s in subjects.values()
            ):
                break
            await asyncio.sleep(0.25)
    finally:
        for proc in procs:
            stop(proc)
    by_receiver = {tuple(to): m["Subject"] or "" for to, m in inbox.mails}
    page = [s for to, s in by_receiver.items() if to == ("oncall@example.com",)]
    ticket = [s for to, s in by_receiver.items() if to == ("sales-ops-tickets@example.com",)]
    assert page and "BatonServiceDown" in page[0], by_receiver
    assert ticket and "TestTicket" in ticket[0] and "BatonServiceDown" not in ticket[0], by_receiver
