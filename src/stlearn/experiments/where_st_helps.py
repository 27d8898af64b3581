"""Where student-teacher learning should help: the experiment of ``book/where_st_helps.md``.

The early-stopping chapter's task gives the teacher little to carry (inputs in R^10, a target on all ten
directions, one noisy copy per clean input). This chapter builds the regime the question is about and maps
it. The target is a two-layer ReLU function of a few units (``units``) in a high input dimension ``d``, so its
structure lives on a low-dimensional subspace that a clean teacher can find and a noisy student struggles to.

A **cell** (:class:`Cell`) is one condition: ``views`` fixed noisy copies of each of ``n_train`` clean training
inputs (as in burst capture: nothing can draw more, :meth:`stlearn.data.Task.sample`), the hidden ``width`` of
students and teachers, the noise level ``sigma`` and the ``units`` of the target (its task, :func:`make_teachers`).
Every cell is one study (:mod:`stlearn.study`) with the early-stopping chapter's methods and training
(:mod:`~.nonlinear_early_stopping`), its large teacher being the main teacher (the most clean samples): ``"full"``
scope, the three families of comparison; ``"map"`` scope, the methods the maps need (:data:`MAP_METHODS`). A cell
may also run ST with each weaker teacher (``ST, <level>``) and apply that teacher as it is
(``teacher as is, <level>``), in the same ensembles (:func:`study`).

Streams. Run ``k``'s training set is ``rng.child("student_data", k, n_train)``: cells of one sample size share
their clean inputs and labels, and the first views of a cell with more views are those of one with fewer
(view ``j`` from the data stream's ``child("noise", j)``), so the views axis is paired too. Validation and
test sets (``rng.child("validation", k)``, ``rng.child("test", k)``) are shared by every cell of a noise level and
target.
Run ``k``'s teachers are those of :func:`stlearn.experiments.nonlinear_teacher_knowledge.make_teachers`, one
per knowledge level, width and target, each trained on clean data of its own. Students take ``config.steps`` steps
on minibatches of at most ``config.batch_size`` samples, so every cell costs the same per step whatever its
number of samples ``views * n_train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from tqdm import tqdm

from .. import protocol, verdicts
from .. import study as studies
from ..data import Task
from ..models import select_members
from ..protocol import strongest
from ..streams import Stream
from ..train import TrainConfig
from ..validation import ParameterError
from . import nonlinear_early_stopping as es
from . import nonlinear_teacher_knowledge as tk
from .nonlinear import RATE_FRACTION, Students

FULL, MAP = "full", "map"
# the map's methods: ST, its two same-information rivals that need no more than the pairs, its complement, and
# the teacher alone (as it is, fine-tuned)
MAP_METHODS = ("base", "weight decay", "fine-tuned teacher", "teacher as is", "ST", "ST + weight decay")
STUDENTS = ("base", "weight decay", "ST", "ST + weight decay")  # trained from the student's own initialization
TEACHER_ALONE = ("teacher as is", "fine-tuned teacher")
# the comparisons a map shows: ST over the base student and, as a complement, over tuned weight decay; the teacher
# alone (the stronger of its two uses on validation) over the strongest student
MAP_GAINS = (("ST", "base"), ("ST + weight decay", "weight decay"), ("teacher alone", "best student"))


@dataclass(frozen=True)
class Cell:
    """One condition of the chapter (module docstring)."""

    views: int = 1  # fixed noisy copies of each clean training input
    n_train: int = 100  # clean training inputs of each run
    width: int = 32  # hidden width of students and teachers
    sigma: float = 0.5  # input noise level
    units: int = 3  # hidden units of the ReLU target (more: a target of more nonlinear structure)


def cells(**axes) -> list[Cell]:
    """The cells of a grid: ``cells(views=[1, 4], n_train=[50, 200])`` varies those axes over the defaults."""
    out = [Cell()]
    for name, values in axes.items():
        out = [Cell(**{**asdict(c), name: v}) for c in out for v in values]
    return out


def study(scope: str, lams, decays, blends, aug_levels, sigma: float, seeds, weaker=()) -> studies.Study:
    """The early-stopping chapter's study (:func:`~.nonlinear_early_stopping.study`) without its own-samples
    teacher; in the ``"map"`` scope only :data:`MAP_METHODS`; for each knowledge level in ``weaker``, ST with that
    teacher (``ST, <level>``, over ``lams``) and that teacher as it is (``teacher as is, <level>``). Checks the
    grids before any computation."""
    if scope not in (FULL, MAP):
        raise ParameterError(f"scope must be {FULL!r} or {MAP!r}; got {scope!r}")
    plan = es.study(lams, decays, blends, aug_levels, sigma, seeds)
    keep = [m for m in plan.methods if m.name != "ST, own-samples teacher" and (scope == FULL or m.name in MAP_METHODS)]
    for level in weaker:
        keep += [studies.grid(f"ST, {level}", "lam", studies.check_lam_grid(lams), lambda v: f"lam={v:g}",
                              teacher=level),
                 studies.Method(f"teacher as is, {level}", ({"config": "-", "teacher": level},), measured=True)]
    return studies.Study(tuple(keep), plan.seeds, plan.run_type)


def check_cells(cells_: Sequence[Cell], shapes) -> None:
    """Every cell's axes in range and its ``(width, units)`` among the teachers' ``shapes`` (before any training)."""
    shapes = [tuple(s) for s in shapes]
    for c in cells_:
        if c.views < 1 or c.n_train < 1 or c.width < 1 or c.units < 1 or not c.sigma > 0:
            raise ParameterError(f"a cell needs views, n_train, width, units >= 1 and sigma > 0; got {c}")
        if (c.width, c.units) not in shapes:
            raise ParameterError(f"a cell's (width, units) must be one of the teachers' {shapes}; "
                                 f"got {(c.width, c.units)}")


def make_teachers(tasks: dict[int, Task], shapes, teacher_sizes, n_wrong: int, rng: Stream, seeds, steps: int,
                  device=None) -> dict[tuple[int, int], tk.Teachers]:
    """Run ``k``'s teacher of every knowledge level, per ``(width, units)`` in ``shapes``, on the task of that many
    units ``tasks[units]`` (:func:`~.nonlinear_teacher_knowledge.make_teachers`)."""
    return {(w, u): tk.make_teachers(tasks[u], u, w, teacher_sizes, n_wrong, rng, seeds, steps, device)
            for w, u in dict.fromkeys(tuple(s) for s in shapes)}


def run_cell(cell: Cell, plan: studies.Study, tasks: dict[int, Task], teachers: dict[tuple[int, int], tk.Teachers],
             n_val: int, n_test: int, config: TrainConfig, rng: Stream, device=None,
             rate_fraction: float = RATE_FRACTION) -> studies.StudyResult:
    """One cell's study: the runs' sets (:class:`~.nonlinear.Students`) with the cell's views, size, noise and
    task; the early-stopping chapter's large teacher is the main teacher (the most knowledgeable level), and every
    level's teacher is there by its name for the runs that name it."""
    t, task = teachers[cell.width, cell.units], tasks[cell.units]
    nets = {level: select_members(t.model, [t.index(j, k) for k in plan.seeds]) for j, level in enumerate(t.levels)}
    students = Students(task.with_noise(cell.sigma), cell.n_train, n_val, n_test, config, rng, device, rate_fraction,
                        index=(cell.n_train,), views=cell.views)
    return es.run(es.Setting(students, {"large": nets[t.levels[-1]], **nets}, plan.seeds), plan)


