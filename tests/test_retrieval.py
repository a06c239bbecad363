import numpy as np
import pytest

from s5vh_hf.retrieval.hamming_index import HammingIndex, as_packed_codes, unpack_codes


def _random_codes(n, bits, seed, distinct=4):
    """±1 codes drawn from few distinct patterns so that distances tie heavily."""
    rng = np.random.default_rng(seed)
    patterns = np.where(rng.random((distinct, bits)) > 0.5, 1, -1).astype(np.int8)
    noise = np.where(rng.random((n, bits)) > 0.9, -1, 1).astype(np.int8)
    return patterns[rng.integers(0, distinct, n)] * noise


def _brute_force(queries, database, k):
    distances = (queries[:, None, :] != database[None, :, :]).sum(-1)
    ids = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, ids, 1), ids


@pytest.mark.parametrize("bits", [8, 16, 32, 64, 24, 128])
def test_search_is_exact_with_ties_by_id(bits):
    database = _random_codes(500, bits, seed=bits)
    queries = _random_codes(40, bits, seed=bits + 1)
    index = HammingIndex(bits)
    index.add(database[:200])
    index.add(np.packbits(database[200:] > 0, axis=1))  # packed input, ids continue
    distances, ids = index.search(queries, 60)
    expected_d, expected_i = _brute_force(queries, database, 60)
    assert distances.dtype == np.int32 and ids.dtype == np.int64
    assert np.array_equal(distances, expected_d)
    assert np.array_equal(ids, expected_i)


def test_pack_and_unpack():
    codes = _random_codes(5, 16, seed=0)
    packed = as_packed_codes(codes)
    assert packed.shape == (5, 2) and packed.dtype == np.uint8
    assert np.array_equal(unpack_codes(packed), codes)
    assert np.array_equal(as_packed_codes(codes > 0), packed)
    assert np.array_equal(as_packed_codes(codes.astype(np.float32)), packed)
    assert np.array_equal(as_packed_codes(packed, 16), packed)


def test_save_and_load(tmp_path):
    database = _random_codes(50, 32, seed=3)
    index = HammingIndex.from_codes(database)
    index.save(tmp_path / "codes.faissindex")
    loaded = HammingIndex.load(tmp_path / "codes.faissindex")
    assert loaded.ntotal == 50 and loaded.code_length == 32
    assert np.array_equal(loaded.codes(), as_packed_codes(database))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.search(database, 5), index.search(database, 5)))


def test_load_rejects_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        HammingIndex.load(tmp_path / "nope")
    (tmp_path / "bad").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="not a readable"):
        HammingIndex.load(tmp_path / "bad")


def test_bad_input_is_reported():
    index = HammingIndex.from_codes(_random_codes(10, 16, seed=4))
    with pytest.raises(ValueError, match="expected 16-bit codes, got 32 bits"):
        index.search(_random_codes(2, 32, seed=5), 3)
    with pytest.raises(ValueError, match="larger than the database"):
        index.search(_random_codes(2, 16, seed=5), 11)
    with pytest.raises(ValueError, match="binary"):
        index.add(np.full((2, 16), 0.3))
    with pytest.raises(ValueError, match="multiple of 8"):
        HammingIndex(12)
    assert index.search(np.zeros((0, 2), np.uint8), 3)[1].shape == (0, 3)
