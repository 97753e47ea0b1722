"""Settings: sources, validation, and the refusal to start with a default or missing key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import (
    DEV_KEY_MARKER,
    Settings,
    SettingsError,
    check_distinct_keys,
    ensure_dev_signing_key,
    load_audit_key,
    load_settings,
    load_signing_key,
)
from tests.support.pki import write_key


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)


def test_defaults_are_embedded_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'sluis.db'}"
    assert settings.tls_client_auth == "optional"
    assert settings.insecure_dev_mode is False


def test_environment_then_yaml_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sluis.yaml"
    config.write_text("port: 9001\nhost: 192.0.2.1\ntrusted_proxies: [10.0.0.0/8]\n")
    monkeypatch.setenv("SLUIS_PORT", "9443")
    settings = load_settings(config)
    assert settings.port == 9443
    assert settings.host == "192.0.2.1"
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8"]


def test_comma_separated_proxy_networks_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUIS_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")
    assert [str(n) for n in load_settings().trusted_proxies] == ["10.0.0.0/8", "fd00::/8"]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("bogus: 1\n", "invalid setting bogus: Extra inputs are not permitted"),
        ("port: 70000\n", "invalid setting port"),
        ("trusted_proxies: [not-a-network]\n", "invalid setting trusted_proxies"),
        (": : [\n", "is not valid YAML"),
        ("tls_client_auth: sometimes\n", "invalid setting tls_client_auth"),
        ("plain_http: true\n", "plain_http needs trusted_proxies"),
        ("rate_limit_backend: redis\n", "rate_limit_backend redis needs redis_url"),
        ("rate_limit_backend: files\n", "invalid setting rate_limit_backend"),
        ("rate_limit_window: 0\n", "invalid setting rate_limit_window"),
    ],
)
def test_bad_configuration_gives_one_clear_line(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    config = tmp_path / "sluis.yaml"
    config.write_text(yaml_text)
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(config)
    assert "\n" not in str(info.value)


def test_a_config_file_that_is_not_utf8_gives_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "sluis.yaml"
    config.write_bytes(b"port: 8443\nhost: \xff\n")
    with pytest.raises(SettingsError) as info:
        load_settings(config)
    assert str(info.value) == f"config file {config} is not UTF-8 text"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_no_signing_key_outside_dev_mode_refuses(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no signing key"):
        load_signing_key(Settings(home=tmp_path))


def test_dev_mode_makes_a_marked_0600_key_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, insecure_dev_mode=True)
    load_signing_key(settings)
    path = tmp_path / "dev" / "signing-key.pem"
    assert path.read_bytes().startswith(DEV_KEY_MARKER)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_dev_signing_key(tmp_path / "dev") == path


def test_dev_key_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    path = ensure_dev_signing_key(tmp_path / "dev")
    with pytest.raises(SettingsError, match="generated dev key"):
        load_signing_key(Settings(home=tmp_path, signing_key_file=path))


def test_exposed_key_is_refused(tmp_path: Path) -> None:
    path = write_key(tmp_path / "k.pem", ec.generate_private_key(ec.SECP256R1()))
    path.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by others"):
        load_signing_key(Settings(home=tmp_path, signing_key_file=path))


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())],
    ids=["rsa", "p384"],
)
def test_unsupported_key_types_are_refused(tmp_path: Path, key: object) -> None:
    path = write_key(tmp_path / "k.pem", key)
    with pytest.raises(SettingsError, match="must be Ed25519 or ECDSA P-256"):
        load_signing_key(Settings(home=tmp_path, signing_key_file=path))


def test_garbage_and_missing_key_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    with pytest.raises(SettingsError, match="not an unencrypted PEM private key"):
        load_signing_key(Settings(home=tmp_path, signing_key_file=garbage))
    with pytest.raises(SettingsError, match="cannot be read"):
        load_signing_key(Settings(home=tmp_path, signing_key_file=tmp_path / "missing.pem"))


def test_proper_key_is_accepted(tmp_path: Path) -> None:
    path = write_key(tmp_path / "k.pem", ec.generate_private_key(ec.SECP256R1()))
    key = load_signing_key(Settings(home=tmp_path, signing_key_file=path))
    assert isinstance(key, ec.EllipticCurvePrivateKey)


# --- one key, one purpose -------------------------------------------------------------------


def _keyed_settings(tmp_path: Path, **files: Path) -> Settings:
    return Settings(home=tmp_path, **files)


def test_the_same_key_file_for_tokens_and_audit_is_refused(tmp_path: Path) -> None:
    key = write_key(tmp_path / "one.pem", ed25519.Ed25519PrivateKey.generate())
    settings = _keyed_settings(tmp_path, signing_key_file=key, audit_key_file=key)
    with pytest.raises(SettingsError, match="token signing key and the audit key are the same"):
        create_app(settings)


def test_the_same_key_in_two_files_is_refused(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    first = write_key(tmp_path / "tokens.pem", private)
    second = write_key(tmp_path / "audit.pem", private)
    settings = _keyed_settings(tmp_path, signing_key_file=first, audit_key_file=second)
    with pytest.raises(SettingsError, match="are the same key"):
        create_app(settings)


def test_the_tls_server_key_signs_nothing_else(tmp_path: Path) -> None:
    server = write_key(tmp_path / "server.key", ec.generate_private_key(ec.SECP256R1()))
    audit = write_key(tmp_path / "audit.pem", ed25519.Ed25519PrivateKey.generate())
    settings = _keyed_settings(
        tmp_path, signing_key_file=server, audit_key_file=audit, tls_key=server
    )
    with pytest.raises(SettingsError, match="token signing key and the TLS server key"):
        create_app(settings)


def test_distinct_keys_pass(tmp_path: Path) -> None:
    tokens = write_key(tmp_path / "tokens.pem", ed25519.Ed25519PrivateKey.generate())
    audit = write_key(tmp_path / "audit.pem", ed25519.Ed25519PrivateKey.generate())
    server = write_key(tmp_path / "server.key", ec.generate_private_key(ec.SECP256R1()))
    settings = _keyed_settings(
        tmp_path, signing_key_file=tokens, audit_key_file=audit, tls_key=server
    )
    check_distinct_keys(settings, load_signing_key(settings), load_audit_key(settings))


def test_database_url_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url_file = tmp_path / "url"
    url_file.write_text("postgresql+asyncpg://sluis:secret@db/sluis\n")
    url_file.chmod(0o644)
    monkeypatch.setenv("SLUIS_DATABASE_URL_FILE", str(url_file))
    with pytest.raises(SettingsError, match="readable by others"):
        load_settings()
    url_file.chmod(0o600)
    monkeypatch.setenv("SLUIS_DATABASE_URL_FILE", str(url_file))
    settings = load_settings()
    assert settings.effective_database_url == "postgresql+asyncpg://sluis:secret@db/sluis"
    monkeypatch.setenv("SLUIS_DATABASE_URL", "sqlite+aiosqlite:///x.db")
    with pytest.raises(SettingsError, match="not both"):
        load_settings()
    monkeypatch.delenv("SLUIS_DATABASE_URL")
    url_file.write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        load_settings()
    url_file.unlink()
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings()


@pytest.mark.parametrize(
    "value",
    [
        "https://t.example/trace",  # no placeholder
        "https://t.example/{trace_id}/{trace_id}",
        "javascript:alert(1)//{trace_id}",
        'https://t.example/{trace_id}"><script>',
        "https://t.example/{trace_id} x",
        "https://t.example/{span_id}/{trace_id}",
    ],
)
def test_a_trace_url_the_console_could_misuse_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="trace_url"):
        Settings(trace_url=value, insecure_dev_mode=True)


def test_a_trace_url_template_is_kept() -> None:
    url = "http://jaeger:16686/trace/{trace_id}?uiEmbed=v0"
    assert Settings(trace_url=url, insecure_dev_mode=True).trace_url == url
