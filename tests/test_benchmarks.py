"""The decoding benchmark runs (in its quick mode, whose figures mean nothing) and the notebook
that plots the benchmarks draws from what it wrote."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_notebooks import run_notebook

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def test_decoding_benchmark_writes_results_the_notebook_plots(tmp_path, monkeypatch):
    env = {**os.environ, "SEMCORE_OUTPUTS": str(tmp_path / "outputs"), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_decoding.py"), "--quick"],
                   env=env, check=True, capture_output=True, text=True, timeout=600)
    bench = tmp_path / "outputs" / "bench"
    result = json.loads((bench / "decoding.json").read_text())
    assert result["quick"] and [r["n"] for r in result["scaling"]] == [1_000, 10_000]
    for row in result["overhead"]:
        assert row["t_c"] > 0 and row["t_f"] > 0 and row["steps"] > 0
        assert row["ratio"] == row["t_c"] / row["t_f"]  # --quick: one pair, its ratio
    monkeypatch.setenv("SEMCORE_OUTPUTS", env["SEMCORE_OUTPUTS"])  # the kernel inherits it
    run_notebook(REPO / "notebooks" / "bench" / "decoding_cost.py", tmp_path)
    for stem in ("decoding_overhead", "decoding_scaling"):
        assert (bench / "figures" / f"{stem}.png").is_file()
