import numpy as np
import pytest

from hbens.errors import HbensError
from hbens.tune.histograms import dice_curve, level_of, threshold_histograms
from hbens.tune.search import (
    Members,
    best_candidate,
    coarse_to_fine_threshold,
    greedy_members,
    guarded_choice,
    kfold_indices,
)


def test_best_candidate_takes_the_best_mean():
    dice = np.array([[0.5, 0.9, 0.8], [0.5, 0.8, 0.95]])
    assert best_candidate(dice) == 2


def test_best_candidate_ties_go_to_the_earlier_candidate_even_through_float_noise():
    dice = np.array([[0.1 + 0.2, 0.3, 0.3]])
    assert dice[0, 0] > dice[0, 1]
    assert best_candidate(dice[:, ::-1]) == 0
    assert best_candidate(np.ones((3, 4))) == 0


def test_best_candidate_refuses_empty():
    with pytest.raises(ValueError):
        best_candidate(np.zeros((0, 3)))


def curves_of(rng, n_images, level):
    """Per-image Dice curves of noisy crops whose truth is best separated near ``level``."""
    curves = []
    for _ in range(n_images):
        truth = rng.random((30, 30)) < 0.4
        stored = np.where(truth, rng.integers(level + 1, 256, truth.shape), rng.integers(0, level + 1, truth.shape))
        flip = rng.random(truth.shape) < 0.05
        stored = np.where(flip, rng.integers(0, 256, truth.shape), stored).astype(np.uint8)
        curves.append(dice_curve(*threshold_histograms(stored, truth, truth_outside=0)))
    return np.array(curves)


def all_grid_thresholds(coarse_step=0.05, fine_step=0.01):
    return sorted({round(k * fine_step, 10) for k in range(int(round(1 / fine_step)) + 1)})


@pytest.mark.parametrize("level", [40, 90, 127, 200])
def test_coarse_to_fine_finds_the_best_threshold_near_the_coarse_best(rng, level):
    curves = curves_of(rng, 6, level)
    threshold = coarse_to_fine_threshold(curves)
    mean = curves.mean(axis=0)
    coarse = [round(0.05 * k, 10) for k in range(1, 20)]
    assert all(mean[level_of(threshold)] >= mean[level_of(t)] for t in coarse)
    best_coarse = max(coarse, key=lambda t: (mean[level_of(t)], -abs(t - 0.5)))
    nearby = [t for t in all_grid_thresholds() if abs(t - best_coarse) < 0.05 - 1e-9]
    assert threshold in nearby
    assert mean[level_of(threshold)] == max(mean[level_of(t)] for t in nearby)


def test_coarse_to_fine_prefers_0_5_on_flat_curves_and_keeps_the_coarse_threshold_on_fine_ties():
    assert coarse_to_fine_threshold(np.ones((3, 256))) == 0.5
    levels = np.arange(256)
    plateau = ((levels >= level_of(0.2)) & (levels <= level_of(0.3))).astype(float)
    assert coarse_to_fine_threshold(plateau[None, :]) == 0.3


def test_coarse_to_fine_reaches_a_peak_between_coarse_steps():
    peak = 1.0 - np.abs(np.arange(256) / 255 - 0.62)
    assert coarse_to_fine_threshold(peak[None, :]) == 0.62
    assert coarse_to_fine_threshold(peak[None, :], fine_step=0.05) == 0.6


@pytest.mark.parametrize("kwargs", [dict(fine_step=0.0), dict(fine_step=0.1), dict(coarse_step=1.0)])
def test_coarse_to_fine_refuses_bad_steps(kwargs):
    with pytest.raises(ValueError):
        coarse_to_fine_threshold(np.ones((1, 256)), **kwargs)


def test_coarse_to_fine_refuses_wrong_shapes():
    with pytest.raises(ValueError):
        coarse_to_fine_threshold(np.ones((2, 255)))


def noisy_inputs(rng, n_images=6, noise_at=(0, 3)):
    """Ground truths and inputs: good ones (truth blurred by independent noise) and pure noise."""
    truths = rng.random((n_images, 24, 24)) < 0.35
    inputs = []
    for i in range(5):
        if i in noise_at:
            inputs.append(rng.random(truths.shape))
        else:
            inputs.append(np.clip(truths * 0.7 + 0.15 + rng.normal(0, 0.25, truths.shape), 0, 1))
    return truths, np.array(inputs)


def fused_dice(truths, inputs, members, weights):
    fused = np.tensordot(np.asarray(weights, float), inputs[list(members)], axes=1) / sum(weights)
    masks = fused > 0.5
    dice = [2 * (m & t).sum() / (m.sum() + t.sum()) for m, t in zip(masks, truths)]
    return float(np.mean(dice))


@pytest.mark.parametrize("seed", range(5))
def test_greedy_never_picks_a_pure_noise_input(seed):
    truths, inputs = noisy_inputs(np.random.default_rng(seed))
    chosen = greedy_members(lambda m, w: fused_dice(truths, inputs, m, w), len(inputs))
    assert not {0, 3} & set(chosen.members)
    assert len(chosen.members) >= 2
    assert chosen.score == fused_dice(truths, inputs, chosen.members, chosen.weights)
    assert chosen.score > max(fused_dice(truths, inputs, (i,), (1,)) for i in range(len(inputs)))


