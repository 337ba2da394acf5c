"""The benchmark summary table (benchmarks/report.py) on a hand-made asv results file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"


@pytest.fixture
def report(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def test_summary_table_formats_units_params_and_failures(report, tmp_path):
    columns = ["result", "params", "version"]
    (tmp_path / "benchmarks.json").write_text(json.dumps({
        "s.time_a": {"unit": "seconds"},
        "s.track_err": {"unit": "fraction"},
        "s.peakmem_m": {"unit": "bytes"},
        "s.track_macs": {"unit": "MACs"},
    }))
    results = {
        "s.time_a": [[0.0025, None], [["'x'", "'y'"]], "v"],
        "s.track_err": [[0.1225], [["'small_cnn'"]], "v"],
        "s.peakmem_m": [[3 * 2**20], [], "v"],
        "s.track_macs": [None, [], "v"],
    }
    file = tmp_path / "vm" / "abcdef12-env.json"
    file.parent.mkdir()
    file.write_text(json.dumps({"commit_hash": "abcdef1234", "result_columns": columns,
                                "results": results, "params": {"machine": "vm"}}))
    assert report._latest_results("abcdef1234ffff") == file
    text, failures = report.summarise(file)
    rows = {tuple(c.strip() for c in line.strip("|").split("|")) for line in text.splitlines()
            if line.startswith("| s.")}
    assert rows == {
        ("s.time_a", "x", "2.5 ms"), ("s.time_a", "y", "FAILED"),
        ("s.track_err", "small_cnn", "12.25 %"), ("s.peakmem_m", "", "3 MiB"),
        ("s.track_macs", "", "FAILED"),
    }
    assert failures == 2 and "commit abcdef12" in text


def test_missing_results_say_so(report):
    with pytest.raises(SystemExit, match="no asv results for commit 00000000"):
        report._latest_results("0000000000")
