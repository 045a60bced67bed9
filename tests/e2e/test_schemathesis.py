"""schemathesis against each service's own OpenAPI, on the running processes: no 5xx, and every
documented response matches its schema. Bounded examples per operation (CI-sized)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e
EXAMPLES = 12


@pytest.mark.parametrize("service", ["intake", "router", "followup"])
def test_openapi_operations_never_5xx_and_match_their_schema(stack: Stack, service: str) -> None:
    base = stack.url(service)
    raw = httpx.get(base + "/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    auth = {"Authorization": f"Bearer {stack.token}", "Origin": "http://localhost:8001"}
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the loader cannot read: fail with its error
            raise result.err()
        operations.append(result.ok())
    assert operations, f"{service} documents no operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=base,
                headers=auth,
                timeout=20,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        run()
