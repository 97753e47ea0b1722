"""The OAuth2 authorization server (client credentials, certificate-bound tokens) and clients."""
