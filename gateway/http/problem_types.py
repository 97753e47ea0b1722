"""The one list of problem types (``urn:sluis:problem:<code>``) the gateway can answer.

docs/errors.md documents each; tests/gateway/test_problem_types.py fails when the source can
answer a type missing here, or when this list and docs/errors.md disagree. Add a type here
and to docs/errors.md in the same change.
"""

from __future__ import annotations

#: RFC 6749 ``error`` values the token endpoint answers, each as ``oauth-<error>``.
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "temporarily_unavailable",  # an iSHARE satellite could not vouch for the party
    }
)

#: ``certs.CertificateRejected`` codes, each answered as ``certificate-<code>``.
CERTIFICATE_CODES = frozenset(
    {
        "no-certificate", "malformed", "untrusted-issuer", "bad-signature", "expired",
        "not-yet-valid", "not-a-ca", "path-too-long", "wrong-key-usage",
        "wrong-extended-key-usage", "unknown-critical-extension", "weak-key", "weak-signature",
        "leaf-is-ca", "missing-organization-identifier", "invalid-organization-identifier",
        "missing-organization-name", "missing-participant-uri", "revoked", "crl-unavailable",
        "crl-expired", "crl-invalid",
    }
)  # fmt: skip

#: ``gateway.auth.tokens.TokenRejected`` codes, each answered as ``token-<code>``.
TOKEN_CODES = frozenset(
    {
        "missing", "in-query", "malformed", "wrong-type", "algorithm-not-allowed", "no-issuer",
        "unknown-issuer", "wrong-issuer", "unknown-key", "bad-signature", "wrong-audience",
        "expired", "not-yet-valid", "unbound", "wrong-certificate", "wrong-client", "revoked",
        "client-disabled", "insufficient-scope",
    }
)  # fmt: skip

_GATEWAY = frozenset(
    {
        # HTTP itself (Starlette's exceptions, the front door, the body limit)
        "bad-request", "not-authenticated", "forbidden", "not-found", "method-not-allowed",
        "not-acceptable", "body-too-large", "unsupported-media-type", "http-error",
        "request-line-too-long", "headers-too-large", "too-many-headers", "request-timeout",
        "too-many-connections", "validation-error", "rate-limited", "internal-error",
        # participants, roles, clients
        "unknown-participant", "participant-suspended", "role-required", "participant-exists",
        "participant-not-found", "client-exists", "client-not-found", "client-takes-no-keys",
        "issuer-keys-unavailable", "ishare-not-configured",
        # datasets and policies
        "dataset-not-found",
        "dataset-provider",
        "provider-role-required",
        "policy-format",
        "policy-unreadable",
        "policy-invalid", "policy-target-mismatch", "policy-unloadable", "policy-not-found",
        # agreements and the exchange
        "agreement-not-found", "agreement-state", "not-your-agreement", "not-your-dataset",
        "no-agreement", "policy-denied", "bad-query", "not-a-table",
        "not-an-api", "upstream-refused", "no-privacy-budget",
        # the audit log and dependencies
        "audit-unavailable", "size-out-of-range", "index-out-of-range", "empty-tree",
        "entry-not-found",
        # the officer console's listing and export (issue 15)
        "bad-cursor", "conflicting-filters", "range-out-of-range", "range-not-signed",
        "change-not-recordable", "storage-unavailable", "crl-unavailable", "crl-expired",
        # the Dataspace Protocol (gateway/dsp)
        "dsp-malformed-message", "dsp-invalid-transition", "dsp-negotiation-not-found",
        "dsp-offer-outdated", "dsp-purpose-required", "dsp-callback-refused",
        "dsp-transfer-not-found", "dsp-format-unsupported", "dsp-agreement-unusable",
        "dsp-no-client",
        # the Dataspace Protocol, consumer side (gateway/dsp/consumer*.py, peer.py)
        "dsp-provider-address", "dsp-provider-unreachable", "dsp-provider-refused",
        "dsp-provider-invalid", "dsp-provider-participant", "dsp-negotiation-not-finalized",
        "dsp-transfer-not-started", "dsp-purpose-not-offered",
    }
)  # fmt: skip

#: ``connectors.ConnectorError`` codes, ``_`` written ``-``.
CONNECTOR_CODES = frozenset(
    {
        "query-invalid", "unknown-column", "wrong-value-type", "value-refused",
        "too-many-values", "limit-out-of-range", "source-refused-query", "column-not-allowed",
        "aggregate-required", "aggregate-not-allowed", "path-refused", "target-refused",
        "connector-config",
        "source-error", "source-unavailable", "source-timeout", "source-rejected",
        "schema-mismatch", "query-too-large", "spill-failed",
    }
)  # fmt: skip

PROBLEM_TYPES: frozenset[str] = (
    _GATEWAY
    | CONNECTOR_CODES
    | {f"certificate-{code}" for code in CERTIFICATE_CODES}
    | {f"token-{code}" for code in TOKEN_CODES}
    | {f"oauth-{error.replace('_', '-')}" for error in OAUTH_ERRORS}
)
