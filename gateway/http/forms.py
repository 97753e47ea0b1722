"""Strict ``application/x-www-form-urlencoded`` bodies for the OAuth endpoints.

RFC 6749 §3.2: parameters MUST NOT repeat, parameters without a value are as if absent.
Anything that is not well-formed UTF-8 form data is refused as ``invalid_request``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from fastapi import Request

MAX_FIELDS = 32
BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
MAX_FORM_BYTES = 64 * 1024


class FormError(ValueError):
    """The body is not an acceptable form (OAuth ``invalid_request``)."""


async def read_form(request: Request) -> dict[str, str]:
    """The form body as a dict; FormError for anything malformed."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise FormError("the body must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormError("the form is too large")
    if BAD_PERCENT.search(body):
        raise FormError("the form body has a broken percent-escape")
    try:
        text = body.decode("utf-8", errors="strict")
        pairs = parse_qsl(
            text,
            keep_blank_values=False,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("the form body is malformed") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise FormError(f"parameter {key} is repeated")
        form[key] = value
    return form
