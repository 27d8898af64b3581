"""The regression tooling: nbval's sanitizers (tests/sanitize.cfg) and the freshness of references (a tiny book)."""

import re

import nbformat
from conftest import sanitize
from tinybook import make_tiny_book

from stlearn.tooling import chapters as ch
from stlearn.tooling import regression

SHOULD_VARY = ["<stlearn.models.DeepLinear object at 0x7f3a2c1b5e50>",
               "training: 100%|##########| 300/300 [00:01<00:00, 250.12it/s]",
               "fit took 12.5 ms", "one step: 3 µs"]
MUST_STAY = ["largest invariance gap (Lemma)          3e-15", "slope 1.00", "test error 0.123 ± 0.004",
             "12 members, 3000 steps", "best along path 0.4567", "lr = 0.05", "1.2e-03", "depth L = 3",
             "   lam  seed  test\n0  0.0     1  0.25", '{"disjoint_sets": 14, "gain": 0.0123}']


def _shift_digits(text: str) -> str:
    return re.sub(r"\d(?!x)", lambda m: str((int(m.group()) + 1) % 10), text)  # keep the 0x of addresses


def test_sanitizers_hide_what_varies_and_nothing_else():
    for text in SHOULD_VARY:
        assert sanitize(_shift_digits(text)) == sanitize(text), f"sanitize.cfg lets {text!r} vary"
    for text in MUST_STAY:
        assert sanitize(text) == text, f"sanitize.cfg hides a result: {text!r} -> {sanitize(text)!r}"


def test_a_reference_is_stale_when_its_source_or_ci_parameters_change(tmp_path, monkeypatch):
    """A reference records the source hash and ci parameters it was made from (written here without a kernel)."""
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    assert "no reference for tiny" in regression.staleness("tiny", root)
    source = ch.chapter_path("tiny", root)
    reference = nbformat.v4.new_notebook(metadata={"stlearn": {
        "source_sha256": ch.source_hash(source), "parameters": ch.resolve_parameters("tiny", None, "ci", root)}})
    target = regression.reference_path("tiny", root)
    target.parent.mkdir(parents=True)
    nbformat.write(reference, target)
    assert regression.staleness("tiny", root) is None
    (root / "book" / "parameters" / "tiny.yaml").write_text("ci:\n  n: 1\n")
    assert "other ci parameters" in regression.staleness("tiny", root)
    source.write_text(source.read_text().replace("# Tiny", "# Tiny, edited"))
    assert "another version of its source" in regression.staleness("tiny", root)
