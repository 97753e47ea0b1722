"""The OAuth endpoints' strict form bodies (gateway/http/forms.py), on Starlette requests.

RFC 6749 §3.2 and appendix B: ``application/x-www-form-urlencoded`` only, UTF-8, no repeated
parameter, a parameter without a value as if absent; every other body is ``invalid_request``
with its sentence. Each limit exactly at and one past its boundary. The same through the
token endpoint over mTLS: tests/gateway/test_oauth*.py.
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request
from starlette.types import Message

from gateway.http.forms import MAX_FIELDS, MAX_FORM_BYTES, FormError, read_form

FORM = "application/x-www-form-urlencoded"


def _read(body: bytes, content_type: str | None = FORM) -> dict[str, str]:
    headers = [] if content_type is None else [(b"content-type", content_type.encode("latin-1"))]
    scope = {"type": "http", "method": "POST", "path": "/oauth/token", "headers": headers}
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return asyncio.run(read_form(Request(scope, receive)))


def _refused(body: bytes, content_type: str | None = FORM) -> str:
    with pytest.raises(FormError) as refused:
        _read(body, content_type)
    return str(refused.value)


def test_a_form_is_read() -> None:
    assert _read(b"grant_type=client_credentials&scope=a+b%20c&x=%C3%A9") == {
        "grant_type": "client_credentials",
        "scope": "a b c",
        "x": "é",
    }


@pytest.mark.parametrize(
    "content_type",
    [FORM, f"{FORM}; charset=utf-8", " Application/X-WWW-Form-URLencoded ;charset=UTF-8",
     FORM.upper()],
)  # fmt: skip
def test_the_media_type_is_read_without_parameters_or_case(content_type: str) -> None:
    assert _read(b"a=1", content_type) == {"a": "1"}


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "multipart/form-data; boundary=x", f"{FORM}x", f"x{FORM}",
     "text/plain; type=application/x-www-form-urlencoded"],
)  # fmt: skip
def test_another_media_type_is_refused(content_type: str | None) -> None:
    assert _refused(b"a=1", content_type) == "the body must be application/x-www-form-urlencoded"


def test_the_largest_form_is_read_and_one_byte_more_refused() -> None:
    value = "v" * (MAX_FORM_BYTES - 2)
    assert MAX_FORM_BYTES == 65536
    assert _read(f"a={value}".encode()) == {"a": value}
    assert _refused(f"a={value}v".encode()) == "the form is too large"


@pytest.mark.parametrize("body", [b"a=%zz", b"a=%4", b"a=%", b"a=%4g&b=1", b"%GG=1", b"a=1%"])
def test_a_broken_percent_escape_is_refused(body: bytes) -> None:
    assert _refused(body) == "the form body has a broken percent-escape"


def test_percent_escapes_in_either_case_are_read() -> None:
    assert _read(b"a=%4a%4A%2b") == {"a": "JJ+"}


@pytest.mark.parametrize(
    "body", [b"a=\xff", b"a=%ff", b"a=%C3", b"a", b"a=1&&b=2", b"a=1&", b"&a=1", b"=1&b"]
)
def test_a_malformed_body_is_refused(body: bytes) -> None:
    assert _refused(body) == "the form body is malformed"


def test_an_empty_body_is_an_empty_form() -> None:
    assert _read(b"") == {}


def test_a_parameter_without_a_value_is_absent() -> None:
    assert _read(b"a=&b=2") == {"b": "2"}
    assert _read(b"a=&a=2") == {"a": "2"}  # not a repetition: the first is absent


def test_a_repeated_parameter_is_refused_by_name() -> None:
    assert _refused(b"scope=a&grant_type=x&scope=b") == "parameter scope is repeated"
    assert _refused(b"a=1&a=1") == "parameter a is repeated"


def test_the_most_fields_are_read_and_one_more_refused() -> None:
    assert MAX_FIELDS == 32
    fields = [f"f{i}=v" for i in range(MAX_FIELDS)]
    assert len(_read("&".join(fields).encode())) == MAX_FIELDS
    assert _refused("&".join([*fields, "g=v"]).encode()) == "the form body is malformed"
