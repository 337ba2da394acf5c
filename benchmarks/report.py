"""Run the asv suite in the current environment and print a readable summary table.

    python benchmarks/report.py            # asv machine --yes; asv run --python=same; summary
    python benchmarks/report.py --no-run   # only summarise the latest results of HEAD

The results stay in ``.asv/results`` (asv's own format, for ``asv compare`` and history) and
the table is also written to ``.asv/summary.md``. Exits non-zero when a benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".asv" / "results"


def _git_head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def _run_asv(commit: str, bench: str | None) -> int:
    asv = [sys.executable, "-m", "asv"]
    subprocess.run([*asv, "machine", "--yes"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    cmd = [*asv, "run", "--python=same", "--set-commit-hash", commit, "--show-stderr"]
    if bench:
        cmd += ["--bench", bench]
    return subprocess.run(cmd, cwd=ROOT).returncode


def _latest_results(commit: str) -> Path:
    files = sorted(RESULTS.glob(f"*/{commit[:8]}-*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise SystemExit(f"no asv results for commit {commit[:8]} under {RESULTS}")
    return files[-1]


def _human(value: float | None, unit: str) -> str:
    if value is None:
        return "FAILED"
    if unit == "seconds":
        for scale, name in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(value) >= scale or name == "us":
                return f"{value / scale:.3g} {name}"
    if unit == "bytes":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")):
            if abs(value) >= scale or name == "B":
                return f"{value / scale:.3g} {name}"
    if unit == "fraction":
        return f"{100 * value:.2f} %"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g} {unit}".rstrip()
    return f"{int(value):,} {unit}".rstrip()


def summarise(results_file: Path, context: str = "") -> tuple[str, int]:
    """The summary table (markdown) of one asv results file, and the number of failures;
    ``context`` (e.g. the profile and data used) is added to the header."""
    data = json.loads(results_file.read_text())
    meta = json.loads((RESULTS / "benchmarks.json").read_text())
    columns = data["result_columns"]
    rows, failures = [], 0
    for name in sorted(data["results"]):
        record = dict(zip(columns, data["results"][name], strict=False))
        unit = meta.get(name, {}).get("unit", "")
        values = record["result"] if record["result"] is not None else [None]
        params = record.get("params") or []
        combos = [[]]
        for choices in params:
            combos = [c + [p.strip("'")] for c in combos for p in choices]
        for combo, value in zip(combos, values, strict=False):
            failures += value is None
            rows.append((name, ", ".join(combo), _human(value, unit)))
    env = data.get("params", {})
    header = (
        f"lightvision benchmarks - commit {data['commit_hash'][:8]}, machine "
        f"{env.get('machine')} ({env.get('cpu')}, {env.get('num_cpu')} cpus), Python "
        f"{platform.python_version()}, torch {env.get('torch', '?')}\n"
        + (f"{context}\n" if context else "")
        + "Lower is better for every row (error rates, times, sizes, counts).\n"
    )
    width = [max(len(r[i]) for r in rows + [("benchmark", "params", "value")]) for i in range(3)]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in width) + " |"
    table = [line.format("benchmark", "params", "value"),
             "|" + "|".join("-" * (w + 2) for w in width) + "|"]
    table += [line.format(*row) for row in rows]
    return header + "\n" + "\n".join(table) + "\n", failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="only summarise existing results")
    parser.add_argument("--bench", help="regular expression selecting benchmarks (asv --bench)")
    args = parser.parse_args(argv)
    from common import CONFIG, PROFILE  # benchmarks/common.py, next to this script

    from lightvision.datasets import fashion_mnist_dir

    commit = _git_head()
    status = 0 if args.no_run else _run_asv(commit, args.bench)
    context = (f"profile {PROFILE} (LIGHTVISION_BENCH_PROFILE); Fashion-MNIST read from "
               f"{fashion_mnist_dir(source=CONFIG['fashion_source'])}")
    text, failures = summarise(_latest_results(commit), context)
    print("\n" + text)
    (ROOT / ".asv" / "summary.md").write_text(text)
    if failures:
        print(f"{failures} benchmark(s) failed; see the asv output above.")
    return status or int(failures > 0)


if __name__ == "__main__":
    sys.exit(main())
