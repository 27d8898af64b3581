"""A two-chapter book in a temporary folder, for fast tests of the runner, cache and CLI."""

from pathlib import Path

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

TINY = HEADER + """
# Tiny

```{code-cell} ipython3
:tags: [parameters]
n = 3  # how many numbers [int >= 1]
sigma = 0.5  # a noise level [float >= 0]
seed = 0  # root of every random stream (each role and run index draws its own) [int >= 0]
```

```{code-cell} ipython3
import stlearn as st
from stlearn.tooling.notebook import headline, setup

device = setup()
rng = st.Stream(seed)
st.validation.check_float("sigma", sigma, low=0.0)
print([round(0.1 * k * sigma, 3) for k in range(n)])
headline(total=n * sigma, seed=seed)
```
"""

FAILING = HEADER + """
# Failing

```{code-cell} ipython3
:tags: [parameters]
boom = True  # whether to fail [bool]
```

```{code-cell} ipython3
if boom:
    raise RuntimeError("deliberate failure")
print("fine")
```
"""


def make_tiny_book(root: Path) -> Path:
    (root / "book" / "parameters").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/tiny\nchapters:\n  - file: book/failing\n")
    (root / "_config.yml").write_text("title: tiny\n")
    (root / "book" / "tiny.md").write_text(TINY)
    (root / "book" / "failing.md").write_text(FAILING)
    (root / "book" / "parameters" / "tiny.yaml").write_text("ci:\n  n: 2\n")
    return root
