"""Soft ensembles of probability stores against a float64 numpy oracle on the full maps."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbens.classes import CLASSES
from hbens.ensemble.combine import fuse_class, vote_class
from hbens.ensemble.fuse import FuseCounts, fuse_image
from hbens.ensemble.inputs import ImageInputs
from hbens.ensemble.rules import (
    CLIP,
    HardRule,
    SoftRule,
    check_rule_inputs,
    classwise_rules,
    hard_rules,
    rules_metadata,
    soft_rules,
)
from hbens.ensemble.vote import VoteRule
from hbens.errors import HbensError
from hbens.maps.folders import MapFile
from hbens.maps.probabilities import (
    ClassCrop,
    ProbabilityStore,
    crop_runs,
    load_probabilities,
    quantize,
    tight_crop,
    write_store,
)
from hbens.rle import runs_to_mask
from hbens.runs import box_to_runs
from tests.oracles import decode_reference, encode_reference

SHAPE = (48, 64)
TOLERANCE = 1e-6


def random_maps(rng, classes, shape=SHAPE):
    """Per class a float32 map that is 0 outside a random box (sometimes all 0)."""
    maps = {}
    for name in classes:
        p = np.zeros(shape, np.float32)
        if rng.random() < 0.9:
            top, left = rng.integers(0, shape[0] - 1), rng.integers(0, shape[1] - 1)
            bottom, right = rng.integers(top + 1, shape[0] + 1), rng.integers(left + 1, shape[1] + 1)
            p[top:bottom, left:right] = rng.random((bottom - top, right - left))
        maps[name] = p
    return maps


def make_store(path, maps, precision="uint8", shape=SHAPE):
    crops = [tight_crop(p, (0, 0), precision) for p in maps.values()]
    write_store(path, crops, shape, precision, classes=tuple(maps), model="test")
    return str(path)


def make_csv(rng, shape=SHAPE):
    """CSV rows of random masks (some empty)."""
    return {name: encode_reference(rng.random(shape) < rng.choice([0.0, 0.3, 0.7])) for name in CLASSES}


def embed(crop):
    """A stored crop as the full float map (float32 values, as the store reads them back)."""
    out = np.zeros(SHAPE)
    top, left, bottom, right = crop.box
    values = crop.values.astype(np.float32) / 255 if crop.values.dtype == np.uint8 else crop.values
    out[top:bottom, left:right] = values
    return out


def full_maps(store_path, rles):
    """Each input's class maps as the oracle sees them: the whole float32 store, or decoded CSV rows."""
    if store_path is not None:
        return dict(zip(ProbabilityStore(store_path).classes, load_probabilities(store_path)))
    return {name: decode_reference(rle, SHAPE).astype(np.float32) for name, rle in rles.items()}


