"""Every chapter of the book: a ci parameter set, valid parameters, and a regression reference made from its
current source."""

import pytest

from stlearn.tooling import chapters as ch
from stlearn.tooling.regression import staleness


@pytest.mark.parametrize("name", list(ch.chapters()))
def test_reference_is_fresh(name):
    """Each chapter's regression reference was made from its current source and ci parameters."""
    problem = staleness(name)
    assert problem is None, problem


def test_every_chapter_has_a_ci_set_and_valid_parameters():
    for name in ch.chapters():
        assert "ci" in ch.parameter_sets(name), f"{name} has no ci set in book/parameters/{name}.yaml"
        for parameter_set in ch.parameter_sets(name):  # ci, paper and any other (denoising's gpu)
            ch.resolve_parameters(name, None, parameter_set)
