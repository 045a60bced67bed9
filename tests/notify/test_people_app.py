"""Notify's start-up refuses a policy whose acknowledgement template it does not have."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import yaml

from services.notify.app import create_app
from shared.policy import PolicyError
from shared.settings import Settings
from tests.conftest import ROOT


def test_missing_acknowledgement_template_refuses_to_start(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    data["sources"][0]["acknowledge"]["template"] = "thanks-v2"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {"BATON_NOTIFY_SECRET_LOCAL_SINK": "whsec_" + base64.b64encode(os.urandom(24)).decode()}
    settings = Settings(
        policy_path=path, notify_config_path=ROOT / "deploy" / "notify.example.yaml"
    )
    with pytest.raises(PolicyError) as info:
        create_app(settings, env=env)
    assert str(info.value).startswith("sources[0].acknowledge.template: no template 'thanks-v2'")
