import json
from pathlib import Path

import numpy as np
import pytest

from s5vh_hf.retrieval.evaluation import evaluate_codes, evaluate_retrieval
from s5vh_hf.retrieval.metrics import (
    count_relevant,
    labels_to_multi_hot,
    map_at_k,
    precision_at_k,
    precision_recall_by_radius,
    recall_at_k,
    relevance_of_ranking,
    standard_map_at_k,
)


def _loop_map_at_k(query_codes, db_codes, query_labels, db_labels, k, divide_by_k=True):
    """Direct transcription of the published protocol: Hamming (L − ⟨b_db, b_q⟩)/2, stable ranking, AP@K."""
    L = query_codes.shape[1]
    aps = []
    for q in range(len(query_codes)):
        distances = [(L - int(np.dot(db_codes[i], query_codes[q]))) // 2 for i in range(len(db_codes))]
        order = sorted(range(len(db_codes)), key=lambda i: (distances[i], i))[:k]
        hits, total = 0, 0.0
        for rank, i in enumerate(order, 1):
            if np.any(np.logical_and(db_labels[i], query_labels[q])):
                hits += 1
                total += hits / rank
        aps.append(total / k if divide_by_k else (total / hits if hits else 0.0))
    return float(np.mean(aps))


def _tied_problem(seed, n_db=120, n_q=30, bits=16, classes=5):
    rng = np.random.default_rng(seed)
    patterns = np.where(rng.random((3, bits)) > 0.5, 1, -1)
    db = patterns[rng.integers(0, 3, n_db)].astype(np.int8)
    q = patterns[rng.integers(0, 3, n_q)].astype(np.int8)
    db_labels = rng.random((n_db, classes)) > 0.7
    q_labels = rng.random((n_q, classes)) > 0.7
    return q, db, q_labels, db_labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_at_k_equals_the_loop_formula_with_heavy_ties(seed):
    q, db, q_labels, db_labels = _tied_problem(seed)
    report = evaluate_codes(db, db_labels, q, q_labels, ks=(5, 20, 40), protocol="query_database")
    for k in (5, 20, 40):
        assert report.map_at_k[k] == pytest.approx(_loop_map_at_k(q, db, q_labels, db_labels, k), abs=1e-12)
        expected = _loop_map_at_k(q, db, q_labels, db_labels, k, divide_by_k=False)
        assert report.standard_map_at_k[k] == pytest.approx(expected, abs=1e-12)


def test_all_vs_all_includes_the_self_match():
    _, db, _, db_labels = _tied_problem(3)
    db_labels[:, 0] = True  # every item relevant to every other
    report = evaluate_codes(db, db_labels, ks=(5,), protocol="fcvid")
    assert report.protocol == "all_vs_all" and report.num_queries == len(db)
    assert report.map_at_k[5] == pytest.approx(1.0)
    assert report.map_at_k[5] == pytest.approx(_loop_map_at_k(db, db, db_labels, db_labels, 5))


def test_precision_recall_at_k_and_relevant_counts():
    relevance = np.array([[True, False, True, False], [False, False, False, True]])
    assert precision_at_k(relevance, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert recall_at_k(relevance, 4, np.array([4, 1])) == pytest.approx((2 / 4 + 1) / 2)
    assert map_at_k(relevance, 4) == pytest.approx(((1 + 2 / 3) / 4 + (1 / 4) / 4) / 2)
    assert standard_map_at_k(relevance, 4) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 4) / 2)
    with pytest.raises(ValueError, match="outside the ranking depth"):
        map_at_k(relevance, 5)
    q_labels = [[0], [1, 2], [3]]
    db_labels = [[0, 1], [2], [2], [4]]
    assert count_relevant(q_labels, db_labels).tolist() == [1, 3, 0]
    ranked = np.array([[0, 1], [1, 3], [3, 0]])
    assert relevance_of_ranking(ranked, q_labels, db_labels).tolist() == [[True, False], [True, False], [False, False]]