def logit(p):
    p = np.clip(p, CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def soft_oracle(maps, members, weights, space, threshold, name):
    """Weighted mean in float64 over the members that have the class: (fused probability, mask)."""
    present = [(m, w) for m, w in zip(members, weights) if name in maps[m]]
    total = sum(w for _, w in present)
    if space == "prob":
        fused = sum(w * maps[m][name].astype(np.float64) for m, w in present) / total
        return fused, fused > threshold
    mean = sum(w * logit(maps[m][name].astype(np.float64)) for m, w in present) / total
    with np.errstate(divide="ignore"):
        cut = np.log(threshold) - np.log1p(-threshold)  # not clipped: +inf at 1
    return 1 / (1 + np.exp(-mean)), mean > cut


def hard_oracle(maps, members, weights, min_weight, threshold, name):
    """Threshold each member, weighted vote; the vote threshold scaled by the share of weight present."""
    present = [(m, w) for m, w in zip(members, weights) if name in maps[m]]
    total = sum(w * (maps[m][name].astype(np.float64) > threshold) for m, w in present)
    return total > min_weight * sum(w for _, w in present) / sum(weights)


def assert_close_to_oracle(ours, expected, fused, threshold):
    """Masks equal except on pixels whose oracle fused value lies within 1e-6 of the threshold."""
    differ = ours.astype(bool) != expected
    assert np.all(np.abs(fused[differ] - threshold) <= TOLERANCE), f"{differ.sum()} pixels differ"


def check_soft(result, inputs, rules):
    maps = [full_maps(path, rles) for path, rles in inputs]
    assert [name for name, _ in result.rows] == list(CLASSES)
    for name, rle in result.rows:
        rule = rules[name]
        fused, expected = soft_oracle(maps, rule.members, rule.weights, rule.space, rule.threshold, name)
        assert_close_to_oracle(decode_reference(rle, SHAPE), expected, fused, rule.threshold)


def fuse(inputs, rules, keep_crops=False, precision="uint8"):
    maps = [MapFile(str(p)) if p is not None else None for p, _ in inputs]
    inputs = ImageInputs(image="image1.png", maps=maps, rles=[r for _, r in inputs], shape=SHAPE)
    return fuse_image(inputs, rules, precision=precision, keep_crops=keep_crops)


@pytest.fixture
def stores(tmp_path, rng):
    """Three stores of all classes: two uint8, one float16."""
    return [(make_store(tmp_path / f"s{i}.npz", random_maps(rng, CLASSES), precision), None)
            for i, precision in enumerate(["uint8", "float16", "uint8"])]


@pytest.mark.parametrize("weights, threshold", [(None, 0.5), ([1, 2, 3], 0.5), ([0.2, 0.5, 0.3], 0.3),
                                                ([1, 1, 1], 0.0), ([1, 1, 1], 1.0)])
def test_weighted_mean_matches_oracle(stores, weights, threshold):
    rules = soft_rules(3, weights=weights, threshold=threshold)
    result = fuse(stores, rules)
    check_soft(result, stores, rules)
    assert result.stats.rows == 29 and result.stats.partial_rows == 0


def test_huge_weights_do_not_overflow(stores):
    plain = fuse(stores, soft_rules(3))
    assert fuse(stores, soft_rules(3, weights=[1e308] * 3)).rows == plain.rows
    assert fuse(stores, soft_rules(3, weights=[1e308, 1e-300, 1e308])).rows == \
        fuse([stores[0], stores[2]], soft_rules(2)).rows


def test_class_weights_and_thresholds(stores):
    rules = soft_rules(3, weights=[1, 1, 2], class_weights={"Ulna": [5, 1, 1], "finger-3": [1, 0.1, 0.1]},
                       thresholds={"Ulna": 0.2, "Radius": 0.8, "Pisiform": 0.05}, threshold=0.4)
    assert rules["Ulna"].weights == (5, 1, 1) and rules["Ulna"].threshold == 0.2
    assert rules["Capitate"].weights == (1, 1, 2) and rules["Capitate"].threshold == 0.4
    check_soft(fuse(stores, rules), stores, rules)


@pytest.mark.parametrize("threshold", [0.5, 0.2, CLIP, 1.0])
def test_logit_space(stores, threshold):
    rules = soft_rules(3, weights=[3, 1, 1], space="logit", threshold=threshold)
    check_soft(fuse(stores, rules), stores, rules)


def test_logit_differs_from_prob(stores):
    assert fuse(stores, soft_rules(3, space="logit")).rows != fuse(stores, soft_rules(3)).rows


def test_classwise_picks_subsets_and_scores(stores):
    scores = [{"Ulna": 0.9, "Radius": 0.5}, {"Ulna": 0.95, "Radius": 0.4}, {"Ulna": 0.1}]
    rules = classwise_rules(3, picks=["Radius=2", "Lunate=0+2", "finger-1=0+1+2"], scores=scores,
                                 space="prob", thresholds={"Lunate": 0.3})
    assert rules["Ulna"].members == (1,) and rules["Radius"].members == (2,) and rules["Capitate"].members == (0,)
    assert rules["Lunate"] == SoftRule(members=(0, 2), weights=(1, 1), threshold=0.3)
    result = fuse(stores, rules)
    check_soft(result, stores, rules)
    # A single pick is that input's own thresholding.
    single = dict(zip(ProbabilityStore(stores[2][0]).classes, ProbabilityStore(stores[2][0]).stored_crops()))
    assert dict(result.rows)["Radius"] == encode_reference(embed(single["Radius"]) > 0.5)


@pytest.mark.parametrize("bad", ["Nope=0", "Ulna=3", "Ulna=0+0", "Ulna=x"])
def test_classwise_bad_picks(bad):
    with pytest.raises(HbensError, match="--pick"):
        classwise_rules(3, picks=[bad])


@pytest.mark.parametrize("space", ["prob", "logit"])
def test_mixed_csv_and_store_inputs(stores, rng, space):
    inputs = [stores[0], (None, make_csv(rng)), stores[1]]
    del inputs[1][1]["Ulna"]  # an absent CSV row is the empty mask
    rules = soft_rules(3, weights=[1, 2, 1], space=space)
    result = fuse(inputs, rules)
    check_soft(result, [stores[0], (None, {**inputs[1][1], "Ulna": ""}), stores[1]], rules)


def test_csv_only_equals_vote(rng):
    """Two 0/1 maps with equal weights: the mean exceeds 0.5 only where both mark the pixel."""
    a, b = make_csv(rng), make_csv(rng)
    result = fuse([(None, a), (None, b)], soft_rules(2))
    for name, rle in result.rows:
        both = decode_reference(a[name], SHAPE) & decode_reference(b[name], SHAPE)
        assert rle == encode_reference(both)


def test_partial_class_stores(tmp_path, rng, stores):
    wrist = CLASSES[19:27]
    partial = (make_store(tmp_path / "wrist.npz", random_maps(rng, wrist)), None)
    inputs = [stores[0], partial, stores[2]]
    rules = soft_rules(3, weights=[1, 4, 1])
    result = fuse(inputs, rules)
    check_soft(result, inputs, rules)
    assert result.stats.partial_rows == 29 - len(wrist)
    only = fuse([partial], {name: SoftRule(members=(0,), weights=(1,)) for name in wrist})
    assert [name for name, _ in only.rows] == list(wrist)


def test_a_class_no_member_has_is_named(tmp_path, rng, stores):
    wrist = (make_store(tmp_path / "wrist.npz", random_maps(rng, CLASSES[19:27])), None)
    with pytest.raises(HbensError, match="class Radius: none of its inputs \\(1\\)"):
        fuse([stores[0], wrist], classwise_rules(2, picks=["Radius=1"]))
    with pytest.raises(HbensError, match="Ulna"):
        check_rule_inputs([["Radius"], None, ["Radius"]], {"Ulna": SoftRule(members=(0, 2), weights=(1, 1))})
    check_rule_inputs([["Radius"], None], {"Ulna": SoftRule(members=(0, 1), weights=(1, 1))})
    with pytest.raises(HbensError, match="uses input 3 but there are 2"):
        check_rule_inputs([None, None], {"Ulna": SoftRule(members=(0, 3), weights=(1, 1))})


@pytest.mark.parametrize("kwargs, vote_weights, min_weight", [
    ({}, [1, 1, 1], 1.5),
    ({"min_votes": 1}, [1, 1, 1], 0.5),
    ({"weights": [2, 1, 1], "threshold": 0.3}, [2, 1, 1], 2.0),
    ({"weights": [2, 1, 1], "min_weight": 1.5, "thresholds": {"Ulna": 0.7}}, [2, 1, 1], 1.5),
])
def test_hard_vote_on_stores(tmp_path, rng, stores, kwargs, vote_weights, min_weight):
    partial = (make_store(tmp_path / "wrist.npz", random_maps(rng, CLASSES[19:27])), None)
    csv = (None, make_csv(rng))
    for inputs in (stores, [stores[0], partial, csv]):
        rules = hard_rules(3, **kwargs)
        result = fuse(inputs, rules)
        maps = [full_maps(path, rles) for path, rles in inputs]
        for name, rle in result.rows:
            threshold = rules[name].threshold
            expected = hard_oracle(maps, range(3), vote_weights, min_weight, threshold, name)
            inputs_near = np.zeros(SHAPE, bool)
            for m in maps:
                if name in m:
                    inputs_near |= np.abs(m[name].astype(np.float64) - threshold) <= TOLERANCE
            differ = decode_reference(rle, SHAPE).astype(bool) != expected
            assert not (differ & ~inputs_near).any()


def test_hard_vote_of_one_store_is_its_thresholding(stores):
    store = ProbabilityStore(stores[1][0])
    result = fuse([stores[1]], hard_rules(1, threshold=0.3))
    for (name, rle), crop in zip(result.rows, store.stored_crops()):
        assert rle == encode_reference(embed(crop) > 0.3)


def test_hard_threshold_one_clears_csv_inputs(rng):
    csv = make_csv(rng)
    result = fuse([(None, csv), (None, csv)], hard_rules(2, min_votes=1, threshold=1.0))
    assert all(rle == "" for _, rle in result.rows)
    assert fuse([(None, csv)], hard_rules(1, threshold=0.99)).rows == [(name, csv[name]) for name in CLASSES]


def test_hard_tie_after_renormalising(tmp_path):
    """Majority of 3 with one store lacking the class: 1 of the 2 others is not a majority, 2 of 2 is."""
    one = np.zeros(SHAPE, np.float32)
    one[2:5, 3:9] = 1
    both = one.copy()
    both[10:12, 10:20] = 1
    a = make_store(tmp_path / "a.npz", {"Ulna": both})
    b = make_store(tmp_path / "b.npz", {"Ulna": one})
    c = make_store(tmp_path / "c.npz", {"Radius": one})
    result = fuse([(a, None), (b, None), (c, None)], {"Ulna": HardRule(vote=VoteRule.make(range(3)))})
    assert result.rows == [("Ulna", encode_reference(one))]


def test_keep_crops_are_storable(tmp_path, stores):
    rules = soft_rules(3, weights=[1, 2, 1])
    result = fuse(stores, rules, keep_crops=True, precision="float16")
    path = tmp_path / "fused.npz"
    write_store(path, result.crops, SHAPE, "float16", classes=tuple(n for n, _ in result.rows),
                ensemble=rules_metadata(rules))
    back = ProbabilityStore(path)
    assert back.meta["ensemble"]["Ulna"] == {"space": "prob", "members": [0, 1, 2], "weights": [1, 2, 1],
                                             "threshold": 0.5}
    maps = [full_maps(p, r) for p, r in stores]
    for k, name in enumerate(back.classes):
        fused, _ = soft_oracle(maps, range(3), (1, 2, 1), "prob", 0.5, name)
        expected = np.where(fused > 1 / 255, fused, 0)
        assert np.abs(back.class_map(k) - expected).max() <= 2e-3 + 1 / 255
    assert fuse(stores, rules).crops is None
    hard = fuse(stores, hard_rules(3), keep_crops=True)
    for (name, rle), crop in zip(hard.rows, hard.crops):
        assert rle == encode_reference(embed(crop) > 0.5)


def test_result_and_task_pickle(stores):
    result = fuse(stores, soft_rules(3), keep_crops=True)
    assert pickle.loads(pickle.dumps(result)).rows == result.rows
    assert pickle.loads(pickle.dumps(fuse_image)) is fuse_image
    assert pickle.loads(pickle.dumps(soft_rules(3))) == soft_rules(3)


def test_stats_add_up(stores):
    one = fuse(stores, soft_rules(3)).stats
    total = one + one
    assert total.images == 2 and total.rows == 58 and total.fused_pixels == 2 * one.fused_pixels
    assert 0 < one.fused_pixels <= 29 * SHAPE[0] * SHAPE[1]
    assert FuseCounts() + one == one


def test_mismatched_shapes_name_the_files(tmp_path, rng, stores):
    other = make_store(tmp_path / "big.npz", random_maps(rng, CLASSES, (50, 64)), shape=(50, 64))
    with pytest.raises(HbensError, match="differ in shape") as info:
        fuse([stores[0], (other, None)], soft_rules(2))
    assert stores[0][0] in str(info.value) and "big.npz (50x64)" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(HbensError, match="big.npz hold 50x64 maps, expected 48x64"):
        fuse([(other, None)], soft_rules(1))


@pytest.mark.parametrize("call, message", [
    (lambda: soft_rules(3, weights=[1, 2]), "2 weights for 3 inputs"),
    (lambda: soft_rules(2, class_weights={"Ulna": [1, 2, 3]}), "give 2 weights > 0, one per input"),
    (lambda: soft_rules(2, class_weights={"Ulnar": [1, 2]}), "unknown class 'Ulnar'"),
    (lambda: soft_rules(2, thresholds={"Ulnar": 0.4}), "unknown class 'Ulnar'"),
    (lambda: soft_rules(2, weights=[1, 0]), "positive"),
    (lambda: soft_rules(2, weights=[1, float("nan")]), "positive"),
    (lambda: soft_rules(2, threshold=1.5), "threshold must be in"),
    (lambda: soft_rules(2, space="logits"), "space must be one of"),
    (lambda: soft_rules(2, space="logit", threshold=0.001), "clipping floor"),
    (lambda: SoftRule(members=(0, 0), weights=(1, 1)), "distinct"),
    (lambda: SoftRule(members=(), weights=()), "distinct"),
    (lambda: SoftRule(members=(0, 1), weights=(1,)), "1 weights for 2 inputs"),
    (lambda: hard_rules(3, weights=[1, 1]), "2 weights for 3 inputs"),
    (lambda: hard_rules(3, threshold=-0.1), "threshold must be in"),
])
def test_rule_errors(call, message):
    with pytest.raises(HbensError, match=message):
        call()


def test_input_errors(stores):
    rules = soft_rules(2)
    with pytest.raises(HbensError, match="either a map file or CSV rows"):
        ImageInputs(image="x.png", maps=[MapFile(str(stores[0][0])), None], rles=[None, None], shape=SHAPE)
    with pytest.raises(HbensError, match="either a map file or CSV rows"):
        ImageInputs(image="x.png", maps=[MapFile(str(stores[0][0]))], rles=[None, {}], shape=SHAPE)
    with pytest.raises(HbensError, match="precision"):
        fuse(stores[:2], rules, precision="int8")
    with pytest.raises(HbensError, match="image1.png, Ulna: RLE run 1"):
        fuse([stores[0], (None, {"Ulna": "0 5"})], rules)


# Property tests: fuse_class and vote_class on random crops, boxes and weights.

@st.composite
def sources(draw):
    n = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.sampled_from(["uint8", "float16", "float32", "runs", "empty", "none"]),
                          min_size=n, max_size=n).filter(lambda k: any(kind != "none" for kind in k)))
    seed = draw(st.integers(0, 2**32 - 1))
    weights = draw(st.lists(st.floats(1e-3, 1e3), min_size=n, max_size=n))
    space = draw(st.sampled_from(["prob", "logit"]))
    threshold = draw(st.floats(CLIP if space == "logit" else 0, 1))
    return kinds, seed, weights, space, threshold


