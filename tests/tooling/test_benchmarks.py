"""The speed benchmark runs and prints its ratios (a smoke test: timings themselves are never asserted)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_ensemble  # noqa: E402


def test_bench_ensemble_prints_a_row_of_ratios_per_ensemble_size(capsys):
    bench_ensemble.main(["--quick", "--repeats", "1", "--members", "1", "3", "--settings", "linear", "mnist1d",
                         "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+\d\.\d\de", line)]
    assert [r[0] for r in rows] == ["1", "3", "1", "3"]
    for r in rows:  # E, four seconds per step, three ratios, GFLOP/s, peak, of peak, GEMMs
        assert len(r) == 12 and all(float(v) > 0 for v in r[1:5])
        assert all(v.endswith("x") for v in r[5:8]) and r[10].endswith("%")
    assert "the book's largest" in out and "Adam, cross-entropy" in out
