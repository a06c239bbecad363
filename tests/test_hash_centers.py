import numpy as np
import pytest

from s5vh_hf.data.clustering import compute_semantic_clusters, mean_pool
from s5vh_hf.data.hash_centers import (
    generate_hash_centers,
    gilbert_varshamov_distance,
    hadamard_matrix,
    hash_center_report,
    initial_hash_centers,
    load_hash_centers,
    rescaled_semantic_similarity,
    save_hash_centers,
)
from s5vh_hf.data.synthetic import make_synthetic_videos


@pytest.mark.parametrize(
    "K, L, d", [(100, 16, 4), (100, 32, 10), (100, 64, 24), (450, 16, 4), (450, 32, 9), (450, 64, 22), (101, 32, 10)]
)
def test_gilbert_varshamov_distance_matches_the_spec(K, L, d):
    assert gilbert_varshamov_distance(L, K) == d


def test_hadamard_rows_are_orthogonal_and_initialisation_is_balanced():
    H = hadamard_matrix(16).astype(int)
    assert np.array_equal(H @ H.T, 16 * np.eye(16, dtype=int))
    rng = np.random.default_rng(0)
    init = initial_hash_centers(40, 16, rng)
    assert init.shape == (40, 16) and set(np.unique(init)) == {-1, 1}
    assert np.all(init[32:].sum(1) == 0)  # random rows beyond the 2L Hadamard rows are balanced
    with pytest.raises(ValueError, match="power of two"):
        hadamard_matrix(12)


def test_rescaled_similarity_spans_minus_l_to_l():
    t = rescaled_semantic_similarity(np.random.default_rng(1).standard_normal((6, 8)), 32)
    off = t[~np.eye(6, dtype=bool)]
    assert off.min() == pytest.approx(-32) and off.max() == pytest.approx(32)


@pytest.mark.parametrize("K, L", [(100, 16), (101, 32), (100, 64), (30, 32)])
def test_generated_centers_reach_the_gv_bound_and_follow_semantics(K, L):
    rng = np.random.default_rng(K + L)
    # Semantic centers with structure: 5 groups of similar centers.
    groups = rng.standard_normal((5, 64))
    semantic = groups[np.arange(K) % 5] + 0.5 * rng.standard_normal((K, 64))
    result = generate_hash_centers(semantic, L, seed=3)
    centers, report = result.centers, result.report
    assert centers.shape == (K, L) and set(np.unique(centers)) == {-1, 1}
    distances = (L - centers.astype(int) @ centers.T.astype(int)) // 2
    min_distance = distances[np.triu_indices(K, 1)].min()
    assert report.constraint_satisfied and min_distance >= gilbert_varshamov_distance(L, K)
    assert report.min_distance == min_distance
    assert report.semantic_correlation > 0.3
    again = generate_hash_centers(semantic, L, seed=3)
    assert np.array_equal(again.centers, centers)  # deterministic for a seed


def test_report_flags_a_violated_bound():
    centers = np.ones((3, 16), dtype=np.int8)
    report = hash_center_report(centers)
    assert not report.constraint_satisfied and report.min_distance == 0


@pytest.mark.parametrize(
    "semantic, bits, match",
    [
        (np.zeros((1, 4)), 16, "at least 2"),
        (np.zeros((4, 4)), 12, "code_length must be one of"),
        (np.full((4, 4), np.nan), 16, "NaN"),
        (np.zeros((300, 4)), 8, "do not fit"),
    ],
)
def test_center_generation_bad_input(semantic, bits, match):
    with pytest.raises(ValueError, match=match):
        generate_hash_centers(semantic, bits)


def test_semantic_clusters_from_arrays_lists_and_datasets():
    data = make_synthetic_videos(
        num_videos=120, num_classes=4, feature_dim=32, num_frames=8, min_frames=4, nuisance_scale=0.2, seed=2
    )
    videos = data.videos()
    clusters = compute_semantic_clusters(videos, n_clusters=4, pca_dim=16, seed=0)
    assert clusters.pseudo_labels.shape == (120,) and clusters.semantic_centers.shape == (4, 16)
    assert np.allclose(np.linalg.norm(clusters.semantic_centers, axis=1), 1, atol=1e-5)
    # The pooled means respect each video's length (padding is not averaged in).
    assert np.allclose(mean_pool(videos)[0], videos[0].mean(0), atol=1e-6)
    # Clusters recover the classes well on this separable data (purity).
    purity = sum(
        np.bincount(data.labels[clusters.pseudo_labels == k]).max()
        for k in range(4)
        if (clusters.pseudo_labels == k).any()
    )
    assert purity / 120 > 0.6
    again = compute_semantic_clusters(videos, n_clusters=4, pca_dim=16, seed=0)
    assert np.array_equal(again.pseudo_labels, clusters.pseudo_labels)
    fixed = make_synthetic_videos(num_videos=60, num_classes=3, feature_dim=16, num_frames=5, seed=1)
    from_array = compute_semantic_clusters(fixed.features, n_clusters=3, pca_dim=8)
    import datasets

    ds = datasets.Dataset.from_dict({"features": [f.tolist() for f in fixed.features]})
    from_dataset = compute_semantic_clusters(ds, n_clusters=3, pca_dim=8, batch_size=7)
    assert np.array_equal(from_array.pseudo_labels, from_dataset.pseudo_labels)


