import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hbens import rle
from hbens.zeroed import zeroed_mask
from tests.oracles import decode_reference, encode_reference, parse_reference

FULL = (2048, 2048)


def adversarial_masks(shape):
    h, w = shape
    yield np.zeros(shape, np.uint8)
    yield np.ones(shape, np.uint8)
    for y, x in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)]:
        m = np.zeros(shape, np.uint8)
        m[y, x] = 1
        yield m
    checker = (np.indices(shape).sum(axis=0) % 2).astype(np.uint8)
    yield checker
    yield 1 - checker
    m = np.zeros(shape, np.uint8)
    m.reshape(-1)[w // 2 : w * 3 + 5] = 1
    yield m
    m = np.zeros(shape, np.uint8)
    m.reshape(-1)[::3] = 1
    yield m
    m = np.ones(shape, np.uint8)
    m.reshape(-1)[7::9] = 0
    yield m


def same_bytes(actual, expected):
    same_layout = actual.dtype == expected.dtype and actual.shape == expected.shape
    return same_layout and actual.tobytes() == expected.tobytes()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 5), (64, 64), (17, 33), FULL])
def test_adversarial_masks_match_reference(shape):
    texts, references = [], []
    for mask in adversarial_masks(shape):
        expected = encode_reference(mask)
        reference = decode_reference(expected, shape)
        assert rle.encode(mask) == expected
        assert same_bytes(rle.decode(expected, shape), reference)
        assert np.array_equal(reference, mask)
        texts.append(expected)
        references.append(reference)
    assert same_bytes(rle.decode_many(texts, shape, workers=2), np.stack(references))


@pytest.mark.parametrize("shape", [(1, 7), (64, 64), (17, 33), FULL])
def test_decoding_into_recycled_memory_matches_reference(shape, rng):
    """Each mask is decoded right after an all-ones array of its size is freed, whose memory the
    allocator may hand back, dirty, to the decoder's zeroed allocation.  At full size only the
    adversarial masks with few runs are used: the reference decoder loops over runs in Python."""
    from hbens.synthetic import random_mask

    masks = list(adversarial_masks(shape))[: 6 if shape == FULL else None]
    masks += [random_mask(rng, shape), (rng.random(shape) < 0.01).astype(np.uint8)]
    texts = [encode_reference(mask) for mask in masks]
    references = [decode_reference(text, shape) for text in texts]
    reused = 0
    for text, reference in zip(texts, references):
        dirty = np.ones(shape, np.uint8)
        address = dirty.ctypes.data
        del dirty
        decoded = rle.decode(text, shape)
        reused += decoded.ctypes.data == address
        assert same_bytes(decoded, reference)
        del decoded
    np.ones((len(texts), *shape), np.uint8)
    assert same_bytes(rle.decode_many(texts, shape, workers=2), np.stack(references))
    if shape == (64, 64):
        assert reused > 0, "the test never decoded into freed memory"


def test_random_masks_with_word_boundaries(rng):
    for density in [0.001, 0.05, 0.5, 0.95, 0.999]:
        for shape in [(8, 8), (13, 29), (256, 256)]:
            mask = (rng.random(shape) < density).astype(np.uint8)
            assert rle.encode(mask) == encode_reference(mask)


def test_realistic_full_frame(rng):
    from hbens.synthetic import random_mask

    mask = random_mask(rng)
    text = rle.encode(mask)
    assert text == encode_reference(mask)
    assert np.array_equal(rle.decode(text), mask)


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.sampled_from([0, 1])))
def test_property_encode_matches_reference_and_round_trips(mask):
    text = rle.encode(mask)
    assert text == encode_reference(mask)
    assert np.array_equal(rle.decode(text, mask.shape), mask)
    starts, lengths = rle.mask_to_runs(mask)
    assert rle.runs_to_string(starts, lengths) == text
    assert np.array_equal(rle.runs_to_mask(starts, lengths, mask.shape), mask)


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.sampled_from([0, 1])))
def test_property_decode_matches_reference_after_dirty_memory_is_freed(mask):
    text = encode_reference(mask)
    expected = decode_reference(text, mask.shape)
    np.ones(mask.shape, np.uint8)
    assert same_bytes(rle.decode(text, mask.shape), expected)
    np.ones((3, *mask.shape), np.uint8)
    empty = np.zeros_like(expected)
    decoded = rle.decode_many([text, "", text], mask.shape, workers=2)
    assert same_bytes(decoded, np.stack([expected, empty, expected]))


def test_nonbinary_and_bool_masks_count_nonzero_as_foreground(rng):
    values = rng.integers(0, 4, (32, 32)).astype(np.uint8) * 85
    assert rle.encode(values) == encode_reference(values != 0)
    assert rle.encode(values != 0) == encode_reference(values != 0)
    assert rle.encode(values.astype(np.int32)) == encode_reference(values != 0)


def test_non_contiguous_views_encode_like_copies(rng):
    stack = (rng.random((3, 40, 50)) < 0.3).astype(np.uint8)
    view = stack[1, ::2, 1:]
    assert rle.encode(view) == encode_reference(np.ascontiguousarray(view))


