"""Open-loop HTTP load generator (run as its own process).

Requests are pre-signed and pre-encoded before the clock starts, so signing never limits the
rate. Send times are fixed by the schedule (request i at t0 + i/rate), never by responses:
when every connection is busy the request waits in a queue, and its latency is measured from
its *scheduled* time, so queueing anywhere (here, in the server, in the database) counts
(no coordinated omission). Raw HTTP/1.1 over keep-alive connections on uvloop, a bounded
connection pool (default 256) opened on demand.

Prints one JSON object: counts, status codes, latency percentiles, achieved rates, how far
the sender fell behind its schedule (a saturated generator shows here), its own CPU use.
With --ids-out it also writes [lead_id, scheduled wall time] for every 202 (end-to-end runs).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

from bench.common import summary_ms
from bench.payloads import signed_requests

MIN_SLEEP_S = 0.001


class Conn(asyncio.Protocol):
    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.current = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.gen.opening -= 1
        self.gen.free(self)

    def send(self, i: int) -> None:
        assert self.transport is not None
        self.current = i
        self.gen.sent_at[i] = time.perf_counter()
        self.transport.write(self.gen.requests[i])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            pos = head.find(b"content-length:")
            length = 0
            if pos >= 0:
                line_end = head.find(b"\r\n", pos)
                length = int(head[pos + 15 : line_end if line_end >= 0 else None])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            status = int(head[9:12])
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            i, self.current = self.current, -1
            if i >= 0:
                self.gen.done(i, status, body)
            keep = b"connection: close" not in head
            if not keep and self.transport is not None:
                self.transport.close()
                return
            self.gen.free(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class Generator:
    def __init__(
        self, requests: list[bytes], host: str, ports: list[int], rate: float, max_conns: int
    ) -> None:
        self.requests = requests
        self.host, self.ports = host, ports
        self.opened = 0  # new connections go to the ports in turn (a client-side balancer)
        self.rate = rate
        self.max_conns = max_conns
        self.loop = asyncio.get_running_loop()
        n = len(requests)
        self.sched = [0.0] * n
        self.sent_at = [0.0] * n
        self.dispatch_lag = [0.0] * n  # generator's own lateness (not server queueing)
        self.finished = [0.0] * n
        self.status = [0] * n
        self.bodies: dict[int, bytes] = {}
        self.keep_bodies = False
        self.idle: collections.deque[Conn] = collections.deque()
        self.pending: collections.deque[int] = collections.deque()
        self.conns: set[Conn] = set()
        self.opening = 0
        self.connect_errors = 0
        self.outstanding = 0
        self.all_done = asyncio.Event()
        self.stopping = False

    def dispatch(self, i: int) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.popleft().send(i)
            return
        self.pending.append(i)
        if len(self.conns) + self.opening < self.max_conns:
            self.opening += 1
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            port = self.ports[self.opened % len(self.ports)]
            self.opened += 1
            _, proto = await self.loop.create_connection(lambda: Conn(self), self.host, port)
            self.conns.add(proto)
        except OSError:
            self.opening -= 1
            self.connect_errors += 1
            await asyncio.sleep(0.05)
            self._refill()

    def _refill(self) -> None:
        if self.pending and len(self.conns) + self.opening < self.max_conns:
            self.opening += 1
            self.loop.create_task(self._open())

    def free(self, conn: Conn) -> None:
        self.conns.add(conn)
        if self.pending:
            conn.send(self.pending.popleft())
        else:
            self.idle.append(conn)

    def done(self, i: int, status: int, body: bytes) -> None:
        self.finished[i] = time.perf_counter()
        self.status[i] = status
        if self.keep_bodies and status == 202:
            self.bodies[i] = body
        self.outstanding -= 1
        if self.outstanding == 0 and self.stopping:
            self.all_done.set()

    def lost(self, conn: Conn) -> None:
        self.conns.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if conn.current >= 0:  # the request in flight failed: status 0
            self.done(conn.current, 0, b"")
            conn.current = -1
        if not self.stopping or self.outstanding:
            self._refill()

    async def run(self, duration: float, grace: float) -> tuple[float, float]:
        n = len(self.requests)
        # perf_counter, not loop.time(): uvloop's loop clock has millisecond resolution
        t0 = time.perf_counter() + 0.1
        wall0 = time.time() + (t0 - time.perf_counter())
        interval = 1.0 / self.rate
        for i in range(n):
            self.sched[i] = t0 + i * interval
        i = 0
        while i < n:
            now = time.perf_counter()
            while i < n and self.sched[i] <= now:
                self.dispatch_lag[i] = now - self.sched[i]
                self.dispatch(i)
                i += 1
            if i < n:
                # Never sleep less than the loop's timer resolution (1 ms on uvloop): shorter
                # sleeps return at once and the sender spins, taking a core from the server
                # under test. What is due meanwhile goes out together on wake-up; latency is
                # still measured from each request's scheduled time.
                await asyncio.sleep(max(MIN_SLEEP_S, self.sched[i] - time.perf_counter()))
        self.stopping = True
        if self.outstanding:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), timeout=grace)
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        return t0, wall0


async def main_async(args: argparse.Namespace) -> tuple[dict[str, Any], list[list[Any]]]:
    n = max(1, int(args.rate * args.duration))
    requests = signed_requests(
        n=n,
        host=f"{args.host}:{args.ports[0]}",
        source=args.source,
        secret=args.secret,
        tag=args.tag,
        seed=args.seed,
    )
    gen = Generator(requests, args.host, args.ports, args.rate, args.max_conns)
    gen.keep_bodies = bool(args.ids_out)
    cpu0 = time.process_time()
    t0, wall0 = await gen.run(args.duration, args.grace)
    cpu = time.process_time() - cpu0
    ok_lat: list[float] = []
    err_lat: list[float] = []
    codes: collections.Counter[str] = collections.Counter()
    last_ok = t0
    for i in range(n):
        st = gen.status[i]
        if gen.finished[i] == 0.0:
            codes["timeout" if gen.sent_at[i] else "unsent"] += 1
            continue
        codes[str(st)] += 1
        lat = gen.finished[i] - gen.sched[i]
        if st == 202:
            ok_lat.append(lat)
            last_ok = max(last_ok, gen.finished[i])
        else:
            err_lat.append(lat)
    ok = len(ok_lat)
    sent = [gen.sent_at[i] - gen.sched[i] for i in range(n) if gen.sent_at[i]]
    span = max(args.duration, last_ok - t0)
    result: dict[str, Any] = {
        "offered_rate": args.rate,
        "duration_s": args.duration,
        "requests": n,
        "ok": ok,
        "errors": n - ok,
        "error_ratio": round((n - ok) / n, 4),
        "status": dict(codes),
        "accepted_per_s": round(ok / span, 1),
        "latency_ms": summary_ms(ok_lat),
        "send_lag_ms": summary_ms(sent),  # includes waiting for a free connection
        "dispatch_lag_ms": summary_ms(gen.dispatch_lag),  # the generator's own lateness
        "connections_opened": len(gen.conns) + gen.connect_errors,
        "connect_errors": gen.connect_errors,
        "generator_cpu_per_s": round(cpu / span, 3),
    }
    pairs: list[list[Any]] = []
    if args.ids_out:
        for i, body in gen.bodies.items():
            try:
                lead_id = orjson.loads(body)["lead_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            pairs.append([lead_id, wall0 + (gen.sched[i] - t0)])
    return result, pairs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--port",
        required=True,
        help="port, or comma-separated ports of several server processes (connections alternate)",
    )
    p.add_argument("--source", default="chat-widget")
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, required=True, help="seconds of sending")
    p.add_argument("--grace", type=float, default=10.0, help="wait for answers after sending")
    p.add_argument("--max-conns", type=int, default=256)
    p.add_argument("--tag", default="b")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ids-out", help="write [lead_id, scheduled wall time] of every 202 here")
    args = p.parse_args(argv)
    args.ports = [int(x) for x in args.port.split(",")]
    args.secret = os.environ.get("BATON_SECRET_CHAT_WIDGET", "whsec_" + "A" * 32)
    if uvloop is not None:
        uvloop.install()
    result, pairs = asyncio.run(main_async(args))
    if args.ids_out:
        Path(args.ids_out).write_bytes(orjson.dumps(pairs))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
