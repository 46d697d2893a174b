"""Planning is set algebra plus ordering: tested on sets, without a database."""

from __future__ import annotations

import math
import pytest

from semc.base.calc import order_freshness_first, plan_batch, retry_delay_s, tilt_rejected
from semc.base.errors import InvalidParameters


def test_pending_is_all_minus_done_rejected_in_flight_and_waiting_plus_reprocess():
    plan = plan_batch(range(1, 11), done={1, 2, 3}, waiting={4}, in_flight={5}, rejected={6, 2},
                      reprocess={2, 3}, limit=100)
    assert plan == [3, 7, 8, 9, 10]


def test_the_limit_caps_work_in_flight_not_the_backlog():
    assert plan_batch(range(100), done=(), waiting=(), in_flight=(), rejected=(), limit=3) == [0, 1, 2]
    assert plan_batch(range(100), done=(), waiting=(), in_flight=(), rejected=(), limit=0) == []


def test_classic_order_is_oldest_first_and_reverse_is_newest_first():
    assert plan_batch([5, 3, 9], (), (), (), (), limit=5) == [3, 5, 9]
    assert plan_batch([5, 3, 9], (), (), (), (), limit=5, reverse=True) == [9, 5, 3]


def test_live_sessions_put_the_newest_exposure_first_and_still_drain_the_backlog():
    plan = plan_batch(range(1, 8), (), (), (), (), limit=7, live=True)
    assert plan[0] == 7
    assert plan == [7, 1, 6, 2, 5, 3, 4]


def test_freshness_first_never_starves_the_oldest_exposure():
    # simulate a live session: each round one new exposure arrives and two slots free up
    backlog = list(range(50))
    done: set[int] = set()
    newest = 49
    for rounds in range(200):
        newest += 1
        backlog.append(newest)
        plan = plan_batch(backlog, done, (), (), (), limit=2, live=True)
        assert plan[0] == newest or newest in done
        done.update(plan)
        if 0 in done:
            break
    assert 0 in done and rounds < 60


def test_freshness_order_is_a_permutation():
    ids = [4, 8, 15, 16, 23, 42]
    assert sorted(order_freshness_first(ids)) == ids


def test_retry_delay_grows_exponentially_and_is_capped():
    assert [retry_delay_s(n, base_s=10, cap_s=100) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]
    with pytest.raises(InvalidParameters):
        retry_delay_s(0)


@pytest.mark.parametrize("mode,alpha,rejected", [
    ("all", 60, False), ("notilt", 2.9, False), ("notilt", 3.1, True), ("notilt", -3.1, True),
    ("hightilt", 29.9, True), ("hightilt", -30, False), ("lowtilt", 30, True), ("lowtilt", -29, False),
    ("minustilt", -1.9, True), ("minustilt", -2.1, False), ("plustilt", 1.9, True), ("plustilt", 2.1, False),
])
def test_tilt_filters_follow_the_classic_thresholds(mode, alpha, rejected):
    assert tilt_rejected(math.radians(alpha), mode) is rejected


def test_unknown_tilt_filter_is_an_error():
    with pytest.raises(InvalidParameters, match="sideways"):
        tilt_rejected(0.0, "sideways")


def test_one_slot_at_a_time_still_alternates_when_the_caller_carries_the_turn():
    done, newest_next, order = set(), True, []
    for _ in range(5):
        plan = plan_batch(range(1, 6), done, (), (), (), limit=1, live=True, newest_next=newest_next)
        order += plan
        done.update(plan)
        newest_next = not newest_next
    assert order == [5, 1, 4, 2, 3]
