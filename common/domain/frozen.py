"""Building a frozen dataclass on the hot path without its `__init__`.

A frozen dataclass's `__init__` sets each field through `object.__setattr__` (the class's own
`__setattr__` refuses): ~0.1 us a field. The Kafka drain builds several such objects per event
(the record's `Origin`, its `Outcome`, the rules' `Decision` and `Half`), so they are built here
from a dict of every field instead: ~3x cheaper, the same object (equality, hash, repr, `replace`
work on the fields). Only for classes without `__post_init__` or `__slots__`, with every field given.
"""

from __future__ import annotations

from typing import Any

_new = object.__new__
_set = object.__setattr__


def frozen_built[T](cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of `cls` whose attributes are `fields` (every field of the dataclass, exactly)."""
    instance = _new(cls)
    _set(instance, "__dict__", fields)
    return instance
