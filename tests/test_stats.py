"""Paired bootstrap intervals: exact where the maths promises it, a known case, NaN pairs dropped."""

import math

import numpy as np
import pytest

from stillmoving.world.stats import Interval, bootstrap_mean, paired_bootstrap, paired_ratio_bootstrap


def test_identical_inputs_give_exactly_zero():
    a = np.random.default_rng(1).random(32)
    assert paired_bootstrap(a, a.copy()) == Interval(0.0, 0.0, 0.0, 32)


@pytest.mark.parametrize("shift", [0.375, -2.5, 1 / 1024])
def test_a_constant_shift_gives_exactly_that_shift(shift):
    a = np.random.default_rng(2).integers(0, 64, 24) / 16  # b - a is exactly `shift` for these values
    b = a + shift
    assert np.all(b - a == shift)
    assert paired_bootstrap(a, b) == Interval(shift, shift, shift, 24)


def test_a_constant_sample_is_its_value_not_a_rounded_sum():
    assert bootstrap_mean(np.full(7, 0.1)) == Interval(0.1, 0.1, 0.1, 7)  # np.full(7, 0.1).mean() != 0.1
    assert paired_bootstrap(np.zeros(7), np.full(7, 0.1)) == Interval(0.1, 0.1, 0.1, 7)


def test_same_seed_same_interval_and_another_seed_moves_it():
    rng = np.random.default_rng(3)
    a, b = rng.random(16), rng.random(16)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert paired_bootstrap(a, b, seed=5).low != paired_bootstrap(a, b, seed=6).low


def test_two_pairs_known_case():
    # differences {0, 1}: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5th and 97.5th percentiles are 0 and 1
    assert paired_bootstrap([0.0, 0.0], [0.0, 1.0]) == Interval(0.5, 0.0, 1.0, 2)


def test_large_sample_matches_the_normal_interval():
    rng = np.random.default_rng(4)
    a = rng.normal(size=400)
    b = a + 0.3 + rng.normal(scale=1.0, size=400)  # differences ~ N(0.3, 1)
    found = paired_bootstrap(a, b, seed=0)
    d = b - a
    half = 1.96 * d.std() / math.sqrt(d.size)
    assert found.estimate == pytest.approx(d.mean(), abs=1e-12)
    assert found.low == pytest.approx(d.mean() - half, abs=0.01)
    assert found.high == pytest.approx(d.mean() + half, abs=0.01)


def test_pairs_with_a_nan_on_either_side_are_dropped_and_counted():
    a = [1.0, np.nan, 3.0, 5.0]
    b = [2.0, 4.0, np.nan, 6.0]
    assert paired_bootstrap(a, b) == Interval(1.0, 1.0, 1.0, 2)
    assert paired_bootstrap([np.nan], [1.0]).n == 0
    assert math.isnan(paired_bootstrap([np.nan], [1.0]).estimate)


def test_unequal_lengths_are_refused():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_ratio_of_means_exact_cases():
    a = np.random.default_rng(5).random(10) + 0.5
    assert paired_ratio_bootstrap(a, a.copy()) == Interval(1.0, 1.0, 1.0, 10)
    assert paired_ratio_bootstrap(a, 2 * a) == Interval(2.0, 2.0, 2.0, 10)  # doubling is exact in floats
    assert paired_ratio_bootstrap([np.nan], [1.0]).n == 0


def test_json_form_has_null_for_nan():
    assert Interval.empty().as_dict() == {"estimate": None, "low": None, "high": None, "n": 0}
    assert Interval(0.5, 0.0, 1.0, 2).as_dict() == {"estimate": 0.5, "low": 0.0, "high": 1.0, "n": 2}
