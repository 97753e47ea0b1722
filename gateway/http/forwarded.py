"""Client certificates forwarded by a trusted TLS-terminating proxy.

Two formats:

* Envoy ``x-forwarded-client-cert`` (XFCC): ``Key=Value`` pairs separated by ``;``, elements by
  ``,``, values optionally double-quoted with ``\\"`` escapes; ``Cert=`` holds the URL-encoded
  PEM leaf and ``Chain=`` the URL-encoded PEM chain. Exactly one element is accepted: configure
  Envoy with ``forward_client_cert_details: SANITIZE_SET``. Several elements mean a client could
  have supplied some of them, so they are refused.
* nginx / ingress-nginx ``ssl-client-cert`` (``$ssl_client_escaped_cert``: URL-encoded PEM)
  with ``ssl-client-verify: SUCCESS``.

Parsing is pure; the caller decides whether the peer is a trusted proxy.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

XFCC = "x-forwarded-client-cert"
NGINX_CERT = "ssl-client-cert"
NGINX_VERIFY = "ssl-client-verify"
#: Headers a proxy uses to vouch for a client certificate; stripped from every other peer.
PROXY_CERT_HEADERS = frozenset(
    {XFCC, NGINX_CERT, NGINX_VERIFY, "ssl-client-subject-dn", "ssl-client-issuer-dn"}
)
MAX_HEADER = 64 * 1024


class ForwardedCertificateError(ValueError):
    """The forwarded-certificate headers are malformed or ambiguous."""


_PAIR = re.compile(r'\s*([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,"]*)\s*([;,]|\Z)')


def _unquote_value(raw: str) -> str:
    if raw.startswith('"'):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def split_xfcc(value: str) -> list[dict[str, str]]:
    """Split an XFCC header into its elements, each a mapping of lower-cased keys."""
    elements: list[dict[str, str]] = []
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PAIR.match(value, pos)
        if match is None or match.end() == pos:
            raise ForwardedCertificateError(f"XFCC is malformed at offset {pos}")
        key, raw, separator = match.groups()
        pairs.setdefault(key.lower(), _unquote_value(raw))
        pos = match.end()
        if separator != ";":
            elements.append(pairs)
            pairs = {}
    if pairs:
        elements.append(pairs)
    return elements


def pem_from_xfcc(value: str) -> str | None:
    """The PEM text (leaf, then chain) in a single-element XFCC header, or None if it has none."""
    if len(value) > MAX_HEADER:
        raise ForwardedCertificateError("XFCC header too large")
    elements = split_xfcc(value)
    if len(elements) != 1:
        raise ForwardedCertificateError(
            f"XFCC must carry exactly one element (proxy in SANITIZE_SET mode), got {len(elements)}"
        )
    element = elements[0]
    cert = element.get("cert")
    if not cert:
        return None
    return unquote(cert) + unquote(element.get("chain", ""))


def pem_from_nginx(cert: str, verify: str | None) -> str:
    """The PEM leaf from nginx's escaped-certificate header, if nginx verified it."""
    if len(cert) > MAX_HEADER:
        raise ForwardedCertificateError("ssl-client-cert header too large")
    if verify != "SUCCESS":
        raise ForwardedCertificateError(
            f"proxy did not verify the certificate ({verify or 'NONE'})"
        )
    return unquote(cert)
