"""GET /api/v1/movements/{movement_id}: both halves of a movement, served from the cache when warm."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException, Response

from common.models import MovementView
from common.reads import read_movement_json
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest

MOVEMENT_PATH = "/api/v1/movements/{movement_id}"

router = APIRouter(tags=["movements"])


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
def get_movement(movement_id: UUID) -> Response:
    """Departure and arrival side by side, with the quantity difference and the transit time.

    The cached bytes are the response body as-is: a cache hit costs no query and no serialization.
    """
    body = read_movement_json(movement_id)
    if body is None:
        raise HTTPException(404, f"movement {movement_id} not found")
    return Response(body, media_type="application/json")
