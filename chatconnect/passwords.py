"""Password hashing with werkzeug's scrypt at no less than OWASP's minimum cost."""

from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

# OWASP: scrypt N=2^15, r=8, p=3 is one of the minimum equivalent settings.
METHOD = "scrypt:32768:8:3"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=METHOD)


def needs_rehash(password_hash: str) -> bool:
    return password_hash.split("$", 1)[0] != METHOD


@cache
def _dummy_hash() -> str:
    return hash_password("no user has this password")


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown user) spend the same work and return False."""
    if password_hash is None:
        check_password_hash(_dummy_hash(), password)
        return False
    try:
        return check_password_hash(password_hash, password)
    except ValueError:  # a hash in a format werkzeug does not know
        return False
