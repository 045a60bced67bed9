"""Bearer tokens for admin and activity endpoints: stored hashed, scoped, compared in constant time.

Configured as API_TOKENS="name:scope+scope:sha256hex,..." (only the SHA-256 of each token is
ever configured). Missing or unknown token: 401; known token without the scope: 403.

The check is a FastAPI security dependency (HTTPBearer), so every OpenAPI document declares
the bearer scheme and each protected operation names it; HTTPBearer's own 403 for a missing
header is switched off (auto_error=False): the 401/403 problem+json bodies stay this module's.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import DomainError

SCOPES = ("read", "write", "admin")
SCHEME_NAME = "bearerAuth"  # the securitySchemes entry in each service's OpenAPI document
BEARER = HTTPBearer(
    scheme_name=SCHEME_NAME,
    description=(
        "An API token from API_TOKENS (only its SHA-256 is configured). Scopes: read, write, "
        "admin (admin implies every scope). Missing or unknown token: 401; a token without "
        "the operation's scope: 403 naming it. Both are application/problem+json."
    ),
    auto_error=False,
)


class Unauthorized(DomainError):
    status = 401
    type_slug = "unauthorized"
    title = "Missing or invalid bearer token"


class Forbidden(DomainError):
    status = 403
    type_slug = "forbidden"
    title = "Token lacks the required scope"


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    scopes: frozenset[str]
    digest: bytes


def parse_tokens(spec: str) -> list[Token]:
    tokens: list[Token] = []
    for i, entry in enumerate(e.strip() for e in spec.split(",") if e.strip()):
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"api_tokens[{i}]: expected name:scopes:sha256hex")
        name, scopes, hexdigest = parts
        unknown = set(scopes.split("+")) - set(SCOPES)
        if unknown or len(hexdigest) != 64:
            raise ValueError(f"api_tokens[{i}] ({name}): bad scopes or digest")
        tokens.append(Token(name, frozenset(scopes.split("+")), bytes.fromhex(hexdigest)))
    return tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(tokens: list[Token], header: str | None) -> Token:
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("send Authorization: Bearer <token>")
    digest = hashlib.sha256(header[7:].strip().encode()).digest()
    found: Token | None = None
    for token in tokens:  # compare against every entry: timing does not reveal which matched
        if hmac.compare_digest(token.digest, digest):
            found = token
    if found is None:
        raise Unauthorized("the bearer token is not valid")
    return found


class ScopeCheck(Protocol):
    """What `require` returns: FastAPI fills `_credentials` from HTTPBearer (docs only)."""

    async def __call__(
        self, request: Request, _credentials: HTTPAuthorizationCredentials | None = None
    ) -> Token: ...


def require(scope: str) -> ScopeCheck:
    """FastAPI dependency: the request's token must carry `scope` (admin implies every scope)."""

    async def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> Token:
        # The raw header, not HTTPBearer's parse: the same 401 texts for every malformed form.
        token = authenticate(request.app.state.tokens, request.headers.get("authorization"))
        if scope not in token.scopes and "admin" not in token.scopes:
            raise Forbidden(f"this endpoint needs the {scope!r} scope")
        return token

    dependency.required_scope = scope  # type: ignore[attr-defined]  # read by the route-table test
    return dependency


def required_scope(call: object) -> str | None:
    """The scope a `require(...)` dependency checks, or None for any other callable."""
    scope = getattr(call, "required_scope", None)
    return scope if isinstance(scope, str) else None