def test_greedy_stops_when_nothing_improves_and_starts_from_the_best_single():
    calls = []

    def score(members, weights):
        calls.append(members)
        return [0.2, 0.7, 0.7, 0.1][members[0]]

    assert greedy_members(score, 4) == Members((1,), (1,), 0.7)
    assert calls[:4] == [(0,), (1,), (2,), (3,)]


def test_greedy_picks_weights_from_the_grid():
    def score(members, weights):
        added = {1: lambda w: 0.1 - 0.02 * abs(w - 3), 2: lambda w: -0.01}
        return {0: 0.7, 1: 0.6, 2: 0.5}[members[0]] + sum(added[m](w) for m, w in zip(members[1:], weights[1:]))

    assert greedy_members(score, 3, weight_grid=(1, 2, 3)) == Members((0, 1), (1, 3), pytest.approx(0.8))
    assert greedy_members(score, 3, weight_grid=(1, 2)).weights == (1, 2)


def test_greedy_refuses_bad_arguments():
    with pytest.raises(ValueError):
        greedy_members(lambda m, w: 0.0, 0)
    with pytest.raises(ValueError):
        greedy_members(lambda m, w: 0.0, 2, weight_grid=(1, 0))


def test_kfold_indices_are_a_deterministic_partition():
    folds = kfold_indices(23, 5, seed=3)
    assert [f.tolist() for f in folds] == [f.tolist() for f in kfold_indices(23, 5, seed=3)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in kfold_indices(23, 5, seed=4)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert {len(f) for f in folds} == {4, 5}
    assert all(np.array_equal(f, np.sort(f)) and f.dtype == np.int64 for f in folds)


@pytest.mark.parametrize("n_images, folds", [(5, 1), (3, 4)])
def test_kfold_indices_refuse_too_few_folds_or_images(n_images, folds):
    with pytest.raises(HbensError, match="--folds"):
        kfold_indices(n_images, folds, seed=0)


def test_guard_rejects_a_choice_that_only_memorises_its_images():
    n_images = 12
    baseline = np.full(n_images, 0.8)
    folds = kfold_indices(n_images, 4, seed=0)
    seen = []

    def fit(train):
        seen.append(train)
        return frozenset(train.tolist())

    def score(choice, indices):
        return np.array([1.0 if i in choice else 0.5 for i in indices])

    result = guarded_choice(baseline, fit, score, folds)
    assert result.in_sample == 1.0 and result.baseline == pytest.approx(0.8)
    assert result.out_of_fold == 0.5
    assert not result.accepted
    assert result.choice == frozenset(range(n_images))
    for train, fold in zip(seen, folds):
        assert not set(train.tolist()) & set(fold.tolist())
        assert len(train) + len(fold) == n_images


def test_guard_rejects_the_luckiest_of_many_useless_candidates():
    """300 candidates worse than the baseline on average: the best of them beats it in sample by
    luck, and the guard, which sees only held-out Dice, keeps the baseline in almost every draw."""
    n_images, helped_in_sample, accepted = 20, 0, 0
    baseline = np.full(n_images, 0.85)
    for seed in range(30):
        noise = np.random.default_rng(seed).normal(0, 0.1, (n_images, 300))
        dice = np.column_stack([baseline, np.clip(0.80 + noise, 0, 1)])
        result = guarded_choice(baseline, lambda train: best_candidate(dice[train]), lambda c, idx: dice[idx, c],
                                kfold_indices(n_images, 5, seed=1))
        helped_in_sample += result.in_sample > result.baseline
        accepted += result.accepted
        assert result.accepted == (result.out_of_fold > result.baseline)
    assert helped_in_sample >= 28
    assert accepted <= 3


def test_guard_accepts_a_real_improvement():
    rng = np.random.default_rng(1)
    n_images = 20
    baseline = 0.8 + rng.normal(0, 0.03, n_images)
    dice = np.column_stack([baseline, baseline + 0.04 + rng.normal(0, 0.01, n_images), baseline - 0.1])
    result = guarded_choice(baseline, lambda train: best_candidate(dice[train]), lambda c, idx: dice[idx, c],
                            kfold_indices(n_images, 5, seed=1))
    assert result.accepted and result.choice == 1
    assert result.out_of_fold > result.baseline + 0.03
    assert result.in_sample == pytest.approx(dice[:, 1].mean())


def test_guard_with_threshold_search_accepts_a_better_threshold():
    rng = np.random.default_rng(2)
    curves = curves_of(rng, 10, 200)
    baseline = curves[:, level_of(0.5)]
    result = guarded_choice(baseline, lambda train: coarse_to_fine_threshold(curves[train]),
                            lambda t, idx: curves[idx, level_of(t)], kfold_indices(10, 5, seed=0))
    assert result.accepted and abs(level_of(result.choice) - 200) < 8


def test_guard_refuses_folds_that_do_not_split_the_images():
    fit, score = (lambda train: 0), (lambda c, idx: np.ones(len(idx)))
    with pytest.raises(ValueError, match="folds"):
        guarded_choice(np.ones(4), fit, score, [np.array([0, 1]), np.array([1, 2, 3])])
    with pytest.raises(ValueError, match="folds"):
        guarded_choice(np.ones(4), fit, score, [np.arange(4)])
    with pytest.raises(ValueError, match="score returned"):
        guarded_choice(np.ones(4), fit, lambda c, idx: np.ones(1), kfold_indices(4, 2, seed=0))
