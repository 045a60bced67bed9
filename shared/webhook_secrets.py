"""Resolve the secrets of signed webhook senders at start-up (the only I/O: env and files).

Intake's lead sources and followup's activity sources both use it, so the rules are one:
a variable or file may hold several whitespace-separated secrets (key rotation), Standard
Webhooks secrets must decode as `whsec_<base64>`, and every problem stops start-up with the
policy field and the variable or file named, never a secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from shared.policy import AuthConfig, PolicyError
from shared.signatures import decode_standard_webhooks_secret


def load_secrets(
    senders: Iterable[tuple[str, str, AuthConfig]],
    env: Mapping[str, str] | None = None,
    *,
    kind: str = "source",
) -> dict[str, list[str]]:
    """`senders` are `(policy path of the auth block, sender name, auth)`; returns name -> secrets.
    `kind` is the word errors use for a sender ("source", "activity source")."""
    env = os.environ if env is None else env
    out: dict[str, list[str]] = {}
    errors: list[str] = []
    for where, name, auth in senders:
        if auth.scheme == "none":
            continue
        raw: str | None = None
        if auth.secret_env:
            raw = env.get(auth.secret_env)
            where += f".secret_env ({auth.secret_env})"
        elif auth.secret_file:
            where += f".secret_file ({auth.secret_file})"
            try:
                raw = Path(auth.secret_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(
                    f"{where}: cannot read the secret file for {kind} {name!r}: {type(exc).__name__}"
                )
                continue
        secrets = (raw or "").split()
        if not secrets:
            errors.append(f"{where}: no secret configured for {kind} {name!r}")
            continue
        if auth.scheme == "standard-webhooks":
            for n, secret in enumerate(secrets):
                try:
                    decode_standard_webhooks_secret(secret)
                except ValueError as exc:
                    errors.append(
                        f"{where}: secret #{n + 1} for {kind} {name!r} is not a whsec_<base64> "
                        f"secret ({exc})"
                    )
        out[name] = secrets
    if errors:
        raise PolicyError(errors)
    return out
