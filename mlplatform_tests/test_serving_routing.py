"""Sticky weighted routing between champion and canary."""

from __future__ import annotations

import bisect
import random
from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from mlplatform.serving.routing import CANARY, CHAMPION, arm_for, bucket

SALT = "test-salt"
N_IDS = 100_000
weights = st.floats(min_value=0.0, max_value=1.0)


@cache
def _sorted_buckets() -> list[float]:
    return sorted(bucket(f"customer-{i}", SALT) for i in range(N_IDS))


@given(st.text(), weights, st.text(max_size=10))
def test_the_same_id_always_gets_the_same_arm(entity_id, weight, salt):
    first = arm_for(entity_id, weight, salt)
    assert all(arm_for(entity_id, weight, salt) == first for _ in range(3))
    assert first == (CANARY if bucket(entity_id, salt) < weight else CHAMPION)


@given(st.text(), st.text(max_size=10))
def test_weight_zero_never_and_weight_one_always_routes_to_the_canary(entity_id, salt):
    assert arm_for(entity_id, 0.0, salt) == CHAMPION
    assert arm_for(entity_id, 1.0, salt) == CANARY
    assert arm_for(None, 0.0, salt) == CHAMPION and arm_for(None, 1.0, salt) == CANARY


@given(st.text(), st.sampled_from([float("nan"), float("-inf"), -0.5, 1.5, float("inf")]))
def test_out_of_range_weights_are_clamped_and_non_finite_means_no_canary(entity_id, weight):
    expected = CANARY if weight == 1.5 else CHAMPION
    assert arm_for(entity_id, weight, SALT) == expected


@given(st.text(), weights, weights)
def test_raising_the_weight_never_moves_an_id_back_to_the_champion(entity_id, low, high):
    low, high = sorted((low, high))
    if arm_for(entity_id, low, SALT) == CANARY:
        assert arm_for(entity_id, high, SALT) == CANARY


@given(weights)
def test_the_canary_share_over_100k_ids_is_within_half_a_point_of_the_weight(weight):
    buckets = _sorted_buckets()
    share = bisect.bisect_left(buckets, weight) / N_IDS
    assert abs(share - weight) <= 0.005


def test_the_share_holds_through_arm_for_itself():
    for weight in (0.01, 0.1, 0.5):
        share = sum(arm_for(f"id-{i}", weight, "other") == CANARY for i in range(N_IDS)) / N_IDS
        assert abs(share - weight) <= 0.005


def test_requests_without_an_id_are_a_random_draw_at_the_weight():
    rng = random.Random(7)
    share = sum(arm_for(None, 0.2, SALT, rng) == CANARY for _ in range(20_000)) / 20_000
    assert abs(share - 0.2) < 0.015


def test_the_salt_reshuffles_the_assignment():
    ids = [f"customer-{i}" for i in range(1000)]
    first = [arm_for(i, 0.5, "a") for i in ids]
    assert first != [arm_for(i, 0.5, "b") for i in ids]
