"""The cached chapter execution behind the book build, and the freshness of regression references."""

import pytest

from stlearn import build
from stlearn.tooling import chapters as ch
from stlearn.tooling.regression import staleness
from tinybook import make_tiny_book


def test_cache_reruns_only_what_changed(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    first, cached = build.executed_chapter("tiny", "ci", root, progress=False)
    assert not cached
    again, cached = build.executed_chapter("tiny", "ci", root, progress=False)
    assert cached and again == first
    # the paper set is a different key
    paper, cached = build.executed_chapter("tiny", "paper", root, progress=False)
    assert not cached and paper != first
    # a change in the library invalidates the cache
    monkeypatch.setattr(ch, "library_hash", lambda: "changed")
    changed, cached = build.executed_chapter("tiny", "ci", root, progress=False)
    assert not cached and changed != first and not first.exists()


def test_execution_key_depends_on_source_and_values(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    k1 = ch.execution_key("tiny", {"n": 2}, root)
    assert k1 != ch.execution_key("tiny", {"n": 3}, root)
    path = root / "book" / "tiny.md"
    path.write_text(path.read_text().replace("# Tiny", "# Tiny, edited"))
    assert k1 != ch.execution_key("tiny", {"n": 2}, root)


@pytest.mark.parametrize("name", list(ch.chapters()))
def test_reference_is_fresh(name):
    """Each chapter's regression reference was made from its current source and ci parameters."""
    problem = staleness(name)
    assert problem is None, problem


def test_every_chapter_has_a_ci_set_and_valid_parameters():
    for name in ch.chapters():
        assert "ci" in ch.parameter_sets(name), f"{name} has no ci set in book/parameters/{name}.yaml"
        ch.resolve_parameters(name, None, "ci")
        ch.resolve_parameters(name, None, "paper")
