"""Each OpenAPI document declares the bearer scheme; exactly the token-checked routes use it."""

from __future__ import annotations

import importlib

import pytest
from fastapi.routing import APIRoute

from ops.contract_docs import openapi
from ops.services import SERVICES
from shared.auth import SCHEME_NAME, required_scope


@pytest.mark.parametrize("service", SERVICES)
def test_the_bearer_scheme_is_declared_and_named_by_every_protected_operation(
    service: str,
) -> None:
    doc = openapi(service)
    scheme = doc["components"]["securitySchemes"][SCHEME_NAME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    api = importlib.import_module(f"services.{service}.api")
    for route in api.router.routes:
        assert isinstance(route, APIRoute)
        protected = any(required_scope(d.call) for d in route.dependant.dependencies)
        for method in route.methods or ():
            operation = doc["paths"][route.path_format][method.lower()]
            expected: list[dict[str, list[str]]] | None = [{SCHEME_NAME: []}] if protected else None
            assert operation.get("security") == expected, (service, method, route.path)