def make_sources(kinds, seed, shape=(13, 17)):
    """Sources of one class and the full float maps the oracle sees (None where the input lacks it)."""
    rng = np.random.default_rng(seed)
    made, maps = [], []
    for kind in kinds:
        if kind == "none":
            made.append(None)
            maps.append(None)
            continue
        top, left = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        bottom, right = rng.integers(top, shape[0] + 1), rng.integers(left, shape[1] + 1)
        full = np.zeros(shape, np.float32)
        if kind == "runs":
            mask = rng.random((bottom - top, right - left)) < 0.5
            made.append(box_to_runs(mask, top, left, shape))
            maps.append(runs_to_mask(*made[-1], shape).astype(np.float32))
            continue
        if kind == "empty":
            made.append(ClassCrop((0, 0, 0, 0), np.zeros((0, 0), np.uint8)))
            maps.append(full)
            continue
        values = quantize(rng.random((bottom - top, right - left)) ** 2, "uint8" if kind == "uint8" else "float16")
        if kind == "float32":
            values = rng.random((bottom - top, right - left)).astype(np.float32)
        made.append(ClassCrop((top, left, bottom, right), values))
        full[top:bottom, left:right] = values.astype(np.float32) / 255 if kind == "uint8" else values
        maps.append(full)
    return made, maps


