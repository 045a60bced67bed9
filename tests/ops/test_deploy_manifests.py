"""Deployment files are valid against their schemas (Kubernetes 1.30 strict, Compose Spec)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def k8s_validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", "1.30.0", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_k8s_manifests_are_valid() -> None:
    files = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
    assert len(files) >= 5
    result = k8s_validate(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_k8s_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    doc = next(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "30-intake.yaml").read_text()))
    doc["spec"]["replicas"] = "three"
    broken.write_text(yaml.safe_dump(doc))
    assert k8s_validate(broken).returncode != 0


def test_every_deployment_has_probes_resources_and_a_pdb() -> None:
    docs = [
        d
        for f in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    pdbs = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert {d["metadata"]["name"] for d in deployments} == {
        "baton-intake",
        "baton-router",
        "baton-followup",
    }
    for dep in deployments:
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert dep["metadata"]["name"] in pdbs


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "deploy" / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2 and "AS builder" in text
    assert "USER 10001" in text