@pytest.mark.parametrize(
    "features, k, match",
    [
        (np.random.default_rng(0).standard_normal((5, 3, 8)), 6, "larger than the number of videos"),
        (np.random.default_rng(0).standard_normal((5, 3, 8)), 1, "≥ 2"),
        (np.ones((10, 3, 8)), 2, "identical"),
    ],
)
def test_clustering_bad_input(features, k, match):
    with pytest.raises(ValueError, match=match):
        compute_semantic_clusters(features, n_clusters=k, pca_dim=4)


def test_clustering_names_videos_with_nan():
    features = np.random.default_rng(0).standard_normal((6, 3, 8))
    features[4, 1, 2] = np.nan
    with pytest.raises(ValueError, match="videos \\[4\\]"):
        compute_semantic_clusters(features, n_clusters=2, pca_dim=4)


def test_save_load_safetensors_and_authors_h5(tmp_path):
    import h5py

    rng = np.random.default_rng(5)
    centers = generate_hash_centers(rng.standard_normal((10, 8)), 16, seed=0).centers
    labels = rng.integers(0, 10, 50)
    save_hash_centers(tmp_path / "centers.safetensors", centers, labels, seed=0, source="synthetic")
    loaded = load_hash_centers(tmp_path / "centers.safetensors")
    assert np.array_equal(loaded.centers, centers) and np.array_equal(loaded.pseudo_labels, labels)
    assert loaded.metadata["num_centers"] == "10" and loaded.metadata["code_length"] == "16"
    assert loaded.metadata["required_distance"] == str(gilbert_varshamov_distance(16, 10))
    assert loaded.metadata["seed"] == "0" and loaded.metadata["source"] == "synthetic"
    with h5py.File(tmp_path / "hash_center_16.h5", "w") as handle:
        handle["matrix"] = centers.astype(np.float32)
    assert np.array_equal(load_hash_centers(tmp_path / "hash_center_16.h5").centers, centers)
    with h5py.File(tmp_path / "wrong.h5", "w") as handle:
        handle["other"] = centers
    with pytest.raises(ValueError, match="no 'matrix'"):
        load_hash_centers(tmp_path / "wrong.h5")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="not a readable"):
        load_hash_centers(tmp_path / "corrupt.safetensors")
    with pytest.raises(FileNotFoundError):
        load_hash_centers(tmp_path / "missing.safetensors")


def test_centers_load_into_the_model(tiny_model, tmp_path):
    centers = generate_hash_centers(np.random.default_rng(6).standard_normal((6, 8)), 16, seed=0).centers
    save_hash_centers(tmp_path / "c.safetensors", centers)
    tiny_model.set_hash_centers(load_hash_centers(tmp_path / "c.safetensors").centers)
    assert np.array_equal(tiny_model.hash_centers.detach().numpy(), centers)


def test_segment_pooling_concatenates_the_means_of_stretches_of_time():
    from s5vh_hf.data.clustering import segment_pool_video

    video = np.arange(12, dtype=np.float32).reshape(6, 2)  # frames (0,1), (2,3), … (10,11)
    np.testing.assert_allclose(segment_pool_video(video, 3), [1, 2, 5, 6, 9, 10])
    short = np.arange(4, dtype=np.float32).reshape(2, 2)  # fewer frames than segments: frames repeat
    assert segment_pool_video(short, 3).shape == (6,) and np.isfinite(segment_pool_video(short, 3)).all()
    assert mean_pool([video, video[::-1]], segments=3).shape == (2, 6)


def test_clusters_on_segments_tell_a_sequence_from_its_reversal():
    """Two classes with the same scenes in opposite orders: mean pooling mixes them, segments separate them."""
    rng = np.random.default_rng(0)
    scene_a, scene_b = rng.standard_normal((2, 16))
    videos, labels = [], []
    for index in range(40):
        cut = int(rng.integers(6, 10))
        first, second = (scene_a, scene_b) if index % 2 == 0 else (scene_b, scene_a)
        frames = np.concatenate([np.repeat(first[None], cut, 0), np.repeat(second[None], 16 - cut, 0)])
        videos.append((frames + 0.3 * rng.standard_normal(frames.shape)).astype(np.float32))
        labels.append(index % 2)
    labels = np.array(labels)

    def purity(assignment):
        return max(np.mean(assignment == labels), np.mean(assignment != labels))

    mean = compute_semantic_clusters(videos, 2, pca_dim=8, seed=0).pseudo_labels
    segments = compute_semantic_clusters(videos, 2, pca_dim=8, seed=0, pooling="segments", segments=3).pseudo_labels
    assert purity(segments) == 1.0 and purity(mean) < 0.8
    with pytest.raises(ValueError, match="pooling"):
        compute_semantic_clusters(videos, 2, pooling="median")


def test_cluster_pooling_is_a_checked_config_switch_that_leaves_the_codes_alone():
    from s5vh_hf import S5VHConfig, S5VHModel
    from s5vh_hf.model.fingerprint import model_fingerprint

    tiny = dict(feature_dim=8, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
                num_hash_centers=4)  # fmt: skip
    with pytest.raises(ValueError, match="cluster_pooling"):
        S5VHConfig(**tiny, cluster_pooling="median")
    with pytest.raises(ValueError, match="cluster_segments"):
        S5VHConfig(**tiny, cluster_pooling="segments", cluster_segments=1)
    model = S5VHModel(S5VHConfig(**tiny))
    before = model_fingerprint(model)
    model.config.cluster_pooling = "segments" if model.config.cluster_pooling == "mean" else "mean"
    assert model_fingerprint(model) == before  # how the training data was clustered does not change a code