@settings(max_examples=200, deadline=None)
@given(sources())
def test_fuse_class_property(drawn):
    kinds, seed, weights, space, threshold = drawn
    shape = (13, 17)
    made, maps = make_sources(kinds, seed, shape)
    rule = SoftRule(members=range(len(kinds)), weights=weights, space=space, threshold=threshold)
    crop = fuse_class(made, rule, shape)
    fused, expected = soft_oracle([{"c": m} if m is not None else {} for m in maps], rule.members, weights,
                                  space, threshold, "c")
    top, left, bottom, right = crop.box
    outside = 0.0 if space == "prob" else CLIP
    ours = np.full(shape, outside)
    ours[top:bottom, left:right] = crop.values
    assert crop.values.dtype == np.float32
    assert np.abs(ours - fused).max() <= 1e-7
    mask = runs_to_mask(*crop_runs(crop, shape, threshold), shape)
    assert_close_to_oracle(mask, expected, fused, threshold)


@settings(max_examples=100, deadline=None)
@given(sources(), st.integers(1, 4))
def test_vote_class_property(drawn, min_votes):
    kinds, seed, _, _, threshold = drawn
    shape = (13, 17)
    made, maps = make_sources(kinds, seed, shape)
    vote = VoteRule.make(range(len(kinds)), min(min_votes, len(kinds)))
    runs = vote_class(made, HardRule(vote=vote, threshold=threshold), shape)
    expected = hard_oracle([{"c": m} if m is not None else {} for m in maps], vote.inputs, vote.weights,
                           vote.threshold, threshold, "c")
    near = np.zeros(shape, bool)
    for m in maps:
        if m is not None:
            near |= np.abs(m.astype(np.float64) - threshold) <= TOLERANCE
    differ = runs_to_mask(*runs, shape).astype(bool) != expected
    assert not (differ & ~near).any()


