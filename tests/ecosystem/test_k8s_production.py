"""The Kubernetes add-ons an operator expects (deploy/k8s/production, deploy/k8s/keda).

Core kinds (Ingress, HPA, CronJob, NetworkPolicy) are validated against the Kubernetes 1.30
schemas offline (kubernetes-validate, strict). The CRDs' own schemas (ServiceMonitor,
PrometheusRule, KEDA ScaledObject) are not available offline, so those get a schema-light
check here: required keys, and that each one points at what really exists (Services and ports,
consumer groups, partition count, the one rules file).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CORE = ("ingress.yaml", "hpa-intake.yaml", "networkpolicy.yaml")


def docs(*paths: Path) -> list[dict[str, Any]]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d]


def listed(folder: Path) -> list[Path]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [folder / r for r in kustomization["resources"] if (folder / r).is_file()]


def base() -> list[dict[str, Any]]:
    return docs(*sorted(K8S.glob("*.yaml")))


def test_core_kinds_are_valid_kubernetes_130() -> None:
    # the purge CronJob is in the base: it mounts the base's hashed baton-policy ConfigMap
    files = [str(K8S / "production" / f) for f in CORE] + [str(K8S / "40-purge-cronjob.yaml")]
    validate = str(Path(sys.executable).parent / "kubernetes-validate")
    result = subprocess.run(
        [validate, "--strict", "--quiet", "-k", "1.30.0", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in listed(K8S / "production")} >= set(CORE)


def test_every_deployment_drains_before_sigterm_and_uses_the_runtime_seccomp_profile() -> None:
    for dep in (d for d in base() if d["kind"] in ("Deployment", "Job")):
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        if dep["kind"] == "Deployment":
            (container,) = pod["containers"]
            sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert 0 < sleep < pod["terminationGracePeriodSeconds"] - 10, dep["metadata"]["name"]


def test_ingress_hpa_and_cronjob_point_at_what_exists() -> None:
    services = {
        d["metadata"]["name"]: {p["name"] for p in d["spec"]["ports"]}
        for d in base()
        if d["kind"] == "Service"
    }
    deployments = {d["metadata"]["name"] for d in base() if d["kind"] == "Deployment"}
    prod = {(d["kind"], d["metadata"]["name"]): d for d in docs(*listed(K8S / "production"))}
    for rule in prod[("Ingress", "baton")]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in services[backend["name"]], path
    hpa = prod[("HorizontalPodAutoscaler", "baton-intake")]["spec"]
    assert hpa["scaleTargetRef"]["name"] in deployments
    (cron,) = [d for d in base() if d["kind"] == "CronJob"]  # in the base, beside its ConfigMap
    job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert container["args"] == ["purge"]
    listed_in_base = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    assert "k8s/40-purge-cronjob.yaml" in listed_in_base["resources"]
    policy_volumes = [v for v in job["volumes"] if "configMap" in v]
    assert {v["configMap"]["name"] for v in policy_volumes} <= {
        g["name"] for g in listed_in_base["configMapGenerator"]
    }
    assert "purge" in _cli_commands()


def _cli_commands() -> set[str]:
    spec = importlib.util.find_spec("ops.cli")
    assert spec is not None and spec.origin is not None
    text = Path(spec.origin).read_text()
    return {c for c in ("purge", "migrate", "serve") if f'"{c}"' in text}


def test_the_service_monitor_scrapes_every_service_under_its_job_name() -> None:
    (monitor,) = docs(K8S / "production" / "monitoring.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    )
    spec = monitor["spec"]
    (expr,) = spec["selector"]["matchExpressions"]
    assert spec["jobLabel"] == expr["key"] == "app.kubernetes.io/name"
    for svc in (d for d in base() if d["kind"] == "Service"):
        assert svc["metadata"]["labels"][expr["key"]] in expr["values"]
        ports = {p["name"] for p in svc["spec"]["ports"]}
        assert {e["port"] for e in spec["endpoints"]} <= ports
    assert set(expr["values"]) == {f"baton-{s}" for s in SERVICES}  # job=~"baton-.*" holds


def test_the_prometheus_rule_is_the_rules_file() -> None:
    spec = importlib.util.spec_from_file_location("sync", K8S / "sync_prometheusrule.py")
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    committed = (K8S / "production" / "prometheusrule.yaml").read_text()
    assert committed == sync.render(), "run `.venv/bin/python deploy/k8s/sync_prometheusrule.py`"


def test_keda_scales_followup_and_notify_on_their_own_consumer_groups() -> None:
    config = next(d for d in base() if d["kind"] == "ConfigMap")["data"]
    objects = docs(*listed(K8S / "keda"))
    assert {o["metadata"]["name"] for o in objects} == {"baton-followup", "baton-notify"}
    deployments = {d["metadata"]["name"]: d for d in base() if d["kind"] == "Deployment"}
    for obj in objects:
        assert (obj["apiVersion"], obj["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
        spec = obj["spec"]
        target = deployments[spec["scaleTargetRef"]["name"]]
        service = target["spec"]["template"]["spec"]["containers"][0]["args"][1]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == f"baton-{service}"  # consumer_group_prefix + service
        assert meta["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
        assert int(meta["lagThreshold"]) > 0
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["maxReplicaCount"] <= int(config["TOPIC_PARTITIONS"])
    assert (
        "../production"
        in yaml.safe_load((K8S / "keda" / "kustomization.yaml").read_text())["resources"]
    )


def test_kustomize_builds_the_overlays() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on this machine (the YAML checks above still ran)")
    for folder in ("deploy", "deploy/k8s/production", "deploy/k8s/keda"):
        result = subprocess.run(
            [kubectl, "kustomize", str(ROOT / folder)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, folder + ": " + result.stderr
