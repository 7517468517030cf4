"""Redis read-through cache for the two brief GET endpoints, never stale after a write.

Keys are versioned: every write sets `ver:<name>` to a fresh random token after its transaction
commits. An entry `val:<name>` is stored tagged with the generation (see `invalidate`) and the
version its reader saw before loading it, and is served only while both are still current: a
reader fetches generation, version and entry in one round trip (MGET). A reader that loaded an
old row just before the bump stores it tagged with the old version, which is never current again,
so a read that starts after a write's commit can never see the value from before it.

Versions are random tokens, never counters: a version key that expires or is evicted (Redis under
`allkeys-lru`) is re-created by the next reader with a new token, so an entry stored under an
earlier version can never become current again (a counter restarting at 1 would revive it).

Reads are async: a cache hit is one command on the event loop, with no thread-pool hop, pipelined
with the other requests' (`common.adapters.redis_batch`: a RESP pipeline of its own on plain TCP,
hiredis packing and parsing; redis-py's asyncio client for TLS or a socket, and for the miss's script).
An asyncio client belongs to the loop it was made on, so there is one per event loop (a uvicorn
worker has one; Mangum and a test client have their own).
Writes stay synchronous: they follow a committed transaction, which runs in a thread anyway.

Redis down or slow (short socket timeouts) is not an error: reads fall through to PostgreSQL
with a warning, and the warning is rate-limited so an outage does not flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
import redis
import redis.asyncio

from common.adapters.config import get_settings
from common.adapters.redis_batch import AutoPipeline, RespPipeline

logger = logging.getLogger(__name__)

# A miss whose generation or version key is missing (first read, expired, evicted) creates it with
# a fresh token, atomically. KEYS[1] = generation key, KEYS[2] = version key; ARGV[1] and ARGV[2] =
# fresh tokens, ARGV[3] = the version's TTL. Returns the tag "<generation>:<version>".
_TAG_SCRIPT = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  gen = ARGV[1]
  redis.call('SET', KEYS[1], gen)
end
local ver = redis.call('GET', KEYS[2])
if not ver then
  ver = ARGV[2]
  redis.call('SET', KEYS[2], ver, 'EX', ARGV[3])
end
return gen .. ':' .. ver
"""
# An entry is "<generation>:<version>|<body>": tokens are hex, so the first '|' ends the tag.
_TAG_END = b"|"
GENERATION_KEY = "cache:generation"

# KEYS = version keys, ARGV[1] = their TTL, ARGV[2] = the batch's fresh token, set on every key.
# One round trip however many names a batch touched (see `invalidate` for why one token does).
_BUMP_SCRIPT = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2], 'EX', ARGV[1])
end
return #KEYS
"""
# A bump must not be abandoned as eagerly as a read: a timed-out bump may leave a stale entry
# readable until its TTL ends, while a timed-out read merely costs a query.
WRITE_TIMEOUT_SECONDS = 1.0

# Exceptions that mean "Redis did not answer in time": the read goes to PostgreSQL instead.
_UNAVAILABLE = (redis.RedisError, OSError)  # TimeoutError is an OSError


@dataclass(frozen=True)
class _Reader:
    client: redis.asyncio.Redis
    pipeline: RespPipeline | AutoPipeline
    tag_script: Any


_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Reader] = weakref.WeakKeyDictionary()
_writer: redis.Redis | None = None
_client_lock = threading.Lock()
_bump_script: Any = None
_last_warning = 0.0


def _warn(action: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 5:
        _last_warning = now
        logger.warning("redis unavailable during %s, answering from PostgreSQL: %s", action, exc)


def reader() -> redis.asyncio.Redis | None:
    """This event loop's Redis client, or None when the cache is switched off."""
    entry = _reader()
    return entry.client if entry is not None else None


