"""The cache names a committed batch retires are exactly the readers' names, once each."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from common.adapters import cache

_ids = st.uuids(version=4) | st.builds(UUID, int=st.integers(0, 2**128 - 1))


@given(st.lists(st.tuples(_ids, _ids, _ids), max_size=40))
def test_batch_names_are_the_readers_names(changes: list[tuple[UUID, UUID, UUID]]) -> None:
    stock = {cache.stock_name(w, p) for w, p, _ in changes}
    expected = stock | {cache.movement_name(m) for _, _, m in changes}
    assert cache.changed_names(changes) == sorted(expected)


def test_a_repeated_key_is_named_once() -> None:
    w, p = UUID(int=1), UUID(int=2**128 - 1)
    names = cache.changed_names([(w, p, UUID(int=3)), (w, p, UUID(int=4))])
    assert names == [
        "movement:00000000-0000-0000-0000-000000000003",
        "movement:00000000-0000-0000-0000-000000000004",
        "stock:00000000-0000-0000-0000-000000000001:ffffffff-ffff-ffff-ffff-ffffffffffff",
    ]
