"""The gateway's error family.

::

    GatewayError            (code, status, detail)
    ├── BadRequest          400
    ├── Unauthorized        401  no or unusable credentials
    ├── Forbidden           403  authenticated, but not allowed
    ├── NotFound            404
    ├── Conflict            409
    └── ServiceUnavailable  503  a dependency (database, audit log) is down: fail closed

Domain code raises these with a stable ``code``; gateway/http/problems.py is the one place
that turns them (and the pure packages' errors) into RFC 9457 problem+json.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of the gateway's own errors."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class BadRequest(GatewayError):
    """The request is malformed."""

    status = 400
    title = "Bad request"


class Unauthorized(GatewayError):
    """No credentials, or credentials that cannot be verified."""

    status = 401
    title = "Not authenticated"


class Forbidden(GatewayError):
    """The caller is known but may not do this."""

    status = 403
    title = "Forbidden"


class NotFound(GatewayError):
    """No such resource."""

    status = 404
    title = "Not found"


class Conflict(GatewayError):
    """The resource exists already or is in the wrong state."""

    status = 409
    title = "Conflict"


class ServiceUnavailable(GatewayError):
    """A dependency is unavailable; nothing was released."""

    status = 503
    title = "Service unavailable"
