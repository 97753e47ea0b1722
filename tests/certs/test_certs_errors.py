"""The certs error family: what a refusal reads as (the CLI's one line is this text)."""

from __future__ import annotations

import pytest

from certs import CertificateRejected, CertsError, PKIError


@pytest.mark.parametrize("kind", [CertificateRejected, PKIError])
def test_an_error_reads_as_its_code_then_its_detail(kind: type[CertsError]) -> None:
    error = kind("ca-missing", "no CA in /srv/pki")
    assert str(error) == "ca-missing: no CA in /srv/pki"
    assert (error.code, error.detail) == ("ca-missing", "no CA in /srv/pki")
    assert isinstance(error, CertsError)
    assert error.args == ("ca-missing: no CA in /srv/pki",)


def test_the_family_has_a_default_code() -> None:
    assert CertsError.code == "certs-error"
