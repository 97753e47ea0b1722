"""A client's own mistakes, said as one line that names the thing and the fix.

The SDK, ``sluis fetch`` and ``sluis agreements`` share these, so one failure is worded the
same way everywhere: the gateway URL (``https://`` only), the CA bundle, certificate and key
files (each named; a key that does not belong to the certificate; a certificate that has
expired, checked before connecting because the gateway then only closes the handshake), and
a connection that fails (nothing listening, not TLS on that port, the gateway's certificate
not trusted, the handshake refused).
"""

from __future__ import annotations

import ssl
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509


class ClientSetupError(ValueError):
    """The client's URL or TLS files are unusable; the message says which and what to do."""


def check_gateway_url(url: str) -> str:
    """``url`` without a trailing slash; ClientSetupError unless it is an https:// URL."""
    parsed = httpx.URL(url)
    if parsed.scheme != "https" or not parsed.host:
        raise ClientSetupError(
            f"gateway URL {url!r}: the gateway speaks HTTPS with client certificates only; "
            "give https://host:port"
        )
    return url.rstrip("/")


def tls_context(
    ca_bundle: Path, cert_file: Path, key_file: Path, *, now: datetime
) -> ssl.SSLContext:
    """A TLS client context presenting ``cert_file``; ClientSetupError naming a bad file."""
    for label, path in (("CA bundle", ca_bundle), ("certificate", cert_file),
                        ("private key", key_file)):  # fmt: skip
        if not path.is_file():
            raise ClientSetupError(f"{label} file {path} does not exist")
    try:
        context = ssl.create_default_context(cafile=str(ca_bundle))
    except ssl.SSLError as exc:
        raise ClientSetupError(f"CA bundle {ca_bundle} holds no usable PEM certificate") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _check_validity(cert_file, now)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ClientSetupError(
                f"private key {key_file} does not belong to the certificate {cert_file}"
            ) from exc
        raise ClientSetupError(
            f"cannot use certificate {cert_file} with key {key_file} ({exc.reason or exc})"
        ) from exc
    return context


def _check_validity(cert_file: Path, now: datetime) -> None:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except ValueError as exc:
        raise ClientSetupError(f"certificate {cert_file} is not a PEM certificate") from exc
    if now > cert.not_valid_after_utc:
        raise ClientSetupError(
            f"certificate {cert_file} expired on {cert.not_valid_after_utc:%Y-%m-%d}: "
            "ask your certificate authority for a new one"
        )
    if now < cert.not_valid_before_utc:
        raise ClientSetupError(
            f"certificate {cert_file} is valid only from {cert.not_valid_before_utc:%Y-%m-%d}"
        )


def unreachable(exc: httpx.TransportError, url: str) -> str:
    """One line for a connection that failed, the same for every command."""
    text = _chain_text(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"the gateway's certificate at {url} is not trusted by your CA bundle"
    if any(m in text for m in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH")):
        return f"{url} does not answer TLS: is this the gateway's port?"
    refusal = _handshake_refusal(exc, text)
    if refusal is not None:
        return f"the gateway at {url} refused the TLS handshake: {refusal}"
    if isinstance(exc, httpx.TimeoutException):
        return f"the gateway at {url} did not answer in time"
    if isinstance(exc, httpx.ConnectError):
        return f"nothing answers at {url}: is the gateway running, and is this its port?"
    return f"cannot reach the gateway at {url} ({type(exc).__name__})"


#: OpenSSL's names of the alerts the gateway's handshake sends, as the client's next step.
_ALERTS = {
    "ALERT_UNKNOWN_CA": "your certificate is not issued by a CA it trusts",
    "ALERT_CERTIFICATE_EXPIRED": "your certificate has expired (or is not valid yet)",
    "ALERT_CERTIFICATE_REQUIRED": "it needs a client certificate (SLUIS_CLIENT_CERT)",
    "ALERT_UNSUPPORTED_CERTIFICATE": "your certificate is not for TLS client authentication",
}


def _handshake_refusal(exc: httpx.TransportError, text: str) -> str | None:
    for alert, reason in _ALERTS.items():
        if alert in text:  # the gateway's TLS alert says why (gateway.http.tls_alert)
            return reason
    if "ALERT" in text or isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "your certificate may be revoked, expired or not issued by a CA it trusts"
    return None


def _chain_text(exc: BaseException) -> str:
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 8:  # noqa: PLR2004 - a bounded cause chain
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return " | ".join(parts).upper().replace(" ", "_")
