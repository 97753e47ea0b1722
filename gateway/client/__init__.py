"""The Sluis client SDK (consumers): token-endpoint authentication for authlib's OAuth2 clients.

More arrives with the exchange (issue 7): a client that holds the certificate, gets and
refreshes tokens and returns query results.
"""

from gateway.client.auth import FapiPrivateKeyJWT, IShareClientAssertion, mtls_context

__all__ = ["FapiPrivateKeyJWT", "IShareClientAssertion", "mtls_context"]
