"""Generate the contract documents from code, so they cannot drift: AsyncAPI 3 for the topics
and events (JSON Schemas from the pydantic event models) and each service's OpenAPI.

`baton docs` writes docs/asyncapi.yaml and docs/openapi/<service>.json; a test regenerates
them and fails when the committed copies differ.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from pydantic import BaseModel

from ops.services import SERVICES
from shared.events import EVENT_TYPES, CloudEvent
from shared.settings import Topics

ROOT = Path(__file__).resolve().parent.parent

# topic attribute -> (event types carried, producers, consumers)
TOPIC_EVENTS: dict[str, tuple[list[str], str, str]] = {
    "leads_received": (["lead.received"], "intake", "router"),
    "leads_assigned": (
        ["lead.assigned", "lead.disqualified", "lead.merged"],
        "router",
        "followup, sales tools",
    ),
    "leads_activity": (["lead.activity"], "sales tools, followup API", "followup, router"),
    "leads_escalated": (
        ["lead.escalated", "lead.reengage"],
        "followup",
        "router, sales tools, notifiers",
    ),
    "contacts_erased": (["contact.erased"], "the erasing service", "sales tools, every service"),
}


def _message_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def asyncapi() -> dict[str, Any]:
    topics = Topics()
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_TYPES.items():
        schema = _schema(model)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        envelope = _schema(CloudEvent)
        envelope["properties"]["type"] = {"const": event_type, "type": "string"}
        envelope["properties"]["data"] = {"$ref": f"#/components/schemas/{model.__name__}"}
        envelope["title"] = f"CloudEvent {event_type}"
        name = _message_name(event_type)
        schemas[f"{name}Event"] = envelope
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "contentType": "application/cloudevents+json",
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "payload": {"$ref": f"#/components/schemas/{name}Event"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "the lead id"}}},
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for attr, (types, producer, consumer) in TOPIC_EVENTS.items():
        address = getattr(topics, attr)
        channel_id = attr
        channels[channel_id] = {
            "address": address,
            "description": f"Written by {producer}; read by {consumer}. Key = lead id.",
            "messages": {
                _message_name(t): {"$ref": f"#/components/messages/{_message_name(t)}"}
                for t in types
            },
        }
        operations[f"publish_{attr}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"{producer} publishes",
        }
    channels["leads_dlq"] = {
        "address": topics.leads_dlq,
        "description": (
            "Dead letters: the original message bytes and key, with headers baton-error, "
            "baton-error-reason, baton-original-topic/partition/offset, baton-consumer-group."
        ),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Baton events",
            "version": "0.1.0",
            "description": (
                "CloudEvents 1.0 in structured JSON mode on Kafka. Event ids are stable across "
                "retries; consumers drop repeats by id."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def openapi(service: str) -> dict[str, Any]:
    """The service's HTTP contract from its routers alone (no clients or policy needed)."""
    api = importlib.import_module(f"services.{service}.api")
    app = FastAPI(title=f"Baton {service}", version="0.1.0")
    app.include_router(api.router)
    return app.openapi()


def render() -> dict[Path, str]:
    out = {ROOT / "docs" / "asyncapi.yaml": yaml.safe_dump(asyncapi(), sort_keys=False)}
    for service in SERVICES:
        out[ROOT / "docs" / "openapi" / f"{service}.json"] = (
            json.dumps(openapi(service), indent=2, sort_keys=True) + "\n"
        )
    return out


def write() -> list[Path]:
    written = []
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
