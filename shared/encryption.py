"""Secrets at rest (Linear's OAuth tokens), encrypted with Fernet under a key derived from DASHBOARD_SECRET_KEY.

Fernet wants 32 random bytes; DASHBOARD_SECRET_KEY is any long string. HKDF-SHA256 turns it into a key
of its own (with a purpose label), so the same secret can also sign tokens without the two uses ever
sharing key material. There is deliberately no fallback to the signing key `deploy.prepare` generates:
that one is stored in the database, and a key kept beside the ciphertext protects nothing.

Rotation: DASHBOARD_SECRET_KEY_PREVIOUS (comma-separated) lists keys that still decrypt (MultiFernet);
new ciphertexts always use the current key, and `python -m shared.linear.oauth --reencrypt` rewrites
the stored ones at once.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.config import Settings

PURPOSE = b"opencode-dashboard: tokens at rest (Fernet) v1"


class EncryptionUnavailable(Exception):
    """No DASHBOARD_SECRET_KEY, or a ciphertext none of the configured keys can open."""


def fernet_key(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(secret.encode("utf-8"))
    return base64.urlsafe_b64encode(derived)


def encryption_available(settings: Settings) -> bool:
    return bool(settings.secret_key)


def _cipher(settings: Settings) -> MultiFernet:
    if not settings.secret_key:
        raise EncryptionUnavailable("DASHBOARD_SECRET_KEY is not set: tokens can only be stored encrypted under it")
    keys = [settings.secret_key, *settings.previous_secret_keys]
    return MultiFernet([Fernet(fernet_key(key)) for key in keys])


def encrypt(settings: Settings, plaintext: str) -> str:
    return _cipher(settings).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, ciphertext: str) -> str:
    try:
        return _cipher(settings).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise EncryptionUnavailable("a stored token cannot be decrypted with DASHBOARD_SECRET_KEY (was it changed? "
                                    "list the old one in DASHBOARD_SECRET_KEY_PREVIOUS)") from None


def reencrypt(settings: Settings, ciphertext: str) -> str:
    """The same plaintext under the current key (for rotation)."""
    try:
        return _cipher(settings).rotate(ciphertext.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise EncryptionUnavailable("a stored token cannot be decrypted with DASHBOARD_SECRET_KEY or "
                                    "DASHBOARD_SECRET_KEY_PREVIOUS") from None
