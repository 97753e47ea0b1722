"""Strict text encodings shared by notes and checkpoints.

Both formats use standard base64 with padding (RFC 4648 §4). Only the canonical encoding
is accepted: no whitespace, no missing padding, no stray bits in the last character, so a
value has exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii
import re

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def decode_base64(text: str) -> bytes:
    """Decode canonical standard base64; raise :class:`ValueError` on anything else."""
    if not _BASE64.fullmatch(text):
        raise ValueError("not standard base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64 padding") from exc
    if encode_base64(data) != text:
        raise ValueError("non-canonical base64")
    return data


def encode_base64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")
