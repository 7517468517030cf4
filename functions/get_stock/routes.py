"""GET /api/v1/warehouse/{warehouse_id}/products/{product_id}: current stock, cached when warm."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from common.reads.models import StockView
from common.reads.stock import read_stock_json
from functions.http.docs import doc, invalid_example
from functions.http.errors import InvalidRequest
from functions.http.hot_paths import Answer, json_response, lean

STOCK_PATH = "/api/v1/warehouse/{warehouse_id}/products/{product_id}"

router = APIRouter(tags=["stock"])


async def stock_answer(warehouse_id: UUID, product_id: UUID) -> Answer:
    """The answer, whether FastAPI routed the request or the hot path took it
    (`functions.http.hot_paths`)."""
    return 200, await read_stock_json(warehouse_id, product_id)


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
@lean(stock_answer)
async def get_stock(warehouse_id: UUID, product_id: UUID) -> Response:
    """Quantity on hand; a pair no event has touched reads as quantity 0 with updated_at null.

    The cached bytes are the response body as-is: a cache hit costs no query and no serialization.
    """
    return json_response(await stock_answer(warehouse_id, product_id))