def write_folders(tmp_path, rng, n_images=3):
    """Two store folders and a CSV over the same images, and the first folder as saved float32 arrays of
    the values its stores hold (read directly, they fuse as the stores do)."""
    from hbens.submission import write_submission

    folders = [tmp_path / "a", tmp_path / "b"]
    arrays = tmp_path / "a-arrays"
    for folder in [*folders, arrays]:
        folder.mkdir()
    rows = {}
    for i in range(n_images):
        image = f"image{i}.png"
        for k, folder in enumerate(folders):
            maps = random_maps(rng, CLASSES)
            crops = [tight_crop(p, (0, 0)) for p in maps.values()]
            write_store(folder / f"image{i}.npz", crops, SHAPE, image=image)
            if k == 0:
                stored = np.stack([np.rint(np.clip(p, 0, 1) * 255).astype(np.float32) / np.float32(255)
                                   for p in maps.values()])
                np.savez_compressed(arrays / f"image{i}.npz", output=stored)
        rows.update({(image, name): rle for name, rle in make_csv(rng).items()})
    write_submission(tmp_path / "c.csv", rows)
    return [str(f) for f in folders], str(arrays), str(tmp_path / "c.csv")


def test_fuse_inputs_streams_folders_and_csvs_like_the_per_image_task(tmp_path, rng):
    from hbens.ensemble import fuse as fuse_inputs
    from hbens.execution import Execution
    from hbens.maps.folders import open_map_folder
    from hbens.maps.saved_arrays import ArrayFormat
    from hbens.submission import read_submission

    folders, arrays, csv = write_folders(tmp_path, rng)
    rules = soft_rules(3, weights=[2, 1, 1], threshold=0.4)
    summary = fuse_inputs([*folders, csv], tmp_path / "out.csv", rules, stores=tmp_path / "fused")
    assert summary.rows == 3 * len(CLASSES) and summary.stats.fuse.images == 3
    fused = read_submission(tmp_path / "out.csv")
    for i in range(3):
        image = f"image{i}.png"
        rles = {name: fused[(image, name)] for name in CLASSES}
        inputs = [(f"{folders[0]}/image{i}.npz", None), (f"{folders[1]}/image{i}.npz", None),
                  (None, {name: read_submission(csv)[(image, name)] for name in CLASSES})]
        check_soft(type("R", (), {"rows": list(rles.items())}), inputs, rules)
        store = ProbabilityStore(tmp_path / "fused" / f"image{i}.npz")
        assert store.meta["image"] == image and store.meta["rules"]["Ulna"]["weights"] == [2, 1, 1]
    assert open_map_folder(tmp_path / "fused").kind == "hbens stores"
    threads = fuse_inputs([*folders, csv], tmp_path / "threads.csv", rules, execution=Execution(workers=2))
    assert (tmp_path / "threads.csv").read_bytes() == (tmp_path / "out.csv").read_bytes()
    assert threads.stats.fuse == summary.stats.fuse
    fmt = ArrayFormat(size=SHAPE)
    fuse_inputs([arrays, folders[1], csv], tmp_path / "arrays.csv", rules, array_format=fmt)
    assert (tmp_path / "arrays.csv").read_bytes() == (tmp_path / "out.csv").read_bytes()


