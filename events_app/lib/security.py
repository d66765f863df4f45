"""Secret tokens: derived from the installation secret, stored only as hashes.

A registration's ticket code and manage token are HMACs of its id and a version number, so the outbox
worker can put them in an email without the database ever holding them, and a leaked database gives
no working link. Re-issuing a token is bumping its version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from enum import StrEnum
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: 32 bytes of HMAC-SHA256 output: 256 bits, well above the 128 the tickets and links need.
TOKEN_BYTES = 32


class TokenPurpose(StrEnum):
    TICKET = "ticket"
    MANAGE = "manage"
    JOIN = "join"
    CERTIFICATE = "certificate"


def _mac(secret_key: str, message: str) -> bytes:
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()


def derive_token(secret_key: str, purpose: TokenPurpose, subject_id: UUID, version: int) -> str:
    digest = _mac(secret_key, f"{purpose.value}:{subject_id}:{version}")[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def keyed_digest(secret_key: str, purpose: str, value: str) -> str:
    """A pseudonym of ``value`` (an address, an email) that only the installation's secret can link.

    A plain hash of an IPv4 address or of an email from a known list is reversed by trying them all;
    an HMAC under the secret is not, so a counter's key is no personal data without the secret.
    """
    return _mac(secret_key, f"{purpose}:{value}").hex()[:32]


def hash_token(token: str) -> str:
    """The look-up key stored for a token (SHA-256 is enough: the token itself has 256 bits)."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def looks_like_token(candidate: str) -> bool:
    """Cheap shape check before touching the database with attacker input."""
    return (
        len(candidate) == 43 and all(ch.isalnum() or ch in "-_" for ch in candidate) and candidate.isascii()
    )


_password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
#: Verified against when the email is unknown, so both failures take about the same time.
_DUMMY_HASH = _password_hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; with no hash, spends the same effort and answers False."""
    try:
        return _password_hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_random_token() -> str:
    """A fresh 256-bit token for sessions and API tokens (stored only as :func:`hash_token`)."""
    return secrets.token_urlsafe(TOKEN_BYTES)
