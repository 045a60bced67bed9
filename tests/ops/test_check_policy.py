"""`baton check-policy`: the file sales ops edit is judged as the services will judge it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.cli import main
from tests.conftest import ROOT

EXAMPLE = ROOT / "deploy" / "policy.example.yaml"


def test_the_example_policy_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-policy", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith("policy ok: ")


def test_a_loader_error_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace("timezone: Europe/Berlin", "timezone: Europe/Pariss", 1)
    )
    assert main(["check-policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "timezone" in err and "Europe/Pariss" in err


def test_an_acknowledgement_template_notify_lacks_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text()
    assert "template: acknowledgement" in text
    bad = tmp_path / "policy.yaml"
    bad.write_text(text.replace("template: acknowledgement", "template: acknowledgment-typo", 1))
    assert main(["check-policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "sources[0].acknowledge.template" in err and "acknowledgment-typo" in err
