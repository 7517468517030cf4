"""GET /api/v1/movements/{movement_id}: both halves of a movement, served from the cache when warm."""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter, Response

from common.reads.models import MovementView
from common.reads.movements import read_movement_json
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest
from functions.http.hot_paths import Answer, json_response, lean

MOVEMENT_PATH = "/api/v1/movements/{movement_id}"

router = APIRouter(tags=["movements"])


async def movement_answer(movement_id: UUID) -> Answer:
    """The answer, whether FastAPI routed the request or the lean path took it (`functions.http.hot_paths`).

    The 404 body is what FastAPI's HTTPException handler would render.
    """
    body = await read_movement_json(movement_id)
    if body is None:
        detail = {"detail": f"movement {movement_id} not found"}
        return 404, json.dumps(detail, separators=(",", ":")).encode()
    return 200, body


@router.get(
    MOVEMENT_PATH,
    summary="One movement",
    response_model=MovementView,
    responses={
        404: doc(
            ErrorBody,
            "No event of this movement has been applied.",
            {"detail": "movement c6290746-790e-43fa-8270-014dc90e02e0 not found", "request_id": None},
        ),
        422: doc(
            InvalidRequest,
            "The movement id is not a UUID.",
            invalid_example("movement_id", "Input should be a valid UUID", "uuid_parsing"),
        ),
    },
)
@lean(movement_answer)
async def get_movement(movement_id: UUID) -> Response:
    """Departure and arrival side by side, with the quantity difference and the transit time.

    The cached bytes are the response body as-is: a cache hit costs no query and no serialization.
    """
    return json_response(await movement_answer(movement_id))
