"""DPoP (RFC 9449) proof verification and creation. To be written: see verify_proof."""

from __future__ import annotations


def verify_proof(proof: str, *, method: str, url: str, access_token: str, jkt: str) -> str:
    """Verify a DPoP proof for this request and token; return the key's thumbprint."""
    raise NotImplementedError