def test_labels_accept_ids_lists_and_multi_hot():
    assert labels_to_multi_hot(np.array([2, 0])).tolist() == [[False, False, True], [True, False, False]]
    assert labels_to_multi_hot([[0, 2], [1]]).tolist() == [[True, False, True], [False, True, False]]
    assert labels_to_multi_hot(np.array([[0, 1], [1, 1]])).dtype == bool
    with pytest.raises(ValueError, match="multi-hot"):
        labels_to_multi_hot(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="required"):
        labels_to_multi_hot(None)


def test_pr_curve_by_radius_matches_brute_force():
    q, db, q_labels, db_labels = _tied_problem(4, n_db=60, n_q=12)
    curve = precision_recall_by_radius(q, db, q_labels, db_labels, chunk_size=5)
    distances = (q[:, None] != db[None]).sum(-1)
    relevant = (q_labels.astype(int) @ db_labels.T.astype(int)) > 0
    for r in (0, 3, 8, 16):
        inside = distances <= r
        found = (inside & relevant).sum(1)
        some = inside.sum(1) > 0
        expected_p = (found[some] / inside.sum(1)[some]).mean() if some.any() else 0
        has_rel = relevant.sum(1) > 0
        expected_r = (found[has_rel] / relevant.sum(1)[has_rel]).mean()
        assert curve["precision"][r] == pytest.approx(expected_p)
        assert curve["recall"][r] == pytest.approx(expected_r)
    assert curve["recall"][-1] == pytest.approx(1.0)


def test_report_json_table_and_plot(tmp_path):
    q, db, q_labels, db_labels = _tied_problem(5)
    report = evaluate_codes(db, db_labels, q, q_labels, ks=(5, 20), pr_curve=True)
    report.save_json(tmp_path / "report.json")
    data = json.loads((tmp_path / "report.json").read_text())
    assert set(data["map_at_k"]) == {"5", "20"}
    assert "| map_at_k |" in report.table()
    report.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_retrieval_with_a_model(tiny_model, tiny_config):
    rng = np.random.default_rng(6)
    videos = rng.standard_normal((30, 5, tiny_config.feature_dim)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    report = evaluate_retrieval(tiny_model, (videos[:20], labels[:20]), (videos[20:], labels[20:]), ks=(5, 10))
    codes = tiny_model.encode(videos)
    expected = evaluate_codes(codes[:20], labels[:20], codes[20:], labels[20:], ks=(5, 10))
    assert report.map_at_k == expected.map_at_k
    by_codes = evaluate_retrieval(None, (codes[:20], labels[:20]), (codes[20:], labels[20:]), ks=(5, 10))
    assert by_codes.map_at_k == expected.map_at_k


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(query_codes=None), "needs query codes"),
        (dict(ks=(500,)), "larger than the database"),
        (dict(protocol="mystery"), "Unknown protocol"),
        (dict(query_labels=np.zeros(3, int)), "query codes but 3 query labels"),
    ],
)
def test_evaluation_bad_input(kwargs, match):
    q, db, q_labels, db_labels = _tied_problem(7)
    arguments = dict(query_codes=q, query_labels=q_labels, ks=(5,), protocol="query_database")
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        evaluate_codes(db, db_labels, **arguments)
    with pytest.raises(ValueError, match="database labels are required"):
        evaluate_codes(db, None, q, q_labels)
    with pytest.raises(ValueError, match="16-bit"):
        evaluate_codes(db, db_labels, np.ones((len(q), 32), np.int8), q_labels)


def test_evaluate_metric_module_matches_the_library():
    import evaluate

    from s5vh_hf.evaluate_metrics import HASHING_MAP_PATH

    q, db, q_labels, db_labels = _tied_problem(8)
    q_ids = [np.flatnonzero(row).tolist() for row in q_labels]
    db_ids = [np.flatnonzero(row).tolist() for row in db_labels]
    metric = evaluate.load(HASHING_MAP_PATH)
    result = metric.compute(
        predictions=q.tolist(), references=q_ids, database_codes=db.tolist(), database_labels=db_ids, ks=(5, 20)
    )
    expected = evaluate_codes(db, db_ids, q, q_ids, ks=(5, 20))
    assert result["map@5"] == pytest.approx(expected.map_at_k[5])
    assert result["standard_map@20"] == pytest.approx(expected.standard_map_at_k[20])
    assert result["map@20"] == pytest.approx(_loop_map_at_k(q, db, q_labels, db_labels, 20))


