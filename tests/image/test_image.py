"""The container image, built here (``make image``) and run as a pod would run it.

Every run: the image's root read-only, its user (UID 10001) and the pod's fsGroup as a
supplementary group, writable paths only on tmpfs mounts, keys bind-mounted read-only as
the kubelet lays out a Secret (``0440 root:10001`` behind ``..data`` links).

A cold build takes minutes (the Debian root: docs/deployment.md has the measured table), so
these tests run in ``make image-test`` (CI's .ci/run calls it), which builds or reuses the
image cached by content hash; the plain suite skips them with that reason.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.background import free_port
from tests.image.build import BuildError, ensure_image, missing_tools, version
from tests.image.runner import Image, opened
from tests.support.pki import Pki, write_key

POD_UID = FS_GROUP = 10001
SECRETS = "/run/secrets/sluis"


def _skip_reason() -> str | None:
    if os.environ.get("SLUIS_IMAGE_TEST") != "1":
        return "the image tests run in `make image-test` (a cold image build takes minutes)"
    return missing_tools()


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    try:
        name = ensure_image()
    except BuildError as exc:
        pytest.fail(f"the image did not build: {exc}")
    with opened(name) as opened_image:
        yield opened_image


@pytest.fixture(scope="module")
def secret_volume() -> Iterator[Path]:
    """Keys, server certificate, CA bundle and CRL as the kubelet mounts a Secret volume."""
    base = Path(tempfile.mkdtemp(prefix="sluis-image-secret-"))
    base.chmod(0o755)
    pki = Pki(base / "pki")
    stamp = base / "volume" / "..2026_06_01_12_00_00.000000001"
    stamp.mkdir(parents=True)
    files = {
        "signing-key.pem": write_key(base / "s.pem", ed25519.Ed25519PrivateKey.generate()),
        "audit-key.pem": write_key(base / "a.pem", ed25519.Ed25519PrivateKey.generate()),
        "tls.key": pki.server_key,
        "tls.crt": pki.server_cert,
        "bundle.pem": pki.bundle,
        "crl.pem": pki.crl_path,
    }
    for name, source in files.items():
        target = stamp / name
        shutil.copyfile(source, target)
        os.chown(target, 0, FS_GROUP)
        target.chmod(0o440)
        (base / "volume" / name).symlink_to(f"..data/{name}")
    (base / "volume" / "..data").symlink_to(stamp.name)
    for directory in (base / "volume", stamp):
        directory.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def _run(image: Image, *argv: str, **options: object) -> subprocess.CompletedProcess[str]:
    command = image.jail_argv(argv, groups=[FS_GROUP], **options)  # type: ignore[arg-type]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def test_configured_as_a_non_root_service_with_labels(image: Image) -> None:
    assert image.user == (POD_UID, FS_GROUP)
    assert image.config["Entrypoint"] == ["/opt/sluis/bin/sluis"]
    assert image.config["Healthcheck"]["Test"][0] == "CMD"  # exec form: no shell
    assert image.labels["org.opencontainers.image.version"] == version()
    assert image.labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    for label in ("title", "revision", "created", "source", "base.name"):
        assert image.labels[f"org.opencontainers.image.{label}"]


def test_version_and_help_as_uid_10001_on_a_read_only_root(image: Image) -> None:
    done = _run(image, *image.argv("version"))
    assert (done.returncode, done.stdout.strip()) == (0, version()), done.stderr
    done = _run(image, *image.argv("--help"))
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout


def test_root_is_read_only_and_has_no_shell(image: Image) -> None:
    probe = (
        "import os, shutil\n"
        "print(os.getuid(), os.getgid(), sorted(os.getgroups()))\n"
        "print(shutil.which('sh'), shutil.which('bash'), shutil.which('dash'))\n"
        "for path in ('/opt/sluis/probe', '/etc/probe', '/var/lib/sluis/probe'):\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "    except OSError as exc:\n"
        "        print(exc.strerror)\n"
        "open('/tmp/probe', 'w').write('tmpfs')\n"
    )
    done = _run(image, "/opt/sluis/bin/python", "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{POD_UID} {FS_GROUP} [{FS_GROUP}]",
        "None None None",
        "Read-only file system",
        "Read-only file system",
        "Read-only file system",
    ]


def test_serve_with_kubelet_mounted_keys_answers_health_and_tls(
    image: Image, secret_volume: Path
) -> None:
    port, health = free_port(), free_port()
    env = {
        "SLUIS_HOST": "127.0.0.1",
        "SLUIS_PORT": str(port),
        "SLUIS_HEALTH_PORT": str(health),
        "SLUIS_PUBLIC_URL": f"https://localhost:{port}",
        "SLUIS_TLS_CERT": f"{SECRETS}/tls.crt",
        "SLUIS_TLS_KEY": f"{SECRETS}/tls.key",
        "SLUIS_TLS_CLIENT_CA": f"{SECRETS}/bundle.pem",
        "SLUIS_TLS_CRL": f"{SECRETS}/crl.pem",
        "SLUIS_SIGNING_KEY_FILE": f"{SECRETS}/signing-key.pem",
        "SLUIS_AUDIT_KEY_FILE": f"{SECRETS}/audit-key.pem",
    }
    command = image.jail_argv(
        image.argv("serve"),
        tmpfs=("/tmp", "/run", "/var/lib/sluis"),  # noqa: S108 - inside the image
        binds={SECRETS: secret_volume / "volume"},
        env=env,
        groups=[FS_GROUP],
    )
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(server, health, log)
            assert httpx.get(f"http://127.0.0.1:{health}/readyz", timeout=5).status_code == 200
            context = ssl.create_default_context(
                cafile=str(secret_volume / "pki" / "trust-bundle.pem")
            )
            answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=5)
            assert answer.status_code == 200
            check = image.config["Healthcheck"]["Test"][1:]
            done = _run(image, *check, env={"SLUIS_HEALTH_PORT": str(health)})
            assert done.returncode == 0, done.stderr
        finally:
            server.terminate()
            server.wait(timeout=30)


def _wait_healthy(server: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    """Poll the health port until it answers (no duration is asserted)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            pytest.fail(f"sluis serve exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("the health port never answered")


def test_the_demo_runs_inside_the_image(image: Image) -> None:
    done = _run(image, "/opt/sluis/bin/python", "-m", "gateway.demo", workdir="/tmp")  # noqa: S108
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "demo passed" in done.stdout
