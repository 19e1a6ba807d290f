"""argon2id hashing and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from patientline.core.errors import InvalidInput

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters

COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwerty123",
        "abc12345",
        "a1234567",
        "11111111",
        "88888888",
        "iloveyou1",
        "admin123",
        "admin12345",
        "passw0rd",
        "p@ssw0rd",
        "welcome1",
        "changeme1",
        "hospital1",
        "patientline1",
    }
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_policy(password: str, *, username: str, min_length: int) -> None:
    """At least `min_length` characters, letters and digits, not the username, not a common password."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append("too_short")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        problems.append("needs_letters_and_digits")
    if username and username.lower() in password.lower():
        problems.append("contains_username")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("too_common")
    if problems:
        raise InvalidInput(
            "The password must have at least {min_length} characters, contain letters and digits, "
            "and must not contain the user name or be a common password.",
            params={"min_length": min_length},
            details={"password": problems},
            error_id="weak_password",
        )
