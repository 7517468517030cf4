"""The cache's own Redis pipeline (common.adapters.redis_batch.RespPipeline) on a real Redis.

Each caller must get its own command's reply, in a crowd as alone; a command Redis refuses fails
that caller only; a server that stops answering fails the waiting callers within the timeout
(the cache then reads PostgreSQL) and the next command gets a fresh connection.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import redis

from common.adapters.redis_batch import RespPipeline

pytestmark = pytest.mark.integration


def test_a_crowd_of_commands_each_get_their_own_reply_and_an_error_stays_with_its_command(
    redis_url: str,
) -> None:
    redis_url = redis_url.rsplit("/", 1)[0] + "/3"  # another database: the pipeline SELECTs it
    client = redis.Redis.from_url(redis_url)
    client.set("pipe:test:text", b"not a number")
    names = [f"pipe:test:{i}" for i in range(300)]  # more than one pipeline's worth (MAX_PIPELINE)
    client.mset({name: name.encode() for name in names})

    async def crowd() -> list[object]:
        pipeline = RespPipeline.for_url(redis_url, timeout=5)
        assert pipeline is not None
        futures = [pipeline.execute("MGET", name, "pipe:test:missing") for name in names]
        futures.insert(150, pipeline.execute("INCR", "pipe:test:text"))
        return await asyncio.gather(*futures, return_exceptions=True)

    replies = asyncio.run(crowd())
    refused = replies.pop(150)
    assert isinstance(refused, redis.ResponseError)
    assert replies == [[name.encode(), None] for name in names]
    client.delete("pipe:test:text", *names)


def test_a_server_that_stops_answering_fails_the_callers_in_time_and_the_next_command_reconnects() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    port = silent.getsockname()[1]

    async def calls() -> tuple[float, bool]:
        pipeline = RespPipeline("127.0.0.1", port, timeout=0.3)
        began = time.monotonic()
        results = await asyncio.gather(pipeline.execute("GET", "a"), pipeline.execute("GET", "b"),
                                       return_exceptions=True)  # fmt: skip
        waited = time.monotonic() - began
        assert all(isinstance(r, redis.TimeoutError) for r in results), results
        first = pipeline._connection
        with pytest.raises(redis.TimeoutError):
            await pipeline.execute("GET", "c")
        return waited, pipeline._connection is not first

    try:
        waited, reconnected = asyncio.run(calls())
    finally:
        silent.close()
    assert waited < 3  # the timeout (0.3 s), with room for a loaded machine
    assert reconnected


def test_only_plain_tcp_urls_get_the_pipeline() -> None:
    assert RespPipeline.for_url("redis://127.0.0.1:6379/2", timeout=1) is not None
    assert RespPipeline.for_url("redis://user:secret@cache:6380/0", timeout=1) is not None
    assert RespPipeline.for_url("rediss://cache:6380/0", timeout=1) is None
    assert RespPipeline.for_url("unix:///run/redis.sock?db=1", timeout=1) is None
