"""Moved: common/reads/stock.py and common/reads/movements.py. Kept only until the console's pages
import from there (issue 21); nothing new should import this module."""

from common.reads.movements import get_movement, list_movements, read_movement_json
from common.reads.stock import get_stock, read_stock_json

__all__ = ["get_movement", "get_stock", "list_movements", "read_movement_json", "read_stock_json"]
