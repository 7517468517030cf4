"""Moved: common/reads/stock.py and common/reads/warehouses.py. Kept only until the console's pages
import from there (issue 21); nothing new should import this module."""

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from common.reads.models import StockPage
from common.reads.stock import (
    BeforeRetainedLog,
    last_movements,
    product_prefix_range,
    warehouse_stock,
    warehouse_totals,
)
from common.reads.warehouses import directory as warehouses


def stock_as_of(conn: psycopg.Connection, warehouse_id: UUID, as_of: datetime, **kw: Any) -> StockPage:
    """Now `warehouse_stock(conn, warehouse_id, as_of=...)`."""
    return warehouse_stock(conn, warehouse_id, as_of=as_of, **kw)


__all__ = [
    "BeforeRetainedLog",
    "last_movements",
    "product_prefix_range",
    "stock_as_of",
    "warehouse_stock",
    "warehouse_totals",
    "warehouses",
]
