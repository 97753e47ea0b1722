"""The Sluis client SDK: token-endpoint authentication for authlib, and a session client.

``SluisClient`` holds the certificate, gets and refreshes bound tokens, and returns query
results as pyarrow Tables; ``sluis fetch`` is its command-line face.
"""

from gateway.client.auth import FapiPrivateKeyJWT, IShareClientAssertion, mtls_context
from gateway.client.diagnose import ClientSetupError
from gateway.client.sdk import GatewayUnreachable, Receipt, SluisClient, SluisError

__all__ = [
    "ClientSetupError",
    "FapiPrivateKeyJWT",
    "GatewayUnreachable",
    "IShareClientAssertion",
    "Receipt",
    "SluisClient",
    "SluisError",
    "mtls_context",
]
