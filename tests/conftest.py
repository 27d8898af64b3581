"""Test set-up: chapter kernels started by nbval inherit this environment."""

import os

from stlearn.chapters import kernel_env

for key, value in kernel_env().items():
    os.environ.setdefault(key, value)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # one core per worker: oversubscribed threads make small tensor ops crawl
    n = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    import torch

    torch.set_num_threads(n)


def pytest_collectstart(collector):
    """Images are not compared by nbval; glued images carry papermill's record prefix, skip those too."""
    if getattr(collector, "fspath", None) and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("application/papermill.record/image/png",)
