"""Every chapter with every size parameter of its ci set divided by 1.5 passes, or stops fast naming a fix."""

import pytest
from _ranges import CHAPTERS, check


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_survives_sizes_down(name):
    check(name, up=False)
