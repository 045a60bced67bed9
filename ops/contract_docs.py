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
from shared.auth import BEARER, SCHEME_NAME
from shared.events import CE_CONTENT_TYPE, EVENT_TYPES, CloudEvent
from shared.kafka import topic_configs
from shared.settings import Settings, Topics

ROOT = Path(__file__).resolve().parent.parent

# topic attribute -> (event types carried, producers, consumers, what the record key is)
TOPIC_EVENTS: dict[str, tuple[list[str], str, str, str]] = {
    "leads_received": (["lead.received"], "intake", "router", "the lead id"),
    "leads_assigned": (
        ["lead.assigned", "lead.disqualified", "lead.merged", "lead.nurtured", "lead.parked"],
        "router",
        "followup, notify, sales tools",
        "the lead id",
    ),
    "leads_activity": (
        ["lead.activity"],
        "sales tools, followup API",
        "followup, router",
        "the lead id",
    ),
    "leads_escalated": (
        ["lead.escalated", "lead.reengage"],
        "followup",
        "router, notify, sales tools",
        "the lead id",
    ),
    "contacts_erased": (
        ["contact.erased"],
        "the erasing service",
        "sales tools, every service",
        "the erasure id",
    ),
    "reps_status": (["rep.paused", "rep.resumed"], "router", "router, sales tools", "the rep id"),
}

# The CloudEvents Kafka protocol binding's structured-mode header, on every record Baton writes.
CONTENT_TYPE_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["content-type"],
    "properties": {
        "content-type": {
            "type": "string",
            "const": CE_CONTENT_TYPE,
            "description": (
                "CloudEvents Kafka binding, structured mode: the record value is the whole "
                "CloudEvent as JSON. Consumers also accept binary mode (ce_* headers, the data "
                "as the value)."
            ),
        }
    },
}

SERVERS: dict[str, Any] = {
    "local": {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": (
            "The single-node KRaft broker `make stack` starts (PLAINTEXT); any broker is set "
            "with KAFKA_BOOTSTRAP_SERVERS. A managed cluster (Confluent Cloud, MSK) takes "
            "SASL_SSL (protocol kafka-secure, SASL PLAIN or SCRAM over TLS): Baton's own "
            "clients do not take SASL or TLS settings yet (issue #19, item 2), so for now they "
            "need a PLAINTEXT listener; outside consumers use their cluster's own settings."
        ),
    }
}


def _message_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _message(event_type: str, model: type[BaseModel], key: str, schemas: dict[str, Any]) -> Any:
    """One event type's AsyncAPI message; its data and CloudEvent envelope go into `schemas`."""
    schema = _schema(model)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    envelope = _schema(CloudEvent)
    envelope["properties"]["type"] = {"const": event_type, "type": "string"}
    envelope["properties"]["data"] = {"$ref": f"#/components/schemas/{model.__name__}"}
    envelope["title"] = f"CloudEvent {event_type}"
    name = _message_name(event_type)
    schemas[f"{name}Event"] = envelope
    return {
        "name": event_type,
        "title": event_type,
        "contentType": "application/cloudevents+json",
        "summary": (model.__doc__ or event_type).strip().splitlines()[0],
        "headers": {"$ref": "#/components/schemas/CloudEventsKafkaHeaders"},
        "payload": {"$ref": f"#/components/schemas/{name}Event"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"{key} (= subject)"},
                "bindingVersion": "0.5.0",
            }
        },
    }


def asyncapi() -> dict[str, Any]:
    topics = Topics()
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    keys = {t: key for types, _, _, key in TOPIC_EVENTS.values() for t in types}
    for event_type, model in EVENT_TYPES.items():
        key = keys.get(event_type, "the subject")
        messages[_message_name(event_type)] = _message(event_type, model, key, schemas)
    schemas["CloudEventsKafkaHeaders"] = CONTENT_TYPE_HEADERS
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for attr, (types, producer, consumer, key) in TOPIC_EVENTS.items():
        address = getattr(topics, attr)
        channel_id = attr
        channels[channel_id] = {
            "address": address,
            "description": f"Written by {producer}; read by {consumer}. Key = {key}.",
            "messages": {
                _message_name(t): {"$ref": f"#/components/messages/{_message_name(t)}"}
                for t in types
            },
            "bindings": {"kafka": _topic_binding(address)},
        }
        operations[f"publish_{attr}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"{producer} publishes",
        }
    channels["leads_dlq"] = {
        "address": topics.leads_dlq,
        "description": (
            "Dead letters: the original message bytes, key and headers (so an event keeps its "
            "content-type or ce_* headers; one that parsed but had none gets the structured "
            "content-type), with headers baton-error, baton-error-reason, "
            "baton-original-topic/partition/offset, baton-consumer-group, "
            "baton-dead-lettered-at."
        ),
        "bindings": {"kafka": _topic_binding(topics.leads_dlq)},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Baton events",
            "version": "0.1.0",
            "description": (
                "CloudEvents 1.0 in structured JSON mode on Kafka (the CloudEvents Kafka "
                "protocol binding: header content-type: application/cloudevents+json; "
                "charset=UTF-8), so any CloudEvents SDK or kcat reads the records. Event ids "
                "are stable across retries; consumers drop repeats by id."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": SERVERS,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _topic_binding(address: str) -> dict[str, Any]:
    """Partitions, replicas and retention Baton sets when it creates the topic (defaults)."""
    settings = Settings()
    binding: dict[str, Any] = {
        "topic": address,
        "partitions": settings.topic_partitions,
        "replicas": settings.topic_replication_factor,
        "bindingVersion": "0.5.0",
    }
    configs = topic_configs(settings, address)
    if "retention.ms" in configs:
        binding["topicConfiguration"] = {"retention.ms": int(configs["retention.ms"])}
    return binding


def openapi(service: str) -> dict[str, Any]:
    """The service's HTTP contract from its routers alone (no clients or policy needed)."""
    api = importlib.import_module(f"services.{service}.api")
    app = FastAPI(title=f"Baton {service}", version="0.1.0")
    app.include_router(api.router)
    doc = app.openapi()
    # Declared in every document (intake's webhooks are signed, not bearer): one scheme name.
    schemes = doc.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault(
        SCHEME_NAME, BEARER.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    return doc


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