def sweep(cells_: Sequence[Cell], plan_of, **common) -> dict[Cell, studies.StudyResult]:
    """:func:`run_cell` for every distinct cell, ``plan_of(cell)`` its study; ``common``: the rest of its arguments."""
    distinct = list(dict.fromkeys(cells_))
    return {c: run_cell(c, plan_of(c), **common) for c in tqdm(distinct, desc="cells", leave=False)}


def gains(results: dict[Cell, studies.StudyResult], main: str) -> pd.DataFrame:
    """Per cell, teacher and map comparison (:data:`MAP_GAINS`; with a weaker teacher, ST with it over the base
    student and it as it is over the best student): the cell's axes, the teacher's ``level``, the paired gain of the
    first over the second with its 95% interval, ``resolved`` (+1 above 0, -1 below, 0 neither) and the methods."""
    rows = []
    for cell, result in results.items():
        names = [m.name for m in result.study.methods]  # the study's order: the rows' order never varies
        pairs = [(main, a, b) for a, b in MAP_GAINS]
        pairs += [(n.removeprefix("ST, "), n, "base") for n in names if n.startswith("ST, ")]
        pairs += [(n.removeprefix("teacher as is, "), n, "best student") for n in names
                  if n.startswith("teacher as is, ")]
        for level, first, second in pairs:
            if first == "teacher alone":
                c = _versus_students(result, strongest(result.selected, TEACHER_ALONE))
            elif second == "best student":
                c = _versus_students(result, first)
            else:
                c = {**result.compare(first, second), "method": first, "reference": second}
            resolved = verdicts.by_sign(c, 1, -1, 0)
            label = "teacher alone over best student" if second == "best student" else (
                "ST over base" if first.startswith("ST, ") else f"{first} over {second}")
            rows.append({**asdict(cell), "level": level, "comparison": label, "gain": c["gain"], "low": c["low"],
                         "high": c["high"], "resolved": resolved, "method": c["method"], "reference": c["reference"]})
    return pd.DataFrame(rows)


def _versus_students(result: studies.StudyResult, method: str) -> dict:
    """``method`` against the strongest student on validation (of :data:`STUDENTS`)."""
    return studies.comparisons(result.selected, [studies.Comparison("boundary", method, STUDENTS)]).iloc[0].to_dict()


