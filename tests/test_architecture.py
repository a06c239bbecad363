"""The layout is enforced, not described: the import contracts of ``pyproject.toml`` hold (``lint-imports``), there
is no import circle in the package, and searching and scoring codes never loads transformers or a model."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is not installed (the dev extra installs import-linter)")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "0 broken" in result.stdout or "broken" not in result.stdout.split("Contracts:")[-1]


def _cycle(graph, modules: set[str]) -> list[str] | None:
    """A cycle of direct imports among ``modules``, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if state.get(imported) == 1:
                return stack[stack.index(imported) :] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_circle_in_the_package():
    graph = grimp.build_graph("s5vh_hf")
    modules = {m for m in graph.modules if m != "s5vh_hf"}  # the top level only re-exports, lazily
    cycle = _cycle(graph, modules)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_finds_a_circle():
    class Graph:
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}}

        def find_modules_directly_imported_by(self, module):
            return self.edges.get(module, set())

    assert _cycle(Graph(), {"a", "b", "c"}) == ["a", "b", "c", "a"]


def test_searching_and_scoring_codes_loads_no_model_and_no_transformers():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from s5vh_hf import HammingIndex
        from s5vh_hf.retrieval.metrics import map_at_k
        codes = np.random.default_rng(0).integers(0, 256, (50, 4), dtype=np.uint8)
        distances, ids = HammingIndex.from_codes(codes, 32).search(codes[:5], 10)
        relevant = np.random.default_rng(1).random((5, 10)) > 0.5
        print(map_at_k(relevant, 10) >= 0)
        loaded = sorted(m for m in sys.modules if m.startswith(("transformers", "s5vh_hf.model.modeling")))
        print("loaded", loaded)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded []" in result.stdout, result.stdout


PUBLIC_API_0_2_0 = {
    "HammingIndex", "MODEL_SIZES", "PseudoLabelStore", "RELEASE_COMPATIBILITY", "RetrievalEvaluationCallback",
    "S5VHConfig", "S5VHModel", "S5VHModelOutput", "S5VHPreTrainedModel", "S5VHTrainer", "TwoViewCollator",
    "VideoIndex", "binarize", "build_video_index", "clusters_and_centers", "code_health", "compute_semantic_clusters",
    "convert_original_checkpoint", "enable_remote_code", "evaluate_codes", "evaluate_retrieval",
    "extract_video_features", "frame_feature_statistics", "generate_hash_centers", "import_h5_features",
    "load_feature_dataset", "load_frame_encoder", "load_hash_centers", "pack_codes", "push_feature_dataset",
    "push_model_folder", "read_frames", "render_model_card", "s5vh_training_arguments", "save_hash_centers",
    "selective_scan", "selective_scan_fast", "selective_scan_reference", "write_feature_split", "write_model_card",
}  # fmt: skip
"""Every name ``s5vh_hf`` exported before the layout move: the move must not take one away."""


def test_every_public_name_of_before_the_move_still_resolves():
    import s5vh_hf

    assert PUBLIC_API_0_2_0 <= set(s5vh_hf.__all__)
    for name in sorted(PUBLIC_API_0_2_0):
        value = getattr(s5vh_hf, name)
        assert getattr(value, "__name__", name) == name or not callable(value), name
    assert callable(s5vh_hf.selective_scan)  # the function, not the module of the same name