def test_fuse_inputs_refuses_misaligned_folders(tmp_path, rng):
    from hbens.ensemble import fuse as fuse_inputs

    folders, _, csv = write_folders(tmp_path, rng, 2)
    (tmp_path / "b" / "image1.npz").unlink()
    with pytest.raises(HbensError, match="lacks 1 image\\(s\\) of the other inputs, e.g. image1.png; .*--missing empty"):
        fuse_inputs([*folders, csv], tmp_path / "o.csv", soft_rules(3))
    assert not (tmp_path / "o.csv").exists()
    summary = fuse_inputs([*folders, csv], tmp_path / "o.csv", soft_rules(3), missing="empty")
    assert summary.rows == 2 * len(CLASSES)


# ---------------------------------------------------------------------------- saved arrays read exactly

SAVED = {
    "uint16": (lambda p: np.rint(p * 10000).astype(np.uint16), lambda v: v.astype(np.float64) / 10000),
    "float32": (lambda p: p.astype(np.float32), lambda v: v.astype(np.float64)),
    "float16": (lambda p: p.astype(np.float16), lambda v: v.astype(np.float64)),
}
"""How another pipeline saves probabilities, and the float64 probabilities its values stand for."""
NEAR = 1e-4
"""Pixels whose oracle weighted mean lies this close to the threshold may go either way."""


