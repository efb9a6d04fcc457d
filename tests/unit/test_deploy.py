"""Deployment files (issue 12): deploy/compose.yaml and deploy/kubernetes/ parse,
every WPCDC_* variable they set is a setting that loads, and their probes and
ports are the ones the code serves. The Dockerfile is checked the same way."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import BaseModel

from wpcdc.config.loading import load_settings
from wpcdc.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings
from wpcdc.runtime.metrics import HEALTHZ_PATH, READYZ_PATH

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
# ${NAME:-default}: compose interpolation; the test uses the default.
INTERPOLATION = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def setting_of(name: str) -> str:
    """The dotted setting an environment variable sets; fails for one that sets none."""
    assert name.startswith(ENV_PREFIX), name
    model: Any = Settings
    parts = name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
    for part in parts:
        assert isinstance(model, type) and issubclass(model, BaseModel), f"{name}: {part}"
        assert part in model.model_fields, f"{name} sets no setting (no {part!r})"
        model = model.model_fields[part].annotation
    return ".".join(parts)


def loaded(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The settings wpcdc would run with in that environment (and no config file)."""
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        setting_of(name)
        monkeypatch.setenv(name, value)
    return load_settings()


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {k: INTERPOLATION.sub(r"\1", str(v)) for k, v in env.items()}


def test_compose_runs_the_whole_stack_with_a_row_binlog() -> None:
    services = compose()["services"]
    assert {"db", "wordpress", "broker", "wpcdc"} <= services.keys()
    flags = set(services["db"]["command"])
    assert {
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
    } <= flags
    assert any(flag.startswith("--log-bin") for flag in flags)
    build = services["wpcdc"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    # Only the wpcdc service may set WPCDC_* variables: elsewhere they would be a typo.
    for name, service in services.items():
        if name != "wpcdc":
            assert not any(k.startswith(ENV_PREFIX) for k in compose_env(service)), name


def test_compose_configures_wpcdc_with_valid_settings_and_its_probe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wpcdc = compose()["services"]["wpcdc"]
    settings = loaded(compose_env(wpcdc), monkeypatch, tmp_path)
    assert settings.mysql.host == "db" and settings.kafka.bootstrap_list == ["broker:9092"]
    assert settings.metrics.host == "0.0.0.0" and settings.log.format == "json"
    assert settings.signing.signer() is not None
    assert f"{settings.metrics.port}:{settings.metrics.port}" in wpcdc["ports"]
    url = next(part for part in wpcdc["healthcheck"]["test"] if "http://" in part)
    probe = urlparse(re.search(r"http://[^'\"]+", url).group(0))  # type: ignore[union-attr]
    assert (probe.path, probe.port) == (HEALTHZ_PATH, settings.metrics.port)
    mounts = [volume.split(":")[1] for volume in wpcdc["volumes"]]
    assert str(settings.checkpoint.path.parent) in mounts


def kubernetes() -> dict[str, dict[str, Any]]:
    """Every object of the Kubernetes example, by kind, from the kustomization's list."""
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    objects: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()):
            assert document["kind"] not in objects, document["kind"]
            objects[document["kind"]] = document
    files = {p.name for p in (DEPLOY / "kubernetes").glob("*.yaml")} - {"kustomization.yaml"}
    assert files == set(kustomization["resources"]), "a manifest missing from kustomization"
    return objects


def test_kubernetes_deployment_has_valid_settings_secrets_and_probes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    objects = kubernetes()
    deployment, secret = objects["Deployment"], objects["Secret"]
    spec = deployment["spec"]
    # Two streamers must never share the checkpoint: one replica, old pod stopped first.
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    (container,) = spec["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    from_secret = set()
    for variable in container["env"]:
        if "valueFrom" in variable:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            env[variable["name"]] = secret["stringData"][ref["key"]]
            from_secret.add(variable["name"])
        else:
            env[variable["name"]] = str(variable["value"])
    # Secrets come from the Secret, never inline.
    assert {"WPCDC_MYSQL__PASSWORD", "WPCDC_SIGNING__KEYS"} <= from_secret
    settings = loaded(env, monkeypatch, tmp_path)
    assert settings.metrics.host == "0.0.0.0" and settings.signing.signer() is not None

    (port,) = container["ports"]
    assert port["containerPort"] == settings.metrics.port
    for probe, path in (("livenessProbe", HEALTHZ_PATH), ("readinessProbe", READYZ_PATH)):
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] in (port["name"], port["containerPort"])
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics.port)

    # The checkpoint in a compacted topic: no volume, and a read-only filesystem.
    assert settings.checkpoint.store == "kafka"
    assert "volumeMounts" not in container and "volumes" not in spec["template"]["spec"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = objects["Service"]
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])


def test_the_dockerfile_exposes_the_metrics_port_and_sets_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = dict(re.findall(r"(WPCDC_[A-Z_]+)=(\S+)", text.split("FROM python")[-1]))
    settings = loaded(env, monkeypatch, tmp_path)
    assert re.search(rf"^EXPOSE {settings.metrics.port}$", text, re.M)
    assert settings.metrics.host == "0.0.0.0"
    assert re.search(rf'^VOLUME \["{settings.checkpoint.path.parent}"\]$', text, re.M)
