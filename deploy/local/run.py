"""`make run`: start every service (ops.services) as a child process; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from ops.services import SERVICES
from shared.settings import Settings


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def main() -> int:
    baton = os.path.join(os.path.dirname(sys.executable), "baton")
    settings = Settings()  # the ports each service will listen on (INTAKE_PORT, ...)
    ports = {name: int(getattr(settings, f"{name}_port")) for name in SERVICES}
    procs = {name: subprocess.Popen([baton, "serve", name]) for name in ports}
    # notify's local SMTP, webhook and Slack sinks (deploy/local/sinks.py; `make demo` reads them)
    sinks = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sinks.py")
    procs["sinks"] = subprocess.Popen([sys.executable, sinks])
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.time() + 60
    while not stopping and time.time() < deadline:
        if all(ready(p) for p in ports.values()):
            break
        if any(p.poll() is not None for p in procs.values()):
            stopping = True
        time.sleep(0.3)
    if not stopping:
        print(
            "\nBaton is up:\n"
            "  intake   http://127.0.0.1:8001  (POST /v1/webhooks/{source}, /metrics)\n"
            "  router   http://127.0.0.1:8002  (admin API, /metrics)\n"
            "  followup http://127.0.0.1:8003  (activities API, /metrics)\n"
            "  notify   http://127.0.0.1:8004  (webhook/Slack/e-mail delivery, admin API, /metrics)\n"
            "  sinks    SMTP 127.0.0.1:1025, Slack API http://127.0.0.1:8026/api/, webhooks\n"
            "           http://127.0.0.1:8090/ -> .local/sinks/ (what notify sent)\n\n"
            "Submit a lead:\n"
            "  curl -i -X POST http://127.0.0.1:8001/v1/webhooks/website-demo \\\n"
            "    -H 'Origin: http://localhost:8001' \\\n"
            "    --data-urlencode email=ada@acme-industries.com --data-urlencode first_name=Ada \\\n"
            "    --data-urlencode last_name=Lovelace --data-urlencode job_title='VP Engineering' \\\n"
            "    --data-urlencode company_size=800 --data-urlencode country=DE \\\n"
            "    --data-urlencode demo_request=yes --data-urlencode consent=yes\n\n"
            "`make demo` submits a handful and prints the assignment events and what notify\n"
            "delivered (Slack cards, e-mails, the leads' acknowledgements). Ctrl-C stops all.\n",
            flush=True,
        )
    while not stopping and all(p.poll() is None for p in procs.values()):
        time.sleep(0.3)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    failed = [n for n, p in procs.items() if p.returncode not in (0, -signal.SIGTERM)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
