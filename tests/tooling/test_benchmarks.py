"""The speed benchmark runs and prints its ratios (a smoke test: timings themselves are never asserted)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_ensemble  # noqa: E402


def test_bench_ensemble_prints_a_row_of_ratios_per_ensemble_size(capsys):
    bench_ensemble.main(["--quick", "--repeats", "1", "--members", "1", "15", "--settings", "linear", "digits_mlp",
                         "denoiser", "--threads", "1"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+\d\.\d\de", line)]
    assert [r[0] for r in rows] == ["1", "15"] * 3
    for r in rows[:4]:  # E, four seconds per step, three ratios, GFLOP/s, peak, of peak, GEMMs, roofline columns
        assert len(r) == 16 and all(float(v) > 0 for v in r[1:5])
        assert all(v.endswith("x") for v in r[5:8]) and r[10].endswith("%")
        assert float(r[12]) > 0 and float(r[13]) > 0 and r[14] in ("mem", "cpu") and r[15].endswith("%")
    for r in rows[4:]:  # the denoiser, an ensemble only: E, seconds, GFLOP/s, peak, of peak, GEMMs, convs,
        # roofline columns, ceiling
        assert len(r) == 12 and float(r[1]) > 0 and r[5].endswith("%") and r[6].endswith("%") and float(r[7]) > 0
        assert r[9] in ("mem", "cpu") and r[10].endswith("%") and r[11].endswith("%")
    assert "Adam, cross-entropy" in out and "squared error" in out
    summary = re.search(r"the book's largest setting: (\w+) at E = (\d+), (\d+\.\d)% of the roofline: target", out)
    assert summary and summary.groups()[:2] == ("linear", "15")  # the only setting run at its chapter's size
    assert re.search(r"copy \d+\.\d GB/s, triad \d+\.\d GB/s", out)


def test_roofline_counts_the_flops_and_bytes_of_a_matrix_product():
    import torch
    from roofline import count

    a, b = torch.ones(64, 32), torch.ones(32, 16)
    flops, moved = count(lambda: a @ b)
    assert flops == 2 * 64 * 32 * 16
    assert moved == 4 * (64 * 32 + 32 * 16 + 64 * 16)  # both inputs read, the output written; views are free


def test_roofline_counts_a_grouped_convolution_backward_as_twice_its_forward():
    import torch
    import torch.nn.functional as F
    from roofline import count

    x = torch.randn(4, 6 * 3, 8, 8, requires_grad=True)
    w = torch.randn(6 * 2, 3, 3, 3, requires_grad=True)  # 6 groups of 3 -> 2 channels
    forward = 2 * 4 * 8 * 8 * (6 * 2) * 3 * 9
    assert count(lambda: F.conv2d(x, w, padding=1, groups=6))[0] == forward
    assert count(lambda: F.conv2d(x, w, padding=1, groups=6).sum().backward())[0] == 3 * forward


def test_the_convolutions_of_a_step_are_those_the_network_dispatches():
    """Two convolutions in the digits CNN: the first needs no input gradient, and each ensemble is one call."""
    setting = next(s for s in bench_ensemble.CONV_SETTINGS if s.key == "digits_cnn")
    convs = bench_ensemble.step_convolutions(setting, members=3)
    assert [c["input_grad"] for c in convs] == [False, True]
    assert [c["args"][-1] for c in convs] == [3, 3]  # groups: one per member
    assert [tuple(c["out"].shape) for c in convs] == [(100, 3 * 16, 8, 8), (100, 3 * 16, 4, 4)]
    assert bench_ensemble.conv_kernel_seconds(setting, members=3, repeats=1) > 0


def test_bench_pool_order_prints_a_ratio_per_cnn(capsys):
    import bench_pool_order

    bench_pool_order.main(["--repeats", "1", "--threads", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().endswith("x")]
    assert [r[0] for r in rows] == ["digits_cnn", "mnist1d_cnn"] and all(float(r[-1][:-1]) > 0 for r in rows)


def test_bench_allocator_times_both_allocators_in_fresh_processes(capsys):
    import bench_allocator

    bench_allocator.main(["--repeats", "1", "--steps", "2", "--threads", "1", "--settings", "digits_cnn"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("digits_cnn")]
    assert len(rows) == 1 and rows[0][1] == "30" and rows[0][6].endswith("x")
    # page faults per step of each; how many the default takes depends on glibc's adaptive threshold (from
    # 150 to 3,000 a step seen), so only tests/library/test_device.py asserts what the setting does
    assert float(rows[0][7]) >= 0 and float(rows[0][8]) >= 0


def test_bench_layout_prints_a_ratio_per_layout_comparison_and_restores_the_denoisers_layout(capsys):
    import bench_layout
    import torch

    from stlearn import denoisers

    bench_layout.main(["--repeats", "1", "--steps", "1", "--threads", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().endswith("x")]
    assert len(rows) == 2 and [r[-6] for r in rows] == ["30", "15"]  # E: each chapter's ensemble
    assert all(float(r[-1][:-1]) > 0 for r in rows)
    assert denoisers.MAPS_FORMAT is torch.channels_last


def test_bench_conv_forms_checks_the_forms_agree_and_prints_each_forms_ratio(capsys):
    import bench_conv_forms

    bench_conv_forms.main(["--repeats", "1", "--threads", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().endswith("x)")]
    assert [r[:2] for r in rows] == [["digits_cnn", "30"], ["mnist1d_cnn", "15"]]
    ratios = [float(t.strip("()x")) for r in rows for t in r if t.startswith("(")]
    assert len(ratios) == 6 and ratios[0] == ratios[3] == 1.0 and all(v > 0 for v in ratios)


def test_bench_conv_forms_times_torch_compile_and_its_compilation_when_asked():
    # in a process of its own without the test command's ATEN_CPU_CAPABILITY=default: inductor's C++ kernels assume
    # the processor's vector instructions, which that setting hides from ATen's headers (they fail to compile)
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_conv_forms.py"
    out = subprocess.run([sys.executable, str(script), "--repeats", "1", "--threads", "1", "--compile"], env=env,
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip().endswith(" s")]
    assert [r[:2] for r in rows] == [["digits_cnn", "30"], ["mnist1d_cnn", "15"]]
    assert all(len([t for t in r if t.startswith("(")]) == 4 and float(r[-2]) > 0 for r in rows)


def test_bench_optimizer_checks_both_adams_agree_and_prints_a_ratio_per_network(capsys):
    import bench_optimizer

    bench_optimizer.main(["--repeats", "2", "--threads", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().endswith("x")]
    assert [r[0] for r in rows] == ["digits_mlp", "digits_cnn", "mnist1d_cnn", "denoiser"]
    assert all(float(r[-1][:-1]) > 0 for r in rows)
