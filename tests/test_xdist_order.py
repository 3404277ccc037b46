"""The order the test groups are handed to pytest-xdist's workers in (tests/xdist_order.py)."""
from __future__ import annotations

from types import SimpleNamespace

import xdist_order


def _item(group: str, mark: str | None = None):
    return SimpleNamespace(group=group, get_closest_marker=lambda name: name == mark or None)


def test_costliest_groups_come_first_each_in_one_piece_and_in_its_order():
    units = [_item("a", None), _item("a", None), _item("a", None)]
    pipeline = [_item("b", "e2e")]
    probes = [_item("c", "probe"), _item("c", None)]
    more_units = [_item("d", None), _item("d", None), _item("d", None)]  # as costly as "a"
    items = units + pipeline + probes + more_units
    ordered = xdist_order.longest_groups_first(items, group=lambda item: item.group,
                                               cost=xdist_order.guessed_cost)
    assert ordered == pipeline + probes + units + more_units


def test_this_session_hands_out_its_groups_longest_first_in_xdists_order_too(request):
    """The running session's items went through the hook, and xdist was told to keep them
    in that order (its default re-sorts the groups by their number of tests)."""
    items = request.session.items
    groups = [item.get_closest_marker("xdist_group").args[0] for item in items]
    cost: dict[str, float] = {}
    for group, item in zip(groups, items):
        cost[group] = cost.get(group, 0.0) + xdist_order.guessed_cost(item)
    starts = [group for i, group in enumerate(groups) if i == 0 or groups[i - 1] != group]
    assert len(starts) == len(set(starts)), "a group's tests are split"
    assert [cost[group] for group in starts] == sorted((cost[g] for g in starts), reverse=True)
    assert getattr(request.config.option, "loadscopereorder", False) is False
