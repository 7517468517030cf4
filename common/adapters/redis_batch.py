"""Auto-pipelining for redis.asyncio: the commands concurrent requests issue go out as one pipeline.

A command sent alone through redis-py's asyncio client costs ~90 µs of CPU (a write, a read, a
timeout scope, the connection pool, per command); the same command inside a pipeline of thirty
costs ~18 µs (measured on the development machine). A cache hit is one command, so under load the
client, not Redis, was the bound. Here a command is queued; if no pipeline is in flight one is
started at once, and whatever was queued while it ran goes out in the next (no timer, like the
webhook's group commit): a lone request pays about what it paid before, a crowd shares the cost.

Each caller gets its own command's reply or exception; a pipeline that fails as a whole (timeout,
connection lost) fails every command in it, and each caller falls back as it would have alone.
One instance per event loop, like the client it wraps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio

MAX_PIPELINE = 256


class AutoPipeline:
    """Queue `execute(*args)` calls of one event loop; send each queue as one pipeline."""

    def __init__(self, client: redis.asyncio.Redis, max_pipeline: int = MAX_PIPELINE) -> None:
        self._client = client
        self._max = max_pipeline
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flushing = False

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """The reply of one command (`args` as for `execute_command`), once its pipeline returned."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((args, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                await self._send([entry for entry in batch if not entry[1].done()])
        except BaseException as exc:  # cancelled (loop shutdown): nobody may wait forever
            _fail([*self._queue], exc)
            self._queue = []
            raise
        finally:
            self._flushing = False

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        if not batch:
            return
        pipe = self._client.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(*args)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except (redis.RedisError, OSError) as exc:  # TimeoutError is an OSError
            replies = [exc] * len(batch)
        except BaseException as exc:
            _fail(batch, exc)
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up (cancelled): nobody wants the reply
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _fail(entries: list[tuple[tuple[Any, ...], asyncio.Future[Any]]], cause: BaseException) -> None:
    for _, future in entries:
        if not future.done():
            error = redis.ConnectionError(f"cache pipeline stopped: {type(cause).__name__}")
            future.set_exception(error)
