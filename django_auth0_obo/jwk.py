"""Former home of the JWK rules, now in :mod:`django_auth0_obo.jose`; kept so imports still work.

Nothing is defined here: every name is :mod:`~django_auth0_obo.jose`'s own object.
"""

from __future__ import annotations

from django_auth0_obo.jose import (
    ALGORITHM_KEYS,
    ASYMMETRIC_ALGORITHMS,
    MIN_RSA_BITS,
    PRIVATE_MEMBERS,
    THUMBPRINT_MEMBERS,
    JWKError,
    PublicJWK,
    b64url_decode,
    b64url_encode,
    canonical_json,
    check_public_jwk,
    jwk_thumbprint,
    public_key_from_jwk,
    thumbprint_of_canonical,
)
from django_auth0_obo.jose import public_key_from_jwk as load_public_jwk
from django_auth0_obo.jose import verify as verify_signature

__all__ = [
    "ALGORITHM_KEYS",
    "ASYMMETRIC_ALGORITHMS",
    "MIN_RSA_BITS",
    "PRIVATE_MEMBERS",
    "THUMBPRINT_MEMBERS",
    "JWKError",
    "PublicJWK",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "check_public_jwk",
    "jwk_thumbprint",
    "load_public_jwk",
    "public_key_from_jwk",
    "thumbprint_of_canonical",
    "verify_signature",
]
