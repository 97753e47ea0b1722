"""authlib's client pieces, imported in one place.

authlib 1.9 prefers the httpx2 fork and warns, at import, when it falls back to httpx,
which is what Sluis uses and what authlib still supports. That one warning is silenced
here, around these imports only.
"""

import warnings

# authlib.deprecate installs an "always" filter for its warnings when first imported; import
# it first, so that the "ignore" below goes in front of it.
import authlib.deprecate  # noqa: F401

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

__all__ = ["OAuth2Client", "OAuthError", "PrivateKeyJWT"]
