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


# Each refusal's words and each limit exactly at its boundary.


def test_the_xfcc_cap_is_exact() -> None:
    # Padded with a parameter we do not read, so the header parses at the limit.
    at_cap = "By=" + "x" * (MAX_HEADER - 3)
    assert len(at_cap) == MAX_HEADER
    assert pem_from_xfcc(at_cap) is None
    with pytest.raises(ForwardedCertificateError, match=r"^XFCC header too large$"):
        pem_from_xfcc(at_cap + "x")


def test_the_nginx_cap_is_exact() -> None:
    at_cap = quote(PEM) + "x" * (MAX_HEADER - len(quote(PEM)))
    assert len(at_cap) == MAX_HEADER
    assert pem_from_nginx(at_cap, "SUCCESS") == PEM + "x" * (MAX_HEADER - len(quote(PEM)))
    with pytest.raises(ForwardedCertificateError, match=r"^ssl-client-cert header too large$"):
        pem_from_nginx(at_cap + "x", "SUCCESS")


@pytest.mark.parametrize(
    ("verify", "words"),
    [(None, "NONE"), ("", "NONE"), ("FAILED:expired", "FAILED:expired"), ("success", "success")],
)
def test_nginx_refusal_names_the_verdict(verify: str | None, words: str) -> None:
    with pytest.raises(ForwardedCertificateError) as caught:
        pem_from_nginx(quote(PEM), verify)
    assert str(caught.value) == f"proxy did not verify the certificate ({words})"


@pytest.mark.parametrize(
    ("value", "offset"),
    [("Cert", 0), ("Hash=a;=x", 7), ('Hash=a;Cert="x', 7), ('Hash=a;Cert=x"y', 7)],
)
def test_malformed_xfcc_names_its_offset(value: str, offset: int) -> None:
    with pytest.raises(ForwardedCertificateError) as caught:
        split_xfcc(value)
    assert str(caught.value) == f"XFCC is malformed at offset {offset}"


@pytest.mark.parametrize(("value", "count"), [("", 0), ("Cert=a,Cert=b", 2), ("a=1,b=2,c=3", 3)])
def test_xfcc_refusal_counts_the_elements(value: str, count: int) -> None:
    with pytest.raises(ForwardedCertificateError) as caught:
        pem_from_xfcc(value)
    assert str(caught.value) == (
        f"XFCC must carry exactly one element (proxy in SANITIZE_SET mode), got {count}"
    )


def test_keys_are_lower_cased_and_spaces_around_pairs_ignored() -> None:
    assert split_xfcc(" CERT=a ; Hash=b ") == [{"cert": "a ", "hash": "b "}]


def test_an_unquoted_value_is_taken_as_it_is() -> None:
    assert split_xfcc(r"Cert=a\b") == [{"cert": "a\\b"}]


def test_a_quoted_value_loses_its_quotes_and_escapes() -> None:
    assert split_xfcc(r'Cert="\\a\"b"') == [{"cert": '\\a"b'}]
    assert split_xfcc('Cert=""') == [{"cert": ""}]


def test_a_trailing_comma_ends_the_only_element() -> None:
    assert split_xfcc("Cert=a,") == [{"cert": "a"}]
    assert split_xfcc("Cert=a;") == [{"cert": "a"}]


def test_an_empty_cert_is_no_certificate() -> None:
    assert pem_from_xfcc('Cert="";Hash=x') is None


def test_a_cert_without_a_chain_is_the_leaf_alone() -> None:
    assert pem_from_xfcc(f"Cert={quote(PEM)}") == PEM
