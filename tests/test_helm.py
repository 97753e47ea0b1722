"""The Helm chart renders, lints, and sets only settings the gateway knows.

Needs the ``helm`` binary (set ``SLUIS_TEST_HELM`` to its path, or have it on PATH);
skips with a reason where it is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings

CHART = Path(__file__).resolve().parents[1] / "helm" / "sluis"
HELM = os.environ.get("SLUIS_TEST_HELM") or shutil.which("helm")


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    if HELM is None:
        pytest.skip("helm is not installed (set SLUIS_TEST_HELM to a helm binary)")
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)


def _render(*sets: str) -> list[dict[str, Any]]:
    args = ["template", "t", str(CHART), "--set", "image.repository=registry.example/sluis"]
    for item in sets:
        args += ["--set", item]
    done = _helm(*args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_values_parse() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["mode"] == "mtls"


def test_lint() -> None:
    done = _helm("lint", str(CHART), "--set", "image.repository=registry.example/sluis")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("sets", [(), ("mode=proxy", "trustedProxies={10.0.0.0/8}")])
def test_every_setting_exists(sets: tuple[str, ...]) -> None:
    known = {f"SLUIS_{name.upper()}" for name in Settings.model_fields}
    for doc in _render(*sets):
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container["env"] if e["name"].startswith("SLUIS_")}
            assert names <= known, names - known
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            files = [
                e.get("value", "")
                for e in container["env"]
                if e["name"].endswith(("_FILE", "_CA", "_CRL"))
            ]
            assert all(any(f.startswith(m) for m in mounts) for f in files), files


def test_refusals() -> None:
    assert "image.repository is required" in _helm("template", "t", str(CHART)).stderr
    no_proxies = _helm(
        "template", "t", str(CHART), "--set", "image.repository=x", "--set", "mode=proxy"
    )
    assert "needs trustedProxies" in no_proxies.stderr
