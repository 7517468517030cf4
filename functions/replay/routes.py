"""POST /api/v1/rejected-events/{rejected_event_id}/replay: re-apply one parked event; and the
dead-letter workflow (issue 23): resolve one with a note, resolve or replay by filter.

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
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.adapters.db import get_pool
from common.dead_letters.store import MAX_ID, Filter, matching_ids
from common.domain.outcomes import Reason, Status
from common.ledger.use_cases import ReplayResult, replay
from common.operations import dead_letter_workflow as workflow
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest, error_response, invalid_parameter
from functions.http.guards import CROSS_SITE_DETAIL, require_operator, require_same_site

logger = logging.getLogger(__name__)

REPLAY_PATH = "/api/v1/rejected-events/{rejected_event_id}/replay"
RESOLVE_PATH = "/api/v1/rejected-events/{rejected_event_id}/resolve"
BULK_RESOLVE_PATH = "/api/v1/rejected-events/resolve"
BULK_REPLAY_PATH = "/api/v1/rejected-events/replay"

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
    request: Request,
    rejected_event_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    x_operator: OperatorName = None,
) -> Response:
    """Re-apply the parked event through the ledger's rules; the answer and the row say what happened
    (and the audit trail, with the `X-Operator` header's name)."""
    results = await run_in_threadpool(replay, ids=[rejected_event_id], by=x_operator or DEFAULT_ACTOR)
    if not results:
        return error_response(404, f"rejected event {rejected_event_id} not found", request=request)
    result = results[0]
    logger.info(
        "replayed rejected event %d: %s%s",
        result.rejected_event_id,
        result.status,
        f" ({result.reason})" if result.reason else "",
    )
    return Response(_answer(result).model_dump_json(), 200, media_type="application/json")


def _answer(result: ReplayResult) -> ReplayAnswer:
    return ReplayAnswer(
        rejected_event_id=result.rejected_event_id,
        status=result.status,
        reason=result.reason,
        detail=result.detail,
    )


# --- issue 23: the dead-letter workflow -----------------------------------------------------------

DEFAULT_ACTOR = "operator"
OperatorName = Annotated[
    str | None,
    Header(max_length=200, description="Who acts, for the audit trail (default `operator`)."),
]
Actor = Annotated[str | None, Field(max_length=200, description="Who acts (default: the X-Operator header).")]


class Resolution(BaseModel):
    """Why a dead letter needs nothing more, in the operator's words."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"note": "duplicate of a corrected event sent by WH-3322", "by": "anna"}]
        }
    )

    note: str = Field(min_length=1, max_length=2000)
    by: Actor = None


class Selection(BaseModel):
    """Which dead letters: every condition given must hold; at least one is required."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "insufficient_stock", "note": "restocked by hand", "by": "anna"}]
        }
    )

    reason: Reason | None = None
    movement_id: UUID | None = None
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=workflow.MAX_BULK
    )
    note: str | None = Field(default=None, max_length=2000, description="Required to resolve.")
    by: Actor = None

    @model_validator(mode="after")
    def _names_some(self) -> Selection:
        if self.reason is None and self.movement_id is None and not self.ids:
            raise ValueError("name the dead letters: reason, movement_id or ids")
        return self

    def filter(self) -> Filter:
        return Filter(reason=self.reason, movement_id=self.movement_id, ids=self.ids)


class Resolved(BaseModel):
    """The dead letters this call resolved (those already resolved, answered or applied are left)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"resolved_ids": [42, 43], "more": False}]})

    resolved_ids: list[int]
    more: bool = Field(description=f"The call stopped at {workflow.MAX_BULK}: call again for the rest.")


class Replayed(BaseModel):
    """What the bulk replay did to each dead letter, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"rejected_event_id": 42, "status": "applied", "reason": None, "detail": None}
                    ],
                    "more": False,
                }
            ]
        }  # fmt: skip
    )

    results: list[ReplayAnswer]
    more: bool = Field(description=f"The call stopped at {workflow.MAX_BULK}: call again for the rest.")


_NOT_JSON: dict[int | str, dict[str, object]] = {
    400: doc(ErrorBody, "The body is not JSON.", {"detail": "There was an error parsing the body"})
}
_BULK_RESPONSES: dict[int | str, dict[str, object]] = {
    **_NOT_JSON,
    401: _RESPONSES[401],
    422: doc(
        InvalidRequest,
        "No filter, or a field is invalid.",
        invalid_example("body", "name the dead letters: reason, movement_id or ids", "value_error"),
    ),
}


@router.post(
    RESOLVE_PATH,
    summary="Resolve one dead letter with a note",
    response_model=Resolved,
    responses={**_NOT_JSON, **_RESPONSES},
    dependencies=[Depends(require_same_site), Depends(require_operator)],
)
async def resolve_rejected_event(
    request: Request,
    rejected_event_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    resolution: Annotated[Resolution, Body()],
    x_operator: OperatorName = None,
) -> Response:
    """Mark the dead letter resolved: who, when (now), why. Audited; a dead letter already resolved
    keeps its first resolution (`resolved_ids` is then empty). 404 when there is no such id."""
    by = resolution.by or x_operator or DEFAULT_ACTOR
    done = await run_in_threadpool(workflow.resolve, [rejected_event_id], by=by, note=resolution.note)
    if not done and not await run_in_threadpool(_exists, rejected_event_id):
        return error_response(404, f"rejected event {rejected_event_id} not found", request=request)
    return Response(Resolved(resolved_ids=done, more=False).model_dump_json(), media_type="application/json")


def _exists(rejected_event_id: int) -> bool:
    with get_pool().connection() as conn:
        return bool(matching_ids(conn, Filter(ids=[rejected_event_id], unresolved_only=False), limit=1))


@router.post(
    BULK_RESOLVE_PATH,
    summary="Resolve the dead letters a filter names",
    response_model=Resolved,
    responses=_BULK_RESPONSES,
    dependencies=[Depends(require_same_site), Depends(require_operator)],
)
async def resolve_rejected_events(
    request: Request, selection: Annotated[Selection, Body()], x_operator: OperatorName = None
) -> Response:
    """Resolve, with one note, the unresolved dead letters of a reason, a movement or a list of ids,
    oldest first, at most 1,000 per call (`more` says to call again). Audited."""
    if not selection.note:
        raise invalid_parameter("note", "body", "a note is required to resolve")
    by = selection.by or x_operator or DEFAULT_ACTOR
    done = await run_in_threadpool(workflow.resolve_matching, selection.filter(), by=by, note=selection.note)
    answer = Resolved(resolved_ids=done, more=len(done) >= workflow.MAX_BULK)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post(
    BULK_REPLAY_PATH,
    summary="Replay the dead letters a filter names",
    response_model=Replayed,
    responses=_BULK_RESPONSES,
    dependencies=[Depends(require_same_site), Depends(require_operator)],
)
async def replay_rejected_events(
    request: Request, selection: Annotated[Selection, Body()], x_operator: OperatorName = None
) -> Response:
    """Replay the unresolved dead letters of a reason, a movement or a list of ids, oldest first, at
    most 1,000 per call, in one transaction; conflicts are left out (a replay cannot change their
    outcome: resolve them). Audited."""
    by = selection.by or x_operator or DEFAULT_ACTOR
    results = await run_in_threadpool(workflow.replay_matching, selection.filter(), by=by)
    logger.info("bulk replay by %s: %d dead letters", by, len(results))
    answer = Replayed(results=[_answer(r) for r in results], more=len(results) >= workflow.MAX_BULK)
    return Response(answer.model_dump_json(), media_type="application/json")