def smooth_probabilities(rng, n, shape):
    """(n, H, W) float64 probabilities: logits on a coarse 6x6 grid resized bilinearly, so that each
    map has wide soft slopes through every value (and the fused mean crosses any threshold)."""
    from tests.test_saved_arrays import resize_reference

    coarse = rng.normal(-1, 4, (n, 6, 6))
    return 1 / (1 + np.exp(-np.stack([resize_reference(c, shape) for c in coarse])))


def fused_against_oracle(folder, rng, kind, weights, threshold, shape, classes=CLASSES[:4], images=3, cli=False):
    """Fuse three folders of ``kind`` arrays with ``weights`` and ``threshold`` (with ``hbens fuse`` when
    ``cli``); per image and class, the pixels that differ from the float64 vote ``sum(w_i p_i) >
    threshold * sum(w)`` of the source values although the oracle's mean is more than NEAR from the
    threshold, and the oracle's foreground count."""
    from hbens.ensemble import fuse as fuse_inputs
    from hbens.maps.saved_arrays import ArrayFormat
    from hbens.submission import read_submission

    save, meaning = SAVED[kind]
    values = {}
    for k in range(3):
        (folder / f"m{k}").mkdir()
        for i in range(images):
            saved = save(smooth_probabilities(rng, len(classes), shape))
            np.save(folder / f"m{k}" / f"img{i}.npy", saved)
            values[k, i] = meaning(saved)
    if cli:
        from click.testing import CliRunner

        from hbens.cli import cli as hbens

        args = ["fuse", *(str(folder / f"m{k}") for k in range(3)), "-o", str(folder / "out.csv"), "--quiet",
                "--weights", ",".join(map(str, weights)), "--threshold", str(threshold)]
        result = CliRunner().invoke(hbens, args)
        assert result.exit_code == 0, result.output
    else:
        rules = {name: rule for name, rule in soft_rules(3, weights=weights, threshold=threshold).items()
                 if name in classes}
        fuse_inputs([folder / f"m{k}" for k in range(3)], folder / "out.csv", rules,
                    array_format=ArrayFormat(classes=classes, size=shape))
    rows = read_submission(folder / "out.csv", shape)
    w = np.asarray(weights, np.float64)
    wrong = foreground = 0
    for i in range(images):
        for c, name in enumerate(classes):
            total = sum(w[k] * values[k, i][c] for k in range(3))
            expected = total > threshold * w.sum()
            ours = decode_reference(rows[(f"img{i}.png", name)], shape).astype(bool)
            wrong += int(((ours != expected) & (np.abs(total / w.sum() - threshold) > NEAR)).sum())
            foreground += int(expected.sum())
    return wrong, foreground


