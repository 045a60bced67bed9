"""The reference: a bare FastAPI endpoint on the same uvicorn settings as the services, which
reads the body, parses the same JSON (orjson, like intake) and answers 202. Nothing else: no
signature, no database, no Kafka. It is the framework's ceiling on this machine."""

from __future__ import annotations

import argparse
import uuid

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

app = FastAPI()


@app.post("/v1/webhooks/{source}", status_code=202)
async def receive(request: Request, source: str) -> Response:
    payload = orjson.loads(await request.body())
    if not isinstance(payload, dict):
        return JSONResponse({"detail": "not an object"}, status_code=400)
    return JSONResponse({"lead_id": str(uuid.uuid4()), "status": "accepted"}, status_code=202)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, loop="uvloop", log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