def _reader() -> _Reader | None:
    if not get_settings().cache_enabled:
        return None
    loop = asyncio.get_running_loop()
    entry = _readers.get(loop)
    if entry is None:  # no await in between: one client per loop, whatever runs concurrently
        settings = get_settings()
        timeout = settings.redis_timeout_seconds
        client = redis.asyncio.Redis.from_url(
            settings.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        # Hits go through a pipeline of their own (plain TCP), else through redis-py's client.
        pipeline = RespPipeline.for_url(settings.redis_url, timeout=timeout) or AutoPipeline(client)
        entry = _readers[loop] = _Reader(client, pipeline, client.register_script(_TAG_SCRIPT))
    return entry


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
    """Forget the clients (tests that change REDIS_URL or CACHE_ENABLED).

    Readers are dropped, not closed: closing one needs its own loop, which may be gone; its
    connections close when it is collected.
    """
    global _writer, _bump_script, _owes_generation
    with _client_lock:
        if _writer is not None:
            _writer.close()
        _readers.clear()
        _writer = None
        _bump_script = None
        _owes_generation = False


_STOCK, _MOVEMENT = "stock:", "movement:"  # the names' prefixes, here and in `changed_names`


def stock_name(warehouse_id: object, product_id: object) -> str:
    return f"{_STOCK}{warehouse_id}:{product_id}"


def movement_name(movement_id: object) -> str:
    return f"{_MOVEMENT}{movement_id}"


def changed_names(changes: Iterable[tuple[UUID, UUID, UUID]]) -> list[str]:
    """The names a committed batch retires, sorted, once each: for every (warehouse, product,
    movement) it changed, `stock_name(warehouse, product)` and `movement_name(movement)`.

    The same strings as those two give, for a whole batch at once: msgspec writes the UUIDs' text
    in C, where `str(UUID)` is Python (~0.4 us each, three per event, thousands per batch).
    """
    texts: list[list[str]] = msgspec.to_builtins(list(changes))
    names = {_STOCK + warehouse + ":" + product for warehouse, product, _ in texts}
    names.update([_MOVEMENT + movement for _, _, movement in texts])
    return sorted(names)


async def read_through(name: str, load: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
    """The cached bytes for `name`, or `await load()` (stored for next time unless it is None)."""
    entry = _reader()
    if entry is None or (_owes_generation and not await _debt_paid()):  # no coroutine when nothing is owed
        return await load()
    version_key, entry_key = f"ver:{name}", f"val:{name}"
    try:
        generation, version, cached = await entry.pipeline.execute(
            "MGET", GENERATION_KEY, version_key, entry_key
        )
        if generation is not None and version is not None:
            tag = generation + b":" + version
            if cached is not None and cached.startswith(tag + _TAG_END):
                return bytes(cached[len(tag) + 1 :])
        else:  # first read since the key expired or was evicted: a fresh token, never an old one
            tag = await entry.tag_script(
                keys=[GENERATION_KEY, version_key], args=[_token(), _token(), _version_ttl()]
            )
    except _UNAVAILABLE as exc:
        _warn("read", exc)
        return await load()
    value = await load()
    if value is not None:
        try:
            await entry.pipeline.execute(
                "SET", entry_key, tag + _TAG_END + value, "EX", get_settings().cache_ttl_seconds
            )
        except _UNAVAILABLE as exc:
            _warn("fill", exc)
    return value


async def ping() -> str:
    """`ok`, `unavailable` or `disabled`: what readiness reports for the cache."""
    client = reader()
    if client is None:
        return "disabled"
    try:
        await client.ping()
        return "ok"
    except _UNAVAILABLE:
        return "unavailable"


def invalidate(names: Iterable[str]) -> None:
    """Bump the versions of `names`; call only after the writing transaction committed.

    Every process reads the same version keys, so a bump that lands retires the old entries for all
    of them. A bump that fails is tried again before the write is answered (BUMP_RETRY_DELAYS, a
    third of a second of pauses: a timed-out or dropped connection, a failover), then as a bump of
    the whole cache generation, which retires every entry at once. Only if Redis refuses all of
    that (it is down, frozen or cut off from this process) does the write go unbumped: this process
    then owes a new generation and answers reads from PostgreSQL until Redis takes it (tried on its
    next write and, at most once a second, on a read), while another process that still reaches
    Redis may serve an entry cached before the write, for at most CACHE_TTL_SECONDS.

    One bump sets every version key of `names` to the same fresh random token: a value none of
    them ever had, which is all freshness needs (an entry is served only while its own key's
    version equals the one it was stored under, so keys sharing a value never mix).
    """
    global _owes_generation
    keys = [f"ver:{name}" for name in names]
    if not keys or _write_client() is None:
        return
    if _owes_generation and not _pay_generation():
        return
    failure: redis.RedisError | None = None
    for delay in (0.0, *BUMP_RETRY_DELAYS):
        time.sleep(delay)
        try:
            _bump_script(keys=keys, args=[_version_ttl(), _token()])
            return
        except redis.RedisError as exc:
            failure = exc
    assert failure is not None
    _warn("invalidate", failure)
    _owes_generation = True
    _pay_generation()  # one try at retiring everything; else owed (reads go to PostgreSQL)


# Pauses before the retries of a failed bump (the first try is at once).
BUMP_RETRY_DELAYS = (0.05, 0.25)


_owes_generation = False
_last_payment_attempt = 0.0


def _token() -> str:
    """A version nobody has used: random, so an expired or evicted version never comes back."""
    return secrets.token_hex(8)


def _version_ttl() -> int:
    """Versions outlive the entries stored under them; an expired one is simply re-created."""
    return max(get_settings().cache_ttl_seconds * 2, 60)


async def _debt_paid() -> bool:
    """True unless a generation bump is owed and cannot be paid now (tried at most once a second).

    Paid through the writer (its longer timeout) in a thread: it happens at most once a second,
    and only while Redis has been failing.
    """
    global _last_payment_attempt
    if not _owes_generation:
        return True
    if time.monotonic() - _last_payment_attempt < 1.0:
        return False
    _last_payment_attempt = time.monotonic()  # before the hop: concurrent readers do not all try
    return await asyncio.to_thread(_pay_generation)


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
