import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hbens import rle
from hbens.ensemble.vote import VoteRule, hard_vote, vote_strings
from hbens.errors import HbensError
from tests.oracles import encode_reference, vote_reference

SHAPE = (9, 11)


def random_rles(rng, n, shape=SHAPE, density=0.5):
    return [encode_reference((rng.random(shape) < density).astype(np.uint8)) for _ in range(n)]


def check(rles, rule, shape=SHAPE):
    expected = vote_reference(rles, shape, list(rule.weights), rule.threshold)
    assert vote_strings(rles, rule, shape[0] * shape[1]) == expected
    runs = [rle.string_to_runs(r, shape) for r in rles]
    subset = [runs[i] for i in rule.inputs]
    return expected, subset


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_every_k_of_n_matches_mask_oracle(rng, n):
    for density in [0.05, 0.5, 0.95]:
        rles = random_rles(rng, n, density=density)
        for k in range(1, n + 1):
            expected, runs = check(rles, VoteRule.make(range(n), min_votes=k))
            assert rle.runs_to_string(*hard_vote(runs, min_votes=k)) == expected


def test_default_is_strict_majority():
    assert VoteRule.make(range(2)).threshold == 1.5
    assert VoteRule.make(range(3)).threshold == 1.5
    assert VoteRule.make(range(5)).threshold == 2.5


def test_adversarial_inputs(rng):
    size = SHAPE[0] * SHAPE[1]
    cases = [
        ["", "", ""],
        [f"1 {size}", f"1 {size}", ""],
        [f"1 1 {size} 1", f"{size} 1", "1 1"],
        ["1 3 4 2", "1 5", "2 2 5 1"],  # touching runs in the first input
        ["3 4", "3 4", "3 4"],
        ["1 1 3 1 5 1 7 1", "2 1 4 1 6 1 8 1", "1 8"],
    ]
    for rles in cases:
        for k in (1, 2, 3):
            check(rles, VoteRule.make(range(3), min_votes=k))


def test_weights_and_float_ties(rng):
    rles = random_rles(rng, 3)
    for weights, threshold in [((0.1, 0.2, 0.3), 0.3), ((1, 1, 2), 2.0), ((0.7, 0.2, 0.1), None), ((3, 1, 1), 0.5)]:
        check(rles, VoteRule.make(range(3), weights=weights, min_weight=threshold))
    # 0.1 + 0.2 > 0.3 in floating point, as in the oracle's input-order sum.
    rule = VoteRule.make(range(3), weights=(0.1, 0.2, 0.3), min_weight=0.3)
    assert vote_strings(["1 1", "1 1", ""], rule, 4) == "1 1"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(arrays(np.uint8, (5, 6), elements=st.sampled_from([0, 1])), min_size=1, max_size=5),
    st.data(),
)
def test_property_vote_equals_oracle(masks, data):
    n = len(masks)
    rles = [encode_reference(m) for m in masks]
    if data.draw(st.booleans()):
        rule = VoteRule.make(range(n), min_votes=data.draw(st.integers(1, n)))
    else:
        weights = data.draw(st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.5, 1.0, 2.0]), min_size=n, max_size=n))
        min_weight = data.draw(st.sampled_from([None, 0.0, 0.3, 0.6]))
        assume(min_weight is None or min_weight < sum(weights))
        rule = VoteRule.make(range(n), weights=weights, min_weight=min_weight)
    check(rles, rule, (5, 6))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_votes": 0}, "outside 1..3"),
        ({"min_votes": 4}, "outside 1..3"),
        ({"weights": (1, 2)}, "2 weights for 3 inputs"),
        ({"weights": (1, 0, 1)}, "positive"),
        ({"weights": (1, 1, 1), "min_votes": 2}, "either --min-votes or --weights"),
        ({"min_weight": 1.0}, "--min-weight needs --weights"),
        ({"weights": (1, 1, 1), "min_weight": 3.0}, "below the total weight 3"),
        ({"weights": (1, 1, 1), "min_weight": float("nan")}, "below the total"),
    ],
)
def test_invalid_rules(kwargs, message):
    with pytest.raises(HbensError, match=message):
        VoteRule.make(range(3), **kwargs)


def test_weights_whose_sum_overflows_vote_as_their_ratios():
    rles = ["1 4", "3 4", ""]
    huge = VoteRule.make(range(3), weights=(1e308, 1e308, 1e308))
    assert vote_strings(rles, huge, 16) == vote_strings(rles, VoteRule.make(range(3), weights=(1, 1, 1)), 16) == "3 2"
    assert vote_strings(rles, VoteRule.make(range(3), weights=(1e308, 1e308, 1e308), min_weight=1e308), 16) == "3 2"


def test_invalid_input_string_names_the_problem():
    with pytest.raises(rle.RLEError, match="odd number"):
        vote_strings(["1 1", "1 1 1"], VoteRule.make(range(2)), 16)
