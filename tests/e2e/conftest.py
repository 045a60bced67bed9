"""Runs intake, router and followup as real processes on fresh topics and spare ports."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.events import CloudEvent
from shared.settings import Settings
from tests.conftest import ROOT, topic_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_policy(tmp: Path, *, window: int = 3, steps: tuple[int, ...] = (0, 2, 4)) -> Path:
    """The example policy with every rep always on duty and SLA windows of seconds."""
    policy: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    all_day = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    for team in policy["teams"]:
        for rep in team["reps"]:
            rep["working_hours"] = all_day
            rep.pop("out_of_office", None)
    for tier in policy["sla"]["tiers"].values():
        tier["window_seconds"] = window
        tier["clock"] = "wall"
    actions = ["remind_owner", "notify_manager", "reassign"]
    policy["escalation"] = [
        {"level": i + 1, "action": actions[i], "after_seconds": s} for i, s in enumerate(steps)
    ]
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    ports: dict[str, int]
    token: str
    logs: dict[str, Path]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env_for: dict[str, dict[str, str]] = field(default_factory=dict)  # one service's overrides

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def contacted(self, assigned: CloudEvent, note: str | None = None) -> httpx.Response:
        """The owner records a call on the lead of this `lead.assigned`, through followup's API.

        Followup learns of the assignment from Kafka, a moment after the test's own reader may
        have seen it; its HTTP path answers 404 for a lead it has no clock for, so the call
        waits (up to 20 s) until followup's SLA view knows the lead, as a sales tool would
        retry a 404 (a CI run under load once posted before followup had consumed it).
        """
        self.wait_for_clock(assigned.subject, int(assigned.data["assignment_seq"]))
        activity: dict[str, Any] = {
            "type": "contacted",
            "at": assigned.data["assigned_at"],
            "actor": assigned.data["owner"]["id"],
        }
        if note is not None:
            activity["note"] = note
        return httpx.post(
            self.url("followup") + f"/v1/leads/{assigned.subject}/activities",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            json=activity,
        )

    def wait_for_clock(self, lead_id: str, seq: int, timeout: float = 20.0) -> None:
        """Until followup's `GET /v1/leads/{id}/sla` shows this lead's assignment `seq`."""
        deadline = time.monotonic() + timeout
        while True:
            resp = httpx.get(
                self.url("followup") + f"/v1/leads/{lead_id}/sla",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            )
            assert resp.status_code in (200, 404), resp.text
            if resp.status_code == 200 and resp.json().get("assignment_seq", 0) >= seq:
                return
            assert time.monotonic() < deadline, f"followup never saw lead {lead_id}"
            time.sleep(0.1)

    def start(self, service: str) -> None:
        log = self.logs[service].open("ab")
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "serve", service],
            env={**self.env, **self.env_for.get(service, {})},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(self.url(service), self.procs[service])

    def stop(self, service: str, *, kill: bool = False) -> None:
        proc = self.procs.pop(service)
        if kill:
            proc.kill()
        else:
            proc.terminate()
        proc.wait(timeout=30)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs.values())


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode} during start-up")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout}s")


@pytest.fixture
def stack(kafka_settings: Settings, env_secrets: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    token = secrets.token_urlsafe(24)
    ports = {"intake": free_port(), "router": free_port(), "followup": free_port()}
    env = {
        **os.environ,
        **env_secrets,
        **topic_env(kafka_settings),
        "POLICY_PATH": str(fast_policy(tmp_path)),
        "DATABASE_URL": kafka_settings.database_url,
        "INTAKE_PORT": str(ports["intake"]),
        "ROUTER_PORT": str(ports["router"]),
        "FOLLOWUP_PORT": str(ports["followup"]),
        "API_TOKENS": f"test:admin:{hashlib.sha256(token.encode()).hexdigest()}",
        "TICKER_MAX_SLEEP_SECONDS": "0.5",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ports}
    s = Stack(settings=kafka_settings, env=env, ports=ports, token=token, logs=logs)
    try:
        for name in ("intake", "router", "followup"):
            s.start(name)
        yield s
    finally:
        for name in list(s.procs):
            s.stop(name)
