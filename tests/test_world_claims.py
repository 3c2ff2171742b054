"""The demo's claims: each verdict rule on hand-made sections, and claims.json's record."""

import json

import pytest
from world_sections import section, sweep

from stillmoving.world.claims import FAILS, HOLDS, UNJUDGED, judge, motion_scale_monotone, signed
from stillmoving.world.legend import DEMO_METRICS
from stillmoving.world.stats import Interval


def verdicts(variants, *sweep_args, **sweep_sizes) -> dict[str, str]:
    found = judge({"star": variants}, *sweep(*sweep_args, **sweep_sizes), list(DEMO_METRICS))
    return {claim.name: claim.verdict for claim in found.claims}


def test_a_clear_win_holds_everywhere():
    assert verdicts(section()) == {
        "better_than_naive": HOLDS,
        "fidelity_kept": HOLDS,
        "motion_kept": HOLDS,
        "no_motion_adapter_static": HOLDS,
        "no_worse_than_naive": HOLDS,
        "monotone": HOLDS,
    }


def test_worse_consistency_fails_better_and_no_worse():
    found = verdicts(section(consistency_gap=-0.125))
    assert found["better_than_naive"] == FAILS and found["no_worse_than_naive"] == FAILS


def test_no_difference_is_not_better_but_no_worse():
    found = verdicts(section(consistency_gap=0.0))
    assert found["better_than_naive"] == FAILS and found["no_worse_than_naive"] == HOLDS


def test_shares_below_the_line_fail_and_a_t2i_without_the_look_cannot_be_judged():
    assert verdicts(section(kept_fidelity=0.25))["fidelity_kept"] == FAILS
    assert verdicts(section(static=0.0))["no_motion_adapter_static"] == FAILS
    assert verdicts(section(t2i_fidelity=0.0625))["fidelity_kept"] == UNJUDGED


def test_too_few_pairs_cannot_be_judged():
    one_prompt = {"prompts": ("a red circle moving left quickly on a gray background",)}  # 2 pairs with 2 seeds
    found = verdicts(section(**one_prompt), **one_prompt)
    assert set(found.values()) == {UNJUDGED}


def test_motion_scale_rising_fails_and_a_flat_one_cannot_be_judged():
    alphas, variants = sweep(displacements=(0.25, 8.0, 16.0))
    assert motion_scale_monotone(alphas, variants, seed=0).verdict == FAILS
    alphas, variants = sweep(displacements=(4.0, 4.0, 4.0))
    assert motion_scale_monotone(alphas, variants, seed=0).verdict == UNJUDGED


def test_the_interval_of_a_constant_gap_is_exact_and_in_the_sentence():
    found = judge({"star": section()}, *sweep(), list(DEMO_METRICS))
    assert found.differences["star"]["consistency"] == Interval(0.125, 0.125, 0.125, 8)
    better = found.claims[0]
    assert better.name == "better_than_naive" and "consistency +0.125 [+0.125, +0.125]" in better.measured


@pytest.mark.parametrize("scope", ["star", "crayon"])
def test_record_has_an_interval_for_every_column_and_a_verdict_per_claim(scope):
    found = judge({scope: section()}, *sweep(), list(DEMO_METRICS))
    record = json.loads(json.dumps(found.record(), allow_nan=False))  # strict JSON: NaN would raise
    assert set(record["still_moving_minus_naive"][scope]) == {m.key for m in DEMO_METRICS}
    assert set(record["claims"][scope]) == {
        "better_than_naive",
        "fidelity_kept",
        "motion_kept",
        "no_motion_adapter_static",
        "no_worse_than_naive",
    }
    assert record["claims"]["motion scale"]["monotone"]["verdict"] == HOLDS
    assert all(c["verdict"] in (HOLDS, FAILS, UNJUDGED) and c["measured"] for c in record["claims"][scope].values())
    assert len(record["verdicts"]) == 6 and record["verdicts"][0].startswith(f"{scope}: Still-Moving is better")
    speed = record["still_moving_minus_naive"][scope]["speed"]
    assert speed == {"estimate": 0.0, "low": 0.0, "high": 0.0, "n": 8}


def test_numbers_that_round_to_zero_keep_their_sign_and_digits():
    assert [signed(x) for x in (0.0, -0.0, -4e-4, 0.012)] == ["+0.000", "+0.000", "-4.0e-04", "+0.012"]


def test_a_section_without_a_compared_variant_is_refused_by_name():
    with pytest.raises(ValueError, match="naive injection"):
        judge({"star": [v for v in section() if v.name != "naive injection"]}, *sweep(), list(DEMO_METRICS))
