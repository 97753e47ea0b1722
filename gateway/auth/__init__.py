"""Tokens: JOSE helpers, minting and checking RFC 9068 access tokens bound to certificates.

The modules here are pure (no IO, the time passed in); the HTTP layer and the OAuth2
endpoints live in gateway/oauth and gateway/http.
"""
