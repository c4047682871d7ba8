"""Settings from the environment, checked once at start-up."""

import re
from collections.abc import Mapping


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable."""


def _integer(environ, name, default, minimum=0):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return int(raw)


def _rate(environ, name, default):
    """A limit written `HITS/SECONDS`, e.g. `10/900`: at most 10 hits in 15 minutes."""
    raw = environ.get(name, "").strip() or default
    match = re.fullmatch(r"([1-9]\d*)/([1-9]\d*)", raw)
    if not match:
        raise ConfigError(f"{name} must look like HITS/SECONDS (e.g. {default}), got {raw!r}")
    return int(match[1]), int(match[2])


def _boolean(environ, name, default=False):
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _origins(environ, name):
    origins = [o.strip().rstrip("/") for o in environ.get(name, "").split(",") if o.strip()]
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ConfigError(f"{name} must be a comma-separated list of origins like "
                              f"https://dashboard.example.com, got {origin!r}")
    return origins


def _key_list(environ, name, default):
    """Comma-separated secrets, the first one current; `default` when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return [default]
    keys = [key.strip() for key in raw.split(",")]
    if any(len(key) < 16 for key in keys):
        raise ConfigError(f"{name} must be a comma-separated list of keys of at least 16 "
                          "characters each")
    return keys


def _log_level(environ):
    raw = environ.get("LOG_LEVEL", "").strip()
    if raw and raw.upper() not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return raw.upper() or "INFO"


def load_settings(environ: Mapping[str, str]) -> dict:
    """Read every setting from `environ`; raise ConfigError on the first bad one."""
    env = environ.get("CHATCONNECT_ENV", "production").strip() or "production"
    if env not in ("production", "development"):
        raise ConfigError(f"CHATCONNECT_ENV must be 'production' or 'development', got {env!r}")

    database_url = environ.get("DATABASE_URL", "").strip()
    if not database_url:
        raise ConfigError("DATABASE_URL is not set (e.g. postgresql://user@localhost/chatconnect)")
    if not re.match(r"postgres(ql)?://", database_url):
        raise ConfigError("DATABASE_URL must start with postgresql://")

    secret_key = environ.get("SECRET_KEY", "").strip()
    if not secret_key:
        if env != "development":
            raise ConfigError("SECRET_KEY is not set (required outside development)")
        secret_key = "development-only-secret"

    pool_min = _integer(environ, "DB_POOL_MIN_SIZE", 4, minimum=1)
    pool_max = _integer(environ, "DB_POOL_MAX_SIZE", 20, minimum=1)
    if pool_max < pool_min:
        raise ConfigError("DB_POOL_MAX_SIZE must be >= DB_POOL_MIN_SIZE")

    keepalive = _integer(environ, "EVENT_STREAM_KEEPALIVE_SECONDS", 15, minimum=1)
    if keepalive > 15:
        raise ConfigError("EVENT_STREAM_KEEPALIVE_SECONDS must be at most 15 (proxies and "
                          "browsers give up on a silent stream)")

    return {
        "ENV": env,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret_key,
        "DB_POOL_MIN_SIZE": pool_min,
        "DB_POOL_MAX_SIZE": pool_max,
        "DB_POOL_TIMEOUT": _integer(environ, "DB_POOL_TIMEOUT", 5, minimum=1),
        "SESSION_IDLE_TIMEOUT": _integer(environ, "SESSION_IDLE_TIMEOUT", 1800, minimum=60),
        "SESSION_MAX_LIFETIME": _integer(environ, "SESSION_MAX_LIFETIME", 43200, minimum=60),
        "DASHBOARD_ORIGINS": _origins(environ, "DASHBOARD_ORIGINS"),
        "TRUSTED_PROXY_HOPS": _integer(environ, "TRUSTED_PROXY_HOPS", 0),
        "LOGIN_LIMIT_PER_USERNAME": _rate(environ, "LOGIN_LIMIT_PER_USERNAME", "10/900"),
        "LOGIN_LIMIT_PER_IP": _rate(environ, "LOGIN_LIMIT_PER_IP", "30/900"),
        "REGISTER_LIMIT_PER_IP": _rate(environ, "REGISTER_LIMIT_PER_IP", "10/3600"),
        "PASSWORD_HASH_CONCURRENCY": _integer(environ, "PASSWORD_HASH_CONCURRENCY", 2,
                                              minimum=1),
        "CONVERSATION_LIMIT_PER_IP": _rate(environ, "CONVERSATION_LIMIT_PER_IP", "10/3600"),
        "VISITOR_MESSAGE_LIMIT_PER_IP": _rate(environ, "VISITOR_MESSAGE_LIMIT_PER_IP", "60/60"),
        # Real-time: events, streams and how many waits one caller may hold at once.
        "EVENTS_RETENTION_DAYS": _integer(environ, "EVENTS_RETENTION_DAYS", 30, minimum=1),
        "EVENT_STREAM_SECONDS": _integer(environ, "EVENT_STREAM_SECONDS", 300, minimum=1),
        "EVENT_STREAM_KEEPALIVE_SECONDS": keepalive,
        "WAITS_PER_VISITOR": _integer(environ, "WAITS_PER_VISITOR", 4, minimum=1),
        "WAITS_PER_SESSION": _integer(environ, "WAITS_PER_SESSION", 8, minimum=1),
        "WAITS_PER_IP": _integer(environ, "WAITS_PER_IP", 300, minimum=1),
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": _boolean(environ, "WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
        # Contacts and verified identity: the keys that encrypt identity secrets (the first
        # encrypts, all decrypt), SECRET_KEY when unset.
        "IDENTITY_ENCRYPTION_KEYS": _key_list(environ, "IDENTITY_ENCRYPTION_KEYS", secret_key),
        "IDENTIFY_LIMIT_PER_IP": _rate(environ, "IDENTIFY_LIMIT_PER_IP", "60/60"),
        "ARTICLE_SEARCH_LIMIT_PER_IP": _rate(environ, "ARTICLE_SEARCH_LIMIT_PER_IP", "120/60"),
        "LOG_LEVEL": _log_level(environ),
        # Caches and metrics
        "WIDGET_CACHE_SIZE": _integer(environ, "WIDGET_CACHE_SIZE", 10000),
        "SESSION_CACHE_SIZE": _integer(environ, "SESSION_CACHE_SIZE", 10000),
        "METRICS_ENABLED": _boolean(environ, "METRICS_ENABLED", False),
    }
