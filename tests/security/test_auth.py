"""Bearer tokens: only digests configured, scopes checked, 401 vs 403 (pure, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import inspect

import pytest

from shared import auth
from shared.auth import Forbidden, Unauthorized, authenticate, hash_token, parse_tokens, require


def _spec(**tokens: tuple[str, str]) -> str:
    return ",".join(f"{n}:{s}:{hash_token(t)}" for n, (s, t) in tokens.items())


def test_only_sha256_digests_are_accepted_in_configuration() -> None:
    with pytest.raises(ValueError, match="bad scopes or digest"):
        parse_tokens("ops:admin:plaintext-token-not-a-digest")
    with pytest.raises(ValueError, match="bad scopes or digest"):
        parse_tokens(f"ops:superuser:{hash_token('x')}")
    with pytest.raises(ValueError, match="expected name:scopes:sha256hex"):
        parse_tokens("ops:admin")
    [token] = parse_tokens(f"ops:read+write:{hash_token('s3cret')}")
    assert token.scopes == {"read", "write"}
    assert token.digest == hashlib.sha256(b"s3cret").digest()


def test_errors_never_echo_the_configured_digest_or_token() -> None:
    digest = hash_token("s3cret")
    with pytest.raises(ValueError) as exc:
        parse_tokens(f"ops:root:{digest}")
    assert digest not in str(exc.value)


def test_missing_malformed_or_unknown_token_is_401() -> None:
    tokens = parse_tokens(_spec(a=("read", "good-token")))
    for header in (None, "", "Bearer", "Bearer ", "Basic good-token", "good-token", "Bearer bad"):
        with pytest.raises(Unauthorized):
            authenticate(tokens, header)
    assert authenticate(tokens, "Bearer good-token").name == "a"
    assert authenticate(tokens, "bearer   good-token  ").name == "a"


def test_a_digest_is_not_a_token() -> None:
    tokens = parse_tokens(_spec(a=("admin", "good-token")))
    with pytest.raises(Unauthorized):
        authenticate(tokens, "Bearer " + hash_token("good-token"))


def test_comparison_is_constant_time_and_covers_every_entry() -> None:
    """hmac.compare_digest over every configured entry, with no early exit on a match."""
    source = inspect.getsource(auth.authenticate)
    assert (
        "hmac.compare_digest" in source and "break" not in source and "return token" not in source
    )
    assert vars(auth)["hmac"] is hmac  # the module uses the stdlib hmac, not a look-alike


class _App:
    def __init__(self, spec: str) -> None:
        self.state = type("S", (), {"tokens": parse_tokens(spec)})()


class _Request:
    def __init__(self, spec: str, header: str | None) -> None:
        self.app = _App(spec)
        self.headers = {"authorization": header} if header else {}


@pytest.mark.parametrize(
    ("scopes", "needed", "outcome"),
    [
        ("read", "read", "ok"),
        ("write", "read", 403),
        ("read", "write", 403),
        ("read+write", "admin", 403),
        ("admin", "read", "ok"),
        ("admin", "write", "ok"),
        ("admin", "admin", "ok"),
    ],
)
async def test_scope_check_is_403_only_for_a_known_token(
    scopes: str, needed: str, outcome: object
) -> None:
    spec = _spec(t=(scopes, "tok"))
    dependency = require(needed)
    assert auth.required_scope(dependency) == needed
    with pytest.raises(Unauthorized):
        await dependency(_Request(spec, "Bearer nope"))  # type: ignore[arg-type]
    if outcome == "ok":
        assert (await dependency(_Request(spec, "Bearer tok"))).name == "t"  # type: ignore[arg-type]
    else:
        with pytest.raises(Forbidden):
            await dependency(_Request(spec, "Bearer tok"))  # type: ignore[arg-type]