@pytest.mark.parametrize("kind", ["uint16", "float32"])
def test_saved_arrays_fuse_as_a_float64_vote_of_their_values(tmp_path, rng, kind):
    """Issue 19: ``uint16(p*10000)`` (or float32) folders read directly are never rounded to 1/255."""
    wrong, foreground = fused_against_oracle(tmp_path, rng, kind, (1.5, 1, 1), 0.3, (64, 64))
    assert wrong == 0 and foreground > 0


def test_hbens_fuse_of_uint16_folders_is_the_float64_vote(tmp_path, rng):
    """The issue's command: ``hbens fuse A B C --weights 1.5,1,1 --threshold 0.3`` on uint16(p*10000) folders."""
    wrong, foreground = fused_against_oracle(tmp_path, rng, "uint16", (1.5, 1, 1), 0.3, (64, 64), classes=CLASSES,
                                             cli=True)
    assert wrong == 0 and foreground > 0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(sorted(SAVED)),
       weights=st.tuples(*[st.floats(0.1, 10)] * 3), threshold=st.floats(0.01, 0.99),
       shape=st.tuples(st.integers(8, 40), st.integers(8, 40)))
def test_saved_arrays_fuse_as_the_oracle_at_any_weights(seed, kind, weights, threshold, shape):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        wrong, _ = fused_against_oracle(Path(folder), np.random.default_rng(seed), kind, weights, threshold, shape,
                                        classes=CLASSES[:2], images=1)
    assert wrong == 0
