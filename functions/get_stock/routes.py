"""GET /api/v1/warehouse/{warehouse_id}/products/{product_id}: current stock, cached when warm."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from common.models import StockView
from common.reads import read_stock_json
from functions.http.docs import doc, invalid_example
from functions.http.errors import InvalidRequest

STOCK_PATH = "/api/v1/warehouse/{warehouse_id}/products/{product_id}"

router = APIRouter(tags=["stock"])


@router.get(
    STOCK_PATH,
    summary="Stock of one product in one warehouse",
    response_model=StockView,
    responses={
        422: doc(
            InvalidRequest,
            "A path id is not a UUID.",
            invalid_example("warehouse_id", "Input should be a valid UUID", "uuid_parsing"),
        ),
    },
)
def get_stock(warehouse_id: UUID, product_id: UUID) -> Response:
    """Quantity on hand; a pair no event has touched reads as quantity 0 with updated_at null.

    The cached bytes are the response body as-is: a cache hit costs no query and no serialization.
    """
    return Response(read_stock_json(warehouse_id, product_id), media_type="application/json")
