"""Moved: common/reads/movements.py (`list_movements(..., older_than=...)` is the in-transit list).
Kept only until the console's pages import from there (issue 21); nothing new should import it."""

from datetime import timedelta
from typing import Any

import psycopg

from common.reads.models import MovementPage
from common.reads.movements import list_movements as _list_movements
from common.reads.movements import locate, movement_detail, parse_duration


def in_transit(conn: psycopg.Connection, *, older_than: timedelta = timedelta(0), **kw: Any) -> MovementPage:
    return _list_movements(conn, older_than=older_than, **kw)


__all__ = ["in_transit", "locate", "movement_detail", "parse_duration"]
