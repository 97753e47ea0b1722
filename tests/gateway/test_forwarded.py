"""Parsing of proxy-forwarded certificate headers, including the malformed and the hostile."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.forwarded import (
    MAX_HEADER,
    ForwardedCertificateError,
    pem_from_nginx,
    pem_from_xfcc,
    split_xfcc,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_envoy_example_header() -> None:
    value = (
        "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a"
        '02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testc'
        "lient.lyft.com,By=http://backend.lyft.com;Hash=9ba61d6425303443c0748a02dd8de688468ed33be"
        "74eee6556d90c0149c1309e;SAN=http://frontend.lyft.com"
    )
    elements = split_xfcc(value)
    assert len(elements) == 2
    assert elements[0]["subject"] == "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"
    assert elements[1]["by"] == "http://backend.lyft.com"


def test_quoted_values_keep_separators_and_escapes() -> None:
    (element,) = split_xfcc(r'Subject="CN=a,O=\"b;c\"";Cert=x')
    assert element == {"subject": 'CN=a,O="b;c"', "cert": "x"}


def test_cert_and_chain_are_url_decoded() -> None:
    header = f'Cert="{quote(PEM)}";Chain="{quote(PEM)}"'
    assert pem_from_xfcc(header) == PEM + PEM


def test_element_without_cert_has_no_certificate() -> None:
    assert pem_from_xfcc("By=spiffe://proxy;Hash=abc") is None


@pytest.mark.parametrize(
    "value",
    [
        "Cert",
        'Cert="unterminated',
        "=x",
        f"Cert={quote(PEM)},Cert={quote(PEM)}",
        "",
        "x" * (MAX_HEADER + 1),
    ],
)
def test_malformed_or_ambiguous_xfcc_is_refused(value: str) -> None:
    with pytest.raises(ForwardedCertificateError):
        pem_from_xfcc(value)


def test_duplicate_keys_keep_the_first() -> None:
    (element,) = split_xfcc("Cert=a;Cert=b")
    assert element["cert"] == "a"


@pytest.mark.parametrize("verify", [None, "NONE", "FAILED:unable to verify", "success"])
def test_nginx_needs_success(verify: str | None) -> None:
    with pytest.raises(ForwardedCertificateError, match="did not verify"):
        pem_from_nginx(quote(PEM), verify)


def test_nginx_escaped_certificate() -> None:
    assert pem_from_nginx(quote(PEM), "SUCCESS") == PEM


@given(st.text(max_size=300))
def test_split_never_crashes_on_arbitrary_text(value: str) -> None:
    try:
        elements = split_xfcc(value)
    except ForwardedCertificateError:
        return
    assert all(isinstance(e, dict) for e in elements)
