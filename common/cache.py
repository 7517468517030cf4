"""Redis read-through cache for the two brief GET endpoints, never stale after a write.

Keys are versioned: every write sets `ver:<name>` to a fresh random token after its transaction
commits, and readers fetch the version (and the cache generation, see `invalidate`) and the entry
for that version in one round trip. A reader that loaded an old row just before the bump stores
it under the old version, which nobody asks for again, so a read that starts after a write's
commit can never see the value from before it.

Versions are random tokens, never counters: a version key that expires or is evicted (Redis under
`allkeys-lru`) is re-created by the next reader with a new token, so an entry stored under an
earlier version can never become current again (a counter restarting at 1 would revive it).

Redis down or slow (short socket timeouts) is not an error: reads fall through to PostgreSQL
with a warning, and the warning is rate-limited so an outage does not flood the log.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from common.config import get_settings

logger = logging.getLogger(__name__)

# KEYS[1] = generation key, KEYS[2] = version key; ARGV[1] = entry key prefix, ARGV[2] and ARGV[3]
# = fresh tokens for a missing generation / version, ARGV[4] = their TTL.
# Returns {"<generation>:<version>", entry or false}: one round trip.
_READ_SCRIPT = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  gen = ARGV[2]
  redis.call('SET', KEYS[1], gen)
end
local ver = redis.call('GET', KEYS[2])
if not ver then
  ver = ARGV[3]
  redis.call('SET', KEYS[2], ver, 'EX', ARGV[4])
end
local tag = gen .. ':' .. ver
return {tag, redis.call('GET', ARGV[1] .. tag)}
"""
GENERATION_KEY = "cache:generation"

# KEYS = version keys, ARGV[1] = their TTL, ARGV[2..] = a fresh token per key. One round trip
# however many names a batch touched.
_BUMP_SCRIPT = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""
# A bump must not be abandoned as eagerly as a read: a timed-out bump may leave a stale entry
# readable until its TTL ends, while a timed-out read merely costs a query.
WRITE_TIMEOUT_SECONDS = 1.0

_client: redis.Redis | None = None
_writer: redis.Redis | None = None
_client_lock = threading.Lock()
_read_script: Any = None
_bump_script: Any = None
_last_warning = 0.0


def _warn(action: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 5:
        _last_warning = now
        logger.warning("redis unavailable during %s, answering from PostgreSQL: %s", action, exc)


def client() -> redis.Redis | None:
    """The process-wide Redis client, or None when the cache is switched off."""
    global _client, _read_script
    settings = get_settings()
    if not settings.cache_enabled:
        return None
    if _client is None:
        with _client_lock:
            if _client is None:
                timeout = settings.redis_timeout_seconds
                _client = redis.Redis.from_url(
                    settings.redis_url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    health_check_interval=30,
                )
                _read_script = _client.register_script(_READ_SCRIPT)
    return _client


def _write_client() -> redis.Redis | None:
    """A second client for version bumps, with a longer timeout than reads."""
    global _writer, _bump_script
    settings = get_settings()
    if not settings.cache_enabled:
        return None
    if _writer is None:
        with _client_lock:
            if _writer is None:
                timeout = max(settings.redis_timeout_seconds, WRITE_TIMEOUT_SECONDS)
                _writer = redis.Redis.from_url(
                    settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
                _bump_script = _writer.register_script(_BUMP_SCRIPT)
    return _writer


def reset() -> None:
    """Forget the clients (tests that change REDIS_URL or CACHE_ENABLED)."""
    global _client, _writer, _read_script, _bump_script, _owes_generation
    with _client_lock:
        for existing in (_client, _writer):
            if existing is not None:
                existing.close()
        _client = _writer = None
        _read_script = _bump_script = None
        _owes_generation = False


def stock_name(warehouse_id: object, product_id: object) -> str:
    return f"stock:{warehouse_id}:{product_id}"


def movement_name(movement_id: object) -> str:
    return f"movement:{movement_id}"


def read_through(name: str, load: Callable[[], bytes | None]) -> bytes | None:
    """The cached bytes for `name`, or `load()` (stored for next time unless it is None)."""
    r = client()
    if r is None or not _debt_paid():
        return load()
    try:
        tag, cached = _read_script(
            keys=[GENERATION_KEY, f"ver:{name}"], args=[f"val:{name}:", _token(), _token(), _version_ttl()]
        )
    except redis.RedisError as exc:
        _warn("read", exc)
        return load()
    if cached is not None:
        return cached
    value = load()
    if value is not None:
        try:
            r.set(f"val:{name}:{tag.decode()}", value, ex=get_settings().cache_ttl_seconds)
        except redis.RedisError as exc:
            _warn("fill", exc)
    return value


def invalidate(names: Iterable[str]) -> None:
    """Bump the versions of `names`; call only after the writing transaction committed.

    If the bump fails (Redis down, frozen or unreachable) this process owes a new cache
    generation: until Redis takes the generation bump, which makes every entry cached before it
    unreachable, this process answers reads from PostgreSQL. It tries again on its next write and,
    at most once a second, on a read. Another process (a Lambda container) could still serve an
    entry cached before the outage, for at most CACHE_TTL_SECONDS.
    """
    global _owes_generation
    keys = [f"ver:{name}" for name in names]
    if not keys or _write_client() is None:
        return
    if _owes_generation and not _pay_generation():
        return
    try:
        _bump_script(keys=keys, args=[_version_ttl(), *(_token() for _ in keys)])
    except redis.RedisError as exc:
        _owes_generation = True
        _warn("invalidate", exc)


_owes_generation = False
_last_payment_attempt = 0.0


def _token() -> str:
    """A version nobody has used: random, so an expired or evicted version never comes back."""
    return secrets.token_hex(8)


def _version_ttl() -> int:
    """Versions outlive the entries stored under them; an expired one is simply re-created."""
    return max(get_settings().cache_ttl_seconds * 2, 60)


def _debt_paid() -> bool:
    """True unless a generation bump is owed and cannot be paid now (tried at most once a second)."""
    if not _owes_generation:
        return True
    if time.monotonic() - _last_payment_attempt < 1.0:
        return False
    return _pay_generation()


def _pay_generation() -> bool:
    global _owes_generation, _last_payment_attempt
    _last_payment_attempt = time.monotonic()
    writer = _write_client()
    if writer is None:
        return False
    try:
        writer.set(GENERATION_KEY, _token())
    except redis.RedisError as exc:
        _warn("generation bump", exc)
        return False
    _owes_generation = False
    logger.warning("redis reachable again: cache generation bumped, entries from before dropped")
    return True
