"""Webhook secrets come from the environment or from files, several per source (rotation);
a missing or unusable one stops start-up with a message naming the policy field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.intake.app import create_app
from services.intake.service import load_secrets
from shared.policy import PolicyError, load_policy
from shared.settings import Settings
from tests.intake.conftest import (
    JSON,
    chat_payload,
    new_whsec,
    running_intake,
    source_of,
    standard_headers,
    typeform_headers,
    typeform_payload,
    unique_email,
    write_policy,
)

EXAMPLE_ENV = {
    "BATON_SECRET_CHAT_WIDGET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "BATON_SECRET_TYPEFORM": "tf-secret",
    "BATON_SECRET_HUBSPOT": "hs-secret",
}


def _from_files(tmp: Path, chat: str, typeform: str) -> Path:
    (tmp / "chat.secret").write_text(chat)
    (tmp / "typeform.secret").write_text(typeform)

    def change(policy: dict[str, Any]) -> None:
        for name, file in (("chat-widget", "chat.secret"), ("typeform-contact", "typeform.secret")):
            auth = source_of(policy, name)["auth"]
            del auth["secret_env"]
            auth["secret_file"] = str(tmp / file)

    return write_policy(tmp, change)


def test_env_and_file_secrets_with_several_per_source(tmp_path: Path) -> None:
    old, new = new_whsec(), new_whsec()
    path = _from_files(tmp_path, f"{old}\n{new}\n", "tf-1 tf-2")
    env = {**EXAMPLE_ENV, "BATON_SECRET_HUBSPOT": "hs-old  hs-new"}
    secrets = load_secrets(load_policy(path), env)
    assert secrets == {
        "chat-widget": [old, new],
        "typeform-contact": ["tf-1", "tf-2"],
        "hubspot-forms": ["hs-old", "hs-new"],
    }
    assert "website-demo" not in secrets  # scheme none has no secret


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {k: v for k, v in EXAMPLE_ENV.items() if k != "BATON_SECRET_CHAT_WIDGET"},
            "sources[1].auth.secret_env (BATON_SECRET_CHAT_WIDGET): no secret configured "
            "for source 'chat-widget'",
        ),
        (
            {**EXAMPLE_ENV, "BATON_SECRET_HUBSPOT": "  \n"},
            "sources[3].auth.secret_env (BATON_SECRET_HUBSPOT): no secret configured",
        ),
        (
            {**EXAMPLE_ENV, "BATON_SECRET_CHAT_WIDGET": "whsec_ok-not-base64!"},
            "sources[1].auth.secret_env (BATON_SECRET_CHAT_WIDGET): secret #1 for source "
            "'chat-widget' is not a whsec_<base64> secret",
        ),
    ],
)
def test_create_app_refuses_to_start_without_usable_secret(
    base_settings: Settings, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in EXAMPLE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(PolicyError) as err:
        create_app(base_settings)
    assert message in str(err.value)
    for value in env.values():  # the message never shows a secret
        if value.strip():
            assert value not in str(err.value)


def test_missing_or_empty_secret_file_is_named(
    base_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    path = _from_files(tmp_path, new_whsec(), "")
    with pytest.raises(PolicyError) as err:
        create_app(base_settings.model_copy(update={"policy_path": path}))
    assert "sources[2].auth.secret_file" in str(err.value)
    assert "typeform-contact" in str(err.value)

    (tmp_path / "chat.secret").unlink()
    with pytest.raises(PolicyError) as err:
        create_app(base_settings.model_copy(update={"policy_path": path}))
    assert f"sources[1].auth.secret_file ({tmp_path / 'chat.secret'})" in str(err.value)
    assert "cannot read" in str(err.value)


@pytest.mark.integration
async def test_secrets_from_files_verify_real_requests(
    kafka_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_SECRET_HUBSPOT", "hs-secret")
    old, new = new_whsec(), new_whsec()
    path = _from_files(tmp_path, f"{old} {new}", "tf-from-file")
    settings = kafka_settings.model_copy(update={"policy_path": path})
    async with running_intake(settings, {}) as it:
        for secret in (old, new):
            body = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
            resp = await it.post("chat-widget", body, JSON, standard_headers(secret, body))
            assert resp.status_code == 202, resp.text
        body = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
        resp = await it.post("chat-widget", body, JSON, standard_headers(new_whsec(), body))
        assert resp.status_code == 401
        body = json.dumps(typeform_payload(unique_email("fabbrica-digitale.it"))).encode()
        headers = typeform_headers("tf-from-file", body)
        assert (await it.post("typeform-contact", body, JSON, headers)).status_code == 202