def errors(results: dict[Cell, studies.StudyResult]) -> pd.DataFrame:
    """Per cell and method: the mean test error of its validation-selected runs."""
    rows = [{**asdict(cell), "method": m, "test_error": g.test_error.mean()}
            for cell, r in results.items() for m, g in r.selected.groupby("method", sort=False)]
    return pd.DataFrame(rows)


def trend(results: dict[Cell, studies.StudyResult], low: Cell, high: Cell, first: str = "ST",
          second: str = "base") -> dict[str, float]:
    """How much larger the gain of ``first`` over ``second`` is in cell ``high`` than in cell ``low``, paired by run
    (the cells share each run's clean inputs): a 95% interval over runs."""
    gain = {c: protocol.paired(results[c].selected, first, second) for c in (low, high)}
    return protocol.interval(gain[high] - gain[low])


def gain_grid(g: pd.DataFrame, comparison: str, rows: str = "views", columns: str = "n_train") -> pd.DataFrame:
    """The gains of one comparison as a table of ``rows`` by ``columns`` (one value per cell)."""
    return g[g.comparison == comparison].pivot_table(index=rows, columns=columns, values="gain")


def trend_table(trends: dict[int, dict], most: int, fewest: int) -> pd.DataFrame:
    """Per sample size: how much more ST gains over the base student with ``most`` views than with ``fewest``."""
    return pd.DataFrame({"clean inputs n": list(trends),
                         f"ST's extra gain with K = {most} rather than {fewest} [95% interval]":
                             [verdicts.interval_text(c) for c in trends.values()],
                         "verdict": [verdicts.by_sign(c, "larger with more views", "smaller with more views",
                                                      "no resolvable difference") for c in trends.values()]})


MIN_RUNS = 10  # the checks are asserted at 10 runs or more (the full settings)


@dataclass(frozen=True)
class Check:
    """One claim of the chapter as an interval bound: the lower bound above 0 (``above``), or the upper bound below."""

    claim: str
    bound: float
    above: bool

    @property
    def holds(self) -> bool:
        return self.bound > 0 if self.above else self.bound < 0


def checks(results: dict[Cell, studies.StudyResult], gains: pd.DataFrame, families: Sequence[Cell], main: str,
           weaker: str, runs: int) -> pd.DataFrame:
    """The chapter's claims as interval bounds (those that held, with margins, at every root seed tried). ``families``:
    the cells that ran every method, fewest views first; ``weaker``: the second most knowledgeable teacher. A row's
    ``holds`` is asserted at ``MIN_RUNS`` runs or more; below, the rows are shown but not asserted."""
    fewest, most = families[0], families[-1]
    at_main = (gains.width == most.width) & (gains.sigma == most.sigma) & (gains.units == most.units)
    map_rows = gains[at_main & (gains.level == main)]
    st = map_rows[map_rows.comparison == "ST over base"]
    alone = map_rows[map_rows.comparison.str.startswith("teacher alone") & (map_rows.n_train <= most.n_train)]
    as_is = gains[gains.comparison.str.startswith("teacher alone") & (gains.views == fewest.views) & at_main]
    wrong = as_is[as_is.level == tk.WRONG]
    weak = as_is[(as_is.level == weaker) & (as_is.n_train == as_is.n_train.max())]
    high = {c: results[c].compare("ST", "fine-tuned teacher")["high"] for c in families}
    rows = [Check(f"the fine-tuned teacher beats ST at n = {most.n_train} with every number of views (ST's gain)",
                  max(high.values()), False),
            Check(f"ST beats the base student at n = {most.n_train} with K = {most.views}",
                  results[most].compare("ST", "base")["low"], True),
            Check(f"ST + weight decay beats weight decay at n = {most.n_train} with K = {most.views}",
                  results[most].compare("ST + weight decay", "weight decay")["low"], True),
            Check(f"ST + noise augmentation beats noise augmentation at n = {most.n_train} with K = {fewest.views} and "
                  f"{most.views}", min(results[c].compare("ST + noise augmentation", "noise augmentation")["low"]
                                        for c in (fewest, most)), True),
            Check("ST is resolvably worse than the base student in no cell of the map", st.high.min(), True),
            Check(f"the main teacher alone beats the best student in every cell of the map with n <= {most.n_train}",
                  alone.low.min(), True),
            Check("the wrong-target teacher as it is loses to the best student at every n", wrong.high.max(), False),
            Check(f"{verdicts.teacher_phrase(weaker)} as it is loses to the best student at the largest n",
                  weak.high.max(), False)]
    table = pd.DataFrame([{"check": c.claim, "interval bound": c.bound, "must be": "> 0" if c.above else "< 0",
                           "holds": c.holds} for c in rows])
    return table.assign(asserted=runs >= MIN_RUNS)
