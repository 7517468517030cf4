"""POST /api/v1/pollers/partitions/{topic}/{partition}/{action}: answer a partition a poller paused.

The HTTP face of `warehouse-stock poller resume|skip TOPIC PARTITION` (cli/poller.py): a local
poller pauses a partition on a record batch it cannot decode; `resume` reads it again after the
cause was fixed, `skip` records the batch as a dead letter and reads on. The poller holding the
pause carries the command out within a few seconds (`poller_commands`, migration 0005); /ready
shows the pause until then. An operator route (`functions.http.guards.require_operator`).
Local app only: in AWS the event source mapping reads Kafka.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from common.adapters import consumer_lag
from common.adapters.config import get_settings
from common.adapters.db import get_pool
from common.reads.summary import LAG_FRESH_SECONDS
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest, error_response
from functions.http.guards import require_operator

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


class PollerCommand(BaseModel):
    """The command was recorded; the poller holding the pause carries it out within seconds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "command_id": 7,
                    "action": "skip",
                    "topic": "warehouse-movements",
                    "partition": 1,
                    "paused_offset": 40,
                }
            ]
        }
    )

    command_id: int
    action: Literal["resume", "skip"]
    topic: str
    partition: int
    paused_offset: int


def _request(topic: str, partition: int, action: str) -> tuple[int | None, int | None]:
    with get_pool().connection() as conn:
        command_id, pause = consumer_lag.request_if_paused(
            conn, get_settings().kafka_group_id, topic, partition, action, LAG_FRESH_SECONDS
        )
    return command_id, pause.paused_offset if pause else None


@router.post(
    "/api/v1/pollers/partitions/{topic}/{partition}/{action}",
    summary="Resume a paused partition, or skip its undecodable batch",
    status_code=202,
    response_model=PollerCommand,
    responses={
        401: doc(
            ErrorBody,
            "The operator's token is missing or wrong.",
            {"detail": "missing or wrong bearer token"},
        ),
        422: doc(
            InvalidRequest,
            "The topic, partition or action is not one a partition can have.",
            invalid_example("action", "Input should be 'resume' or 'skip'", "literal_error"),
        ),
        409: doc(
            ErrorBody,
            "No poller reports this partition paused.",
            {
                "detail": "warehouse-movements-1 is not paused",
                "request_id": "5f0c1a9e2b7d4c1e8f3a6b9d0e2c4a7f",
            },
        ),
    },
    dependencies=[Depends(require_operator)],
)
async def answer_paused_partition(
    request: Request,
    topic: Annotated[str, Path(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")],
    partition: Annotated[int, Path(ge=0, le=2_147_483_647)],
    action: Literal["resume", "skip"],
) -> Response:
    """Record the operator's answer; the poller holding the pause carries it out."""
    command_id, offset = await run_in_threadpool(_request, topic, partition, action)
    if command_id is None or offset is None:
        return error_response(409, f"{topic}-{partition} is not paused", request=request)
    logger.warning(
        "operator asked to %s %s-%d (paused at offset %d): command %d",
        action,
        topic,
        partition,
        offset,
        command_id,
    )
    body = PollerCommand(
        command_id=command_id, action=action, topic=topic, partition=partition, paused_offset=offset
    )
    return Response(body.model_dump_json(), 202, media_type="application/json")
