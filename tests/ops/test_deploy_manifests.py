"""Deployment files are valid against their schemas (Kubernetes 1.30 strict, Compose Spec)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ops.services import SERVICES

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
    assert {d["metadata"]["name"] for d in deployments} == {f"baton-{s}" for s in SERVICES}
    for dep in deployments:
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert dep["metadata"]["name"] in pdbs


def test_every_service_has_a_deployment_and_service_on_its_port_and_kustomize_lists_all() -> None:
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    files = {f"k8s/{f.name}" for f in (ROOT / "deploy" / "k8s").glob("*.yaml")}
    assert set(kustomization["resources"]) == files
    generated = {g["name"] for g in kustomization["configMapGenerator"]}
    for g in kustomization["configMapGenerator"]:
        for entry in g["files"]:
            assert (ROOT / "deploy" / entry.split("=", 1)[1]).is_file(), entry
    docs = [
        d
        for f in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]
    declared = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    ports = {"intake": 8001, "router": 8002, "followup": 8003, "notify": 8004}
    for service in SERVICES:
        name = f"baton-{service}"
        (dep,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
        (svc,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == name]
        pod = dep["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"] == ["serve", service]
        assert container["ports"][0]["containerPort"] == ports[service]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports[service])
        assert svc["spec"]["ports"][0]["port"] == ports[service]
        assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        for volume in pod["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated | declared, volume
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        assert mounts <= {v["name"] for v in pod["spec"].get("volumes", [])}


def test_compose_runs_every_service() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    for service in SERVICES:
        assert services[service]["command"] == ["serve", service]
    assert set(SERVICES) <= set(services["prometheus"]["depends_on"])
    notify = services["notify"]
    config = notify["environment"]["NOTIFY_CONFIG_PATH"]
    assert any(v.endswith(":" + config + ":ro") for v in notify["volumes"])


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
