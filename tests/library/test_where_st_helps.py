"""The views-and-structure chapter's pieces: its cells, its two study scopes and its checks before training."""

from __future__ import annotations

import pytest

from stlearn.experiments import where_st_helps as wh
from stlearn.validation import ParameterError

GRIDS = ([0.0, 1.0], [0.0, 0.01], [0.0, 1.0], [0.5, 1.0])


def test_cells_vary_the_named_axes_over_the_defaults():
    cells = wh.cells(views=[1, 4], n_train=[50, 200])
    assert [(c.views, c.n_train) for c in cells] == [(1, 50), (1, 200), (4, 50), (4, 200)]
    assert {c.width for c in cells} == {wh.Cell().width}


def test_the_map_scope_keeps_only_the_maps_methods_and_the_full_scope_all_three_families():
    full = wh.study(wh.FULL, *GRIDS, 0.5, range(3))
    small = wh.study(wh.MAP, *GRIDS, 0.5, range(3))
    assert {m.name for m in small.methods} == set(wh.MAP_METHODS)
    assert "ST, own-samples teacher" not in {m.name for m in full.methods}
    assert {"output distillation", "ST from the teacher's weights", "ST + noise augmentation"} <= {
        m.name for m in full.methods}
    assert len({c.family for c in full.comparisons}) == 3 and len({c.family for c in small.comparisons}) == 2
    weaker = wh.study(wh.MAP, *GRIDS, 0.5, range(3), weaker=["untrained"])
    assert {"ST, untrained", "teacher as is, untrained"} <= {m.name for m in weaker.methods}
    assert weaker.method("ST, untrained").configs[1]["teacher"] == "untrained"


@pytest.mark.parametrize("cell, word", [(wh.Cell(views=0), "views"), (wh.Cell(width=7), "width"),
                                        (wh.Cell(sigma=0.0), "sigma"), (wh.Cell(units=12), "units"),
                                        (wh.Cell(units=0), "units")])
def test_check_cells_names_what_is_out_of_range(cell, word):
    with pytest.raises(ParameterError, match=word):
        wh.check_cells([cell], [(32, 3)])
    wh.check_cells([wh.Cell(units=12)], [(32, 3), (32, 12)])
    with pytest.raises(ParameterError, match="scope"):
        wh.study("everything", *GRIDS, 0.5, range(3))
