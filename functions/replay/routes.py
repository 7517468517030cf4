"""POST /api/v1/rejected-events/{rejected_event_id}/replay: re-apply one parked event.

The HTTP face of `warehouse-stock replay --id N`: a departure refused for insufficient stock can
be re-applied once its goods have arrived. The replay goes through the same ledger rules, so it
is safe to repeat (a second replay of an applied event answers `duplicate` and changes nothing),
and its outcome is recorded on the parked row, which stays as evidence.

An operator route (`functions.http.guards.require_operator`): with OPERATOR_AUTH=token and a token
configured, `Authorization: Bearer <operator token>` is required (constant-time compare; the
webhook's token is never accepted); with OPERATOR_AUTH=gateway, API Gateway's authorizer. Checked
in a dependency, before the path is validated, so a caller without it learns nothing, not even
whether an id is well formed.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from common.dead_letters.store import MAX_ID
from common.domain.outcomes import Reason, Status
from common.ledger.use_cases import replay
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest, error_response
from functions.http.guards import CROSS_SITE_DETAIL, require_operator, require_same_site

logger = logging.getLogger(__name__)

REPLAY_PATH = "/api/v1/rejected-events/{rejected_event_id}/replay"

router = APIRouter(tags=["dead letters"])


class ReplayAnswer(BaseModel):
    """What the replay did: `applied` now, `duplicate` (already applied), or `rejected` again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"rejected_event_id": 42, "status": "applied", "reason": None, "detail": None},
                {
                    "rejected_event_id": 43,
                    "status": "rejected",
                    "reason": "insufficient_stock",
                    "detail": "departure of 100 of product 4705204f-498f-4f96-b4ba-df17fb56bf55 from "
                    "warehouse 25718666-6af6-4281-b5a6-3016e36fa557 exceeds the 20 on hand",
                },
            ]
        }
    )

    rejected_event_id: int
    status: Status
    reason: Reason | None
    detail: str | None


_RESPONSES: dict[int | str, dict[str, object]] = {
    401: doc(
        ErrorBody,
        "`Authorization: Bearer <operator token>` is missing or wrong (OPERATOR_AUTH=token), or in AWS "
        "the request did not pass the API Gateway's authorizer. The webhook's token is never accepted.",
        {"detail": "missing or wrong bearer token"},
    ),
    403: doc(
        ErrorBody,
        "A browser's request from another site's page (Origin, Sec-Fetch-Site) not in TRUSTED_ORIGINS.",
        {"detail": CROSS_SITE_DETAIL},
    ),
    404: doc(
        ErrorBody,
        "No dead letter has this id.",
        {"detail": "rejected event 42 not found", "request_id": "5f0c1a9e2b7d4c1e8f3a6b9d0e2c4a7f"},
    ),
    422: doc(
        InvalidRequest,
        "The id is not a positive integer.",
        invalid_example(
            "rejected_event_id", "Input should be greater than or equal to 1", "greater_than_equal"
        ),
    ),
}


@router.post(
    REPLAY_PATH,
    summary="Replay one dead letter",
    response_model=ReplayAnswer,
    responses=_RESPONSES,
    dependencies=[Depends(require_same_site), Depends(require_operator)],
)
async def replay_rejected_event(
    request: Request, rejected_event_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    """Re-apply the parked event through the ledger's rules; the answer and the row say what happened."""
    results = await run_in_threadpool(replay, ids=[rejected_event_id])
    if not results:
        return error_response(404, f"rejected event {rejected_event_id} not found", request=request)
    result = results[0]
    logger.info(
        "replayed rejected event %d: %s%s",
        result.rejected_event_id,
        result.status,
        f" ({result.reason})" if result.reason else "",
    )
    answer = ReplayAnswer(
        rejected_event_id=result.rejected_event_id,
        status=result.status,
        reason=result.reason,
        detail=result.detail,
    )
    return Response(answer.model_dump_json(), 200, media_type="application/json")
