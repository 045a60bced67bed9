"""Resolve the secrets of signed webhook senders at start-up (the only I/O: env and files).

Intake's lead sources, followup's activity sources and notify's webhook endpoints all use it
(`read_secrets` for one reference), so the rules are one:
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
        secrets, problems = read_secrets(
            where,
            env_name=auth.secret_env,
            file=auth.secret_file,
            env=env,
            owner=f"{kind} {name!r}",
            standard_webhooks=auth.scheme == "standard-webhooks",
        )
        errors += problems
        if secrets:
            out[name] = secrets
    if errors:
        raise PolicyError(errors)
    return out


def read_secrets(
    where: str,
    *,
    env_name: str | None,
    file: str | None,
    env: Mapping[str, str],
    owner: str,
    standard_webhooks: bool,
    require_prefix: bool = False,
    fields: tuple[str, str] = ("secret_env", "secret_file"),
) -> tuple[list[str], list[str]]:
    """One secret reference (an env var or a file) -> (its whitespace-separated secrets, the
    problems found). `where` is the field path, `owner` names the sender in errors ("source
    'chat-widget'", "endpoint 'crm'"), `fields` are the reference's field names in that
    config. With `require_prefix` a Standard Webhooks secret must start with `whsec_` (notify's
    endpoints); without it the prefix is optional, as intake and followup have always checked."""
    raw: str | None = None
    if env_name:
        raw = env.get(env_name)
        where += f".{fields[0]} ({env_name})"
    elif file:
        where += f".{fields[1]} ({file})"
        try:
            raw = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return [], [f"{where}: cannot read the secret file for {owner}: {type(exc).__name__}"]
    secrets = (raw or "").split()
    if not secrets:
        return [], [f"{where}: no secret configured for {owner}"]
    errors: list[str] = []
    if standard_webhooks:
        for n, secret in enumerate(secrets):
            bad = "no whsec_ prefix" if require_prefix and not secret.startswith("whsec_") else ""
            if not bad:
                try:
                    decode_standard_webhooks_secret(secret)
                except ValueError as exc:
                    bad = str(exc)
            if bad:
                errors.append(
                    f"{where}: secret #{n + 1} for {owner} is not a whsec_<base64> secret ({bad})"
                )
    return secrets, errors