def test_the_metric_module_runs_without_the_package_and_has_a_card(tmp_path):
    """Copied out of the package (as into a Hub Space) and run where s5vh_hf cannot be imported."""
    import shutil
    import subprocess
    import sys
    import textwrap

    from huggingface_hub import RepoCard

    from s5vh_hf.evaluate_metrics import HASHING_MAP_PATH

    folder = tmp_path / "hashing_map"
    shutil.copytree(Path(HASHING_MAP_PATH).parent, folder)
    card = RepoCard.load(folder / "README.md")
    assert "metric" in card.data.tags and "## Limitations and bias" in card.text
    q, db, q_labels, db_labels = _tied_problem(8)
    q_ids = [np.flatnonzero(row).tolist() for row in q_labels]
    db_ids = [np.flatnonzero(row).tolist() for row in db_labels]
    (tmp_path / "inputs.json").write_text(json.dumps([q.tolist(), q_ids, db.tolist(), db_ids]))
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "s5vh_hf" or name.startswith("s5vh_hf."):
                    raise ImportError("s5vh_hf is not installed here")
        sys.meta_path.insert(0, Block())
        import evaluate
        q, q_ids, db, db_ids = json.load(open({str(tmp_path / "inputs.json")!r}))
        metric = evaluate.load({str(folder / "hashing_map.py")!r})
        both = metric.compute(predictions=q, references=q_ids, database_codes=db, database_labels=db_ids, ks=(5, 20))
        alone = metric.compute(predictions=db, references=db_ids, ks=(5,))
        print(json.dumps([both, alone]))
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    both, alone = json.loads(result.stdout.strip().splitlines()[-1])
    expected = evaluate_codes(db, db_ids, q, q_ids, ks=(5, 20))
    assert both["map@5"] == pytest.approx(expected.map_at_k[5])
    assert both["standard_map@20"] == pytest.approx(expected.standard_map_at_k[20])
    assert alone["map@5"] == pytest.approx(evaluate_codes(db, db_ids, ks=(5,), protocol="all_vs_all").map_at_k[5])


def test_codes_with_zero_bits_are_scored_as_the_release_scores_them():
    """sign_tie_rule="zero" codes (the authors' inference) keep their 0 bits; distance (L − q·d)/2 ranks them."""
    rng = np.random.default_rng(3)
    database = rng.choice([-1, 0, 1], size=(40, 16), p=[0.45, 0.1, 0.45]).astype(np.int8)
    queries = rng.choice([-1, 0, 1], size=(6, 16), p=[0.45, 0.1, 0.45]).astype(np.int8)
    db_labels, q_labels = [[int(x)] for x in rng.integers(0, 3, 40)], [[int(x)] for x in rng.integers(0, 3, 6)]
    report = evaluate_codes(database, db_labels, queries, q_labels, ks=(5, 10))
    expected = []
    for q, labels in zip(queries, q_labels):  # the release: 0.5 · (L − B_q · B_dbᵀ), stable by index
        distance = 0.5 * (16 - database.astype(float) @ q.astype(float))
        order = sorted(range(40), key=lambda i: (distance[i], i))[:10]
        rel = np.array([bool(set(labels) & set(db_labels[i])) for i in order], float)
        precision = np.cumsum(rel) / np.arange(1, 11)
        expected.append((rel[:5] * precision[:5]).sum() / 5)
    assert report.map_at_k[5] == pytest.approx(np.mean(expected))
    assert report.pr_curve is None and report.code_length == 16
    # A converted checkpoint evaluates without changing its config:
    from s5vh_hf import S5VHModel

    from .conftest import make_tiny_config

    model = S5VHModel(make_tiny_config(sign_tie_rule="zero"))
    videos = rng.standard_normal((20, 6, 24)).astype(np.float32)  # an even T gives ties
    result = evaluate_retrieval(model, (videos, [[i % 2] for i in range(20)]), protocol="all_vs_all", ks=(5,))
    assert 0 <= result.map_at_k[5] <= 1