@pytest.mark.parametrize("empty", ["", "   ", None, float("nan")])
def test_empty_encodings_decode_to_empty_masks(empty):
    assert rle.decode(empty, (4, 4)).sum() == 0
    assert rle.is_empty(empty)


def test_decode_tolerates_extra_whitespace():
    assert np.array_equal(rle.decode(" 1 2\t 5  1 \n", (2, 3)), np.array([[1, 1, 0], [0, 1, 0]], np.uint8))


@pytest.mark.parametrize(
    "text, words",
    [
        ("1 2 3", "odd number"),
        ("1 x", "not a non-negative integer"),
        ("1 -2", "not a non-negative integer"),
        ("1.5 2", "not a non-negative integer"),
        ("0 2", "1-indexed"),
        ("3 0", "length 0"),
        ("5 2 3 1", "overlaps or precedes"),
        ("1 3 2 1", "overlaps or precedes"),
        ("16 2", "past the last pixel 16"),
        ("99999999999999999999 1", "not a non-negative integer"),
        ("1 2 é", "non-ASCII"),
        (b"1 2 \xff 1", r"token 3 \('\\xff'\) is not"),
        ("1\x0c2 3", r"token 1 \('1\\x0c2'\) is not"),
    ],
)
def test_invalid_rle_raises_one_clear_error(text, words):
    with pytest.raises(rle.RLEError, match=words):
        rle.string_to_runs(text, (4, 4))
    with pytest.raises(rle.RLEError, match=words):
        rle.decode(text, (4, 4))


PROBLEMS = {"not-integer": rle._NOT_INTEGER, "odd": rle._ODD, "start": rle._START, "length": rle._LENGTH,
            "overlap": rle._OVERLAP, "past-end": rle._PAST_END}


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(0, 40).map(str), st.sampled_from(["0001", "1" * 19, "-1", "2x", "", "+3"])),
        max_size=12,
    ),
    st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\r\n"]), min_size=13, max_size=13),
    st.integers(1, 60),
)
def test_property_parser_matches_reference(tokens, separators, size):
    text = separators[0] + "".join(token + separator for token, separator in zip(tokens, separators[1:]))
    runs, problem, bad_token = parse_reference(text, size)
    starts, lengths, code, token = rle.parse_runs_ascii(np.frombuffer(text.encode(), np.uint8), size)
    if problem is None:
        assert code == rle._OK and list(zip(starts.tolist(), lengths.tolist())) == runs
        expected = np.zeros(size, np.uint8)
        for start, length in runs:
            expected[start : start + length] = 1
        assert np.array_equal(rle.decode(text, (1, size)).reshape(-1), expected)
        flat = np.zeros(size, np.uint8)
        assert rle._decode_into(np.frombuffer(text.encode(), np.uint8), flat) == (rle._OK, -1)
        assert np.array_equal(flat, expected)
    else:
        assert (code, token) == (PROBLEMS[problem], bad_token)
        with pytest.raises(rle.RLEError):
            rle.decode(text, (1, size))


@pytest.mark.parametrize("shape", [(512, 512), (513, 511), (1024, 777)])
def test_parallel_chunks_join_runs_across_chunk_borders(shape, rng):
    size = shape[0] * shape[1]
    for middle in [size // 2 - 300, size // 2 - 1, size // 2, size // 2 + 1]:
        mask = np.zeros(shape, np.uint8)
        mask.reshape(-1)[middle - 5000 : middle + 5000] = 1
        mask.reshape(-1)[rng.integers(0, size, 200)] ^= 1
        assert rle.encode(mask) == encode_reference(mask)
        assert rle.encode(mask, parallel=False) == encode_reference(mask)


def test_touching_runs_are_accepted():
    assert rle.decode("1 2 3 2", (1, 5)).tolist() == [[1, 1, 1, 1, 0]]


def test_many_forms_match_single(rng):
    from hbens.synthetic import random_mask

    masks = np.stack([random_mask(rng, (128, 128)) for _ in range(6)] + [np.zeros((128, 128), np.uint8)])
    texts = rle.encode_many(masks)
    assert texts == [rle.encode(m, parallel=False) for m in masks]
    assert texts == [encode_reference(m) for m in masks]
    assert np.array_equal(rle.decode_many(texts, (128, 128), workers=2), masks)


def test_real_model_masks_match_reference(realdata):
    for path in sorted((realdata / "masks").glob("*/*.npz")):
        masks = np.load(path)["mask"]
        assert masks.shape == (29, 2048, 2048), path
        texts = rle.encode_many(masks)
        for mask, text in zip(masks, texts):
            assert text == encode_reference(mask)
        assert np.array_equal(rle.decode_many(texts), masks != 0)


@pytest.mark.parametrize("shape", [(0,), (7,), (2048 * 2048,), (3, 2048, 2048), (5, 300, 300)])
def test_zeroed_masks_are_zero_whether_fresh_or_recycled(shape):
    for _ in range(3):
        fresh = zeroed_mask(shape)
        assert fresh.shape == shape and fresh.dtype == np.uint8 and not fresh.any()
        fresh.fill(1)
        del fresh
