"""The benchmarks' own tools: results stored by runs that overlap keep each other's entries."""

import json
import multiprocessing

from benchmarks.common import merge_into_json_file


def _store_many(path, writer: str, count: int, start) -> None:
    start.wait()  # both writers begin together
    for index in range(count):
        merge_into_json_file(path, {"runs": {f"{writer}|{index}": {"map": index}}})


def test_two_runs_storing_results_at_once_keep_every_entry(tmp_path):
    path = tmp_path / "results.json"
    merge_into_json_file(path, {"runs": {"earlier": {"map": 1.0}}, "knn": {"set|0": 0.5}})
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [context.Process(target=_store_many, args=(path, name, 150, start)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    stored = json.loads(path.read_text())
    assert stored["knn"] == {"set|0": 0.5}
    assert set(stored["runs"]) == {"earlier"} | {f"{name}|{i}" for name in "ab" for i in range(150)}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
