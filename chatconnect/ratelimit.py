"""Rate limits as 429 rate_limited answers with Retry-After. A limit is (hits, seconds)."""

from .errors import ApiError
from .repositories.rate_limits import RateLimitRepository


def enforce(conn, key: str, limit: tuple[int, int]) -> None:
    """Count a hit against `key`; 429 once more than `limit` hits fall in the window."""
    hits, retry_after = RateLimitRepository(conn).hit(key, limit[1])
    if hits > limit[0]:
        raise ApiError(429, "rate_limited", "too many requests; retry later",
                       headers={"Retry-After": str(max(1, retry_after))})
