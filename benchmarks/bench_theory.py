"""Closed-form theory curves against simulated ones: what a formula saves, and how close the two are.

    python benchmarks/bench_theory.py [--threads N]

Two curves that the book computes both ways:

* the test error of the best linear map from noisy inputs against the noise
  level ``sigma`` (closed form: ``stlearn.theory.wiener_map`` and
  ``linear_test_error``; simulated: a linear student per ``sigma``, all in one
  ensemble, trained by gradient descent on noisy samples, its test error
  estimated on fresh test samples);
* the end point of training to zero loss against the seed (closed form: the
  min-norm interpolator of the noisy training inputs; simulated: a depth-2
  deep linear ensemble trained from a small init, as in the zero-loss chapter).

For each it prints the seconds of both, their ratio, and the largest relative
gap between the curves (finite samples and finite training explain it).
"""

from __future__ import annotations

import argparse
import time

import torch

import stlearn as st
from stlearn import theory

D, RANK, D_OUT = 50, 10, 5
RNG = st.Stream(0)  # every draw of the benchmark comes from a role of this stream


def _task(sigma: float) -> st.Task:
    inputs = st.gaussian_inputs(D, rank=RANK, rng=RNG.child("task"))
    return st.Task(inputs, st.linear_target(inputs, D_OUT, rng=RNG.child("target")), sigma=sigma)


def wiener_curve(sigmas):
    """(closed form, simulated) test errors of the best linear map, one per sigma."""
    task = _task(0.0)
    cov, w_star = task.inputs.covariance(), task.target.weight
    start = time.perf_counter()
    closed = torch.stack([theory.linear_test_error(theory.wiener_map(w_star, cov, s), w_star, cov, s)
                          for s in sigmas])
    t_closed = time.perf_counter() - start

    start = time.perf_counter()
    train = st.Samples.stack([st.draw(task.with_noise(s), 4000, RNG.child("student_data", k), dtype=torch.float64)
                              for k, s in enumerate(sigmas)])
    test = st.Samples.stack([st.draw(task.with_noise(s), 4000, RNG.child("test", k), label_noise=False,
                                     dtype=torch.float64) for k, s in enumerate(sigmas)])
    model = st.DeepLinear([D, D_OUT], members=len(sigmas), init_scale=0.0, dtype=torch.float64)
    # the noisy inputs' covariance has eigenvalues up to 1 + sigma^2: one stable rate per member
    st.train(model, train, config=st.TrainConfig(steps=400, lr=0.5, momentum=0.9, log_points=2, progress=False),
             lr_scale=[1 / (1 + s**2) for s in sigmas])
    simulated = st.evaluate(model, test)["noisy"]
    t_sim = time.perf_counter() - start
    return closed, simulated, t_closed, t_sim


def zero_loss_curve(seeds, n_train=30, sigma=0.5):
    """(closed form, simulated) test errors at the end of training to zero loss, one per seed."""
    task = _task(sigma)
    cov, w_star = task.inputs.covariance(), task.target.weight
    train = st.draw_members(task, n_train, [RNG.child("student_data", k) for k in seeds], dtype=torch.float64)
    start = time.perf_counter()
    closed = theory.linear_test_error(theory.min_norm_interpolator(train.noisy, train.y),
                                      w_star, cov, sigma)
    t_closed = time.perf_counter() - start

    start = time.perf_counter()
    model = st.DeepLinear([D, 50, D_OUT], members=len(seeds), init_scale=0.01,
                          rng=[RNG.child("student_init", k) for k in seeds],
                          dtype=torch.float64)
    st.train(model, train, config=st.TrainConfig(steps=3000, lr=0.05, momentum=0.9, log_points=2,
                                                        progress=False))
    simulated = theory.linear_test_error(model.end_to_end(), w_star, cov, sigma)
    t_sim = time.perf_counter() - start
    return closed, simulated, t_closed, t_sim


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: robust when the cores are shared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    st.train(st.DeepLinear([D, D_OUT]), st.draw(_task(0.1), 4, RNG.child("reference")),
             config=st.TrainConfig(steps=2, progress=False))  # warm-up: imports and first allocations
    print(f"torch {torch.__version__}, {args.threads} thread(s)\n")
    print(f"{'curve':44s} {'points':>6} {'closed s':>9} {'simulated s':>11} {'sim/closed':>10} {'max rel gap':>11}")
    curves = {
        "best linear map vs sigma (d=50, n=4000)": lambda: wiener_curve([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]),
        "zero-loss end point vs seed (d=50, n=30)": lambda: zero_loss_curve(list(range(10))),
    }
    for name, run in curves.items():
        closed, simulated, t_closed, t_sim = run()
        gap = ((simulated - closed).abs() / closed).max().item()
        print(f"{name:44s} {len(closed):>6} {t_closed:>9.4f} {t_sim:>11.3f} {t_sim / t_closed:>9.0f}x {gap:>11.2e}")


if __name__ == "__main__":
    main()
