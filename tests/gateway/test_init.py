"""``sluis init`` makes a home that ``sluis serve`` and the admin commands use as it is."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.background import free_port

SLUIS = str(Path(sys.executable).with_name("sluis"))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env["SLUIS_HOME"] = str(home)
    return env


def _sluis(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLUIS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("init") / "home"
    done = _sluis(_env(path), "init")
    assert done.returncode == 0, done.stderr
    assert f"settings: {path / 'sluis.yaml'}" in done.stdout
    return path


def test_init_makes_private_keys_and_the_database(home: Path) -> None:
    for key in ("keys/signing-key.pem", "keys/audit-key.pem", "pki/server.key", "sluis.yaml"):
        assert stat.S_IMODE((home / key).stat().st_mode) == 0o600, key
    assert (home / "sluis.db").is_file()
    assert (home / "pki" / "crl.pem").is_file()


def test_init_refuses_to_overwrite_a_home(home: Path) -> None:
    again = _sluis(_env(home), "init")
    assert again.returncode == 1
    assert again.stderr.startswith("sluis: error: ")
    assert "already set up" in again.stderr
    assert again.stderr.count("\n") == 1


def test_admin_commands_use_the_home_without_settings(home: Path) -> None:
    done = _sluis(
        _env(home), "participants", "add", "NTRNL-40000001", "--name", "Oost", "--role", "consumer"
    )
    assert done.returncode == 0, done.stderr


def test_serve_runs_on_the_home_alone(home: Path) -> None:
    port = str(free_port())
    process_env = {**_env(home), "SLUIS_PORT": port}  # no --insecure-dev: the home's own keys
    process = subprocess.Popen(
        [SLUIS, "serve"], env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        curl = subprocess.run(
            ["curl", "-sS", "--retry", "30", "--retry-connrefused", "--retry-delay", "1",
             "--cacert", str(home / "pki" / "trust-bundle.pem"),
             f"https://localhost:{port}/readyz"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert curl.returncode == 0, curl.stderr
        assert '"ready"' in curl.stdout, curl.stdout
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_audit_log_has_its_identity_at_once(home: Path) -> None:
    done = _sluis(_env(home), "audit", "key", "--first")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("localhost:8443/audit+")


def test_certs_csr_makes_a_key_and_a_request_the_ca_signs(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    assert _sluis(env, "certs", "init").returncode == 0
    made = _sluis(env, "certs", "csr", "--name", "Lab", "--key", str(tmp_path / "lab.key"),
                  "--out", str(tmp_path / "lab.csr"), "--key-type", "ed25519")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE((tmp_path / "lab.key").stat().st_mode) == 0o600
    issued = _sluis(env, "certs", "issue", "--csr", str(tmp_path / "lab.csr"), "--org-id",
                    "NTRNL-40000009", "--org-name", "Lab", "--role", "consumer",
                    "--out", str(tmp_path))  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    again = _sluis(env, "certs", "csr", "--name", "Lab", "--key", str(tmp_path / "new.key"),
                   "--out", str(tmp_path / "lab.csr"))  # fmt: skip
    assert again.returncode == 1
    assert (
        again.stderr == f"sluis: error: {tmp_path / 'lab.csr'} exists: refusing to overwrite it\n"
    )
    assert not (tmp_path / "new.key").exists()
