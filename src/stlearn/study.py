"""One study runner for every experiment chapter: the protocol of :mod:`stlearn.protocol`, declared once.

A :class:`Study` declares the methods (each a grid of configurations), the runs and the comparisons, named
in three families before any result (``CONTRIBUTING.md``, 4b):

1. **same information** (the fixed clean/noisy pairs and the teacher, no noise model): ST against the
   strongest, on validation, of the simple methods that use no more (base, weight decay, distillation,
   the teacher as it is, the fine-tuned teacher). The primary comparison.
2. **ST as a complement**: ST + weight decay against weight decay, ST from the teacher's weights against
   the fine-tuned teacher.
3. **with a noise model**: noise augmentation against the winner of family 1, and ST + noise
   augmentation against noise augmentation.

:func:`run_study` does everything but the training: it checks the equal budgets before any computation,
trains each distinct run once (:meth:`stlearn.protocol.Run.trains_as`: the lambda = 0 run of an ST method
*is* the base run), reads each trained run at its validation stop, selects per method and run on
validation, and computes the comparisons. An experiment module supplies only ``execute(group, runs)``,
which trains (or measures) one group of runs and returns their rows (see :func:`run_study`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from . import protocol
from .stats import format_ci
from .validation import ParameterError
from .verdicts import (  # noqa: F401  (the words: stlearn.verdicts)
    GAIN_HEADER,
    SAME_INFORMATION,
    family_verdict,
    sentence,
)

COMPLEMENT, NOISE_MODEL = "ST as a complement", "with a noise model"
FAMILIES = (SAME_INFORMATION, COMPLEMENT, NOISE_MODEL)
NEEDS = {SAME_INFORMATION: "the pairs and the teacher", NOISE_MODEL: "the noise model"}  # a method's family
# the simple methods of family 1, by the names every chapter uses (a chapter has those it can run)
SIMPLE_SAME_INFORMATION = ("base", "weight decay", "output distillation", "logit distillation", "teacher as is",
                           "fine-tuned teacher", "denoise-then-teacher")


def lam_grid(points: int = 6, low: float = 0.01, high: float = 10.0) -> list[float]:
    """``0`` and ``points`` log-spaced weights from ``low`` to ``high`` (two significant digits), for the
    relative scale of :mod:`stlearn.losses` (``lam = 1``: feature and task terms of one size where training
    starts)."""
    if points < 2 or not 0 < low < high:
        raise ParameterError(f"lam_grid needs points >= 2 and 0 < low < high; got {points}, {low}, {high}")
    return [0.0, *(float(f"{v:.2g}") for v in np.geomspace(low, high, points))]


def check_lam_grid(lams: Sequence[float], name: str = "lams") -> list[float]:
    """``lams`` starts with 0 (the base loss) and then increases: the grid every ST method tunes over."""
    lams = [float(v) for v in lams]
    if len(lams) < 2 or lams[0] != 0.0 or any(b <= a for a, b in zip(lams, lams[1:])):
        raise ParameterError(f"{name} must start with 0 (the base loss) and then increase; got {lams}")
    return lams


@dataclass(frozen=True)
class Method:
    """A method: its name, its configurations (knob dicts, each with its ``config`` label) and what it needs.

    ``family`` is :data:`SAME_INFORMATION` (the fixed pairs and the teacher) or :data:`NOISE_MODEL`;
    ``measured`` methods are applied, not trained (the teacher as it is, denoise-then-teacher). A method
    that ``follows`` another takes, in each run, the values of the knobs ``inherits`` from the configuration
    the other chose on validation in that run: "ST + weight decay" tunes lambda at the decay that weight decay
    chose, so it is the feature term added to tuned weight decay (a two-stage selection, on validation only).
    """

    name: str
    configs: tuple[dict, ...]
    family: str = SAME_INFORMATION
    measured: bool = False
    follows: str = ""  # a method whose validation choice, per run, sets the knobs ``inherits`` of this one
    inherits: tuple[str, ...] = ()

    def __post_init__(self):
        if self.family not in (SAME_INFORMATION, NOISE_MODEL):
            raise ParameterError(f"a method's family must be {SAME_INFORMATION!r} or {NOISE_MODEL!r}; "
                                 f"got {self.family!r}")
        if bool(self.follows) != bool(self.inherits):
            raise ParameterError(f"{self.name}: follows and inherits go together; got {self.follows!r}, "
                                 f"{self.inherits!r}")
        labels = [c.get("config") for c in self.configs]
        if not labels or None in labels or len(set(labels)) != len(labels):
            raise ParameterError(f"{self.name}: every configuration needs its own 'config' label; got {labels}")

    @property
    def tuned(self) -> bool:
        return len(self.configs) > 1


def grid(name: str, knob: str, values: Sequence, label: Callable[[Any], str] | None = None, *,
         family: str = SAME_INFORMATION, follows: str = "", inherits: Sequence[str] = (), **fixed) -> Method:
    """A method tuned over one knob: ``grid("weight decay", "weight_decay", [0, 1e-3])``; ``fixed`` knobs are
    the same in every configuration (see :class:`Method` for ``follows`` and ``inherits``)."""
    label = label or (lambda v: f"{knob}={v:g}")
    return Method(name, tuple({"config": label(v), knob: v, **fixed} for v in values), family, False, follows,
                  tuple(inherits))


def complements(lams: Sequence[float], label: Callable[[Any], str] | None = None, **fixed) -> list[Method]:
    """Family 2 over ``lams``: ``ST + weight decay`` at the decay weight decay chose in the run, and ``ST from the
    teacher's weights`` (``init="teacher"``) at the fine-tuned teacher's decay; ``fixed``: the ST knobs (its
    teacher, its layer). The chapter runs ``weight decay`` and ``fine-tuned teacher`` as their partners."""
    return [grid("ST + weight decay", "lam", lams, label, follows="weight decay", inherits=["weight_decay"], **fixed),
            grid("ST from the teacher's weights", "lam", lams, label, init="teacher", follows="fine-tuned teacher",
                 inherits=["weight_decay"], **fixed)]


@dataclass(frozen=True)
class Comparison:
    """``method`` against ``reference`` in a named family; a tuple reference is the strongest of its methods on
    validation (:func:`stlearn.protocol.strongest`)."""

    family: str
    method: str
    reference: str | tuple[str, ...]


def standard_comparisons(methods: Sequence[str]) -> list[Comparison]:
    """The three families of ``CONTRIBUTING.md`` 4b over the methods a chapter runs (absent ones are skipped)."""
    have = set(methods)
    simple = tuple(m for m in SIMPLE_SAME_INFORMATION if m in have)
    out = [Comparison(SAME_INFORMATION, "ST", simple)] if "ST" in have and simple else []
    out += [Comparison(COMPLEMENT, m, r) for m, r in (("ST + weight decay", "weight decay"),
                                                      ("ST from the teacher's weights", "fine-tuned teacher"))
            if {m, r} <= have]
    if "noise augmentation" in have and "ST" in have:
        out.append(Comparison(NOISE_MODEL, "noise augmentation", ("ST", *simple)))
    if {"ST + noise augmentation", "noise augmentation"} <= have:
        out.append(Comparison(NOISE_MODEL, "ST + noise augmentation", "noise augmentation"))
    return out


@dataclass(frozen=True)
class Study:
    """What a chapter runs: ``methods`` on each run index of ``seeds``, compared by ``comparisons``
    (default: :func:`standard_comparisons`). ``run_type`` is the chapter's :class:`stlearn.protocol.Run`."""

    methods: tuple[Method, ...]
    seeds: tuple[int, ...]
    run_type: type = protocol.Run
    comparisons: tuple[Comparison, ...] = field(default=())

    def __post_init__(self):
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ParameterError(f"method names must differ; got {names}")
        if len(self.seeds) < 2:
            raise ParameterError(f"a study needs at least 2 runs for its intervals; got {len(self.seeds)}")
        object.__setattr__(self, "comparisons", tuple(self.comparisons or standard_comparisons(names)))
        for m in self.methods:
            if m.follows and (m.follows not in names or self.method(m.follows).follows):
                raise ParameterError(f"{m.name} follows {m.follows!r}, which must be a method that follows none")
        for c in self.comparisons:
            unknown = {c.method, *([c.reference] if isinstance(c.reference, str) else c.reference)} - set(names)
            if unknown:
                raise ParameterError(f"comparison {c.method} vs {c.reference}: unknown methods {sorted(unknown)}")

    def budget(self) -> int:
        """The tuned methods' common number of configurations; raises before any computation unless equal."""
        counts = {m.name: len(m.configs) for m in self.methods if m.tuned}
        if len(set(counts.values())) > 1:
            raise ParameterError(f"the tuned methods must have equal tuning budgets; got {counts}")
        return next(iter(counts.values()), 1)

    def runs(self, leading: bool = False) -> list:
        """Every run (with ``leading``: of the methods that follow none; followers' inherited knobs at defaults)."""
        return [r for m in self.methods if not (leading and m.follows) for r in self.runs_of(m)]

    def runs_of(self, method: Method) -> list:
        return [self.run_type(method=method.name, seed=int(k), **c) for c in method.configs for k in self.seeds]

    def method(self, name: str) -> Method:
        return next(m for m in self.methods if m.name == name)


@dataclass
class StudyResult:
    """A study's outcome: the run table (one row per method, configuration and run, read at its validation
    stop), the selection, the trained paths, what each group's ``execute`` returned beside its rows
    (``models``), where each run was trained (``where``: run -> (group, member)), and the comparisons."""

    study: Study
    table: pd.DataFrame
    selected: pd.DataFrame
    history: pd.DataFrame
    models: dict
    where: dict
    budget: int
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)

    def compare(self, method: str, reference: str) -> dict[str, float]:
        return protocol.compare(self.selected, method, reference)

    def family(self, name: str) -> pd.DataFrame:
        return self.comparisons[self.comparisons.family == name]

    def method_table(self, digits: int = 4) -> pd.DataFrame:
        """Per method, best first: its family, the test error of its selected runs (mean [95% interval]), the
        mean validation error the selection was made on, and the configurations chosen (with their counts of runs)."""
        family = {m.name: m.family for m in self.study.methods}
        s = protocol.summary(self.selected, [m.name for m in self.study.methods]).sort_values("test_error")
        return pd.DataFrame({"method": s.method, "needs": s.method.map(family).map(NEEDS),
                             "test error [95% interval]": [format_ci(self.selected[self.selected.method == m]
                                                                     .test_error, digits) for m in s.method],
                             "validation error": s.val_error.round(digits),
                             "configurations chosen (runs)": s.chosen}).reset_index(drop=True)

    def family_table(self, digits: int = 3) -> pd.DataFrame:
        """The three families' comparisons in words (:func:`words_table`)."""
        return words_table(self.comparisons, digits)

    def primary(self) -> dict:
        """The first comparison of family 1 as a dict (``method``, ``reference``, ``gain``, ``low``, ...)."""
        return self.family(SAME_INFORMATION).iloc[0].to_dict()

    def lam_rows(self, methods: Sequence[str] | None = None) -> pd.DataFrame:
        """The run table's rows of ``methods`` (every method by default), in its order, each with its run's ``lam``
        (a float; 0 for a method without the feature term).

        The lambda comes from the runs themselves (:attr:`where`), never parsed back out of a ``config`` label:
        the labels are a chapter's own words."""
        keys = ["method", "config", "seed"]
        lams = pd.DataFrame([(r.method, r.config, r.seed, float(r.lam)) for r in self.where], columns=[*keys, "lam"])
        table = self.table if methods is None else self.table[self.table.method.isin(list(methods))]
        return table.merge(lams, on=keys)

    def selected_lams(self, method: str) -> pd.Series:
        """Per run (``seed``), the lambda of ``method``'s validation-selected configuration, from the runs
        themselves (:meth:`lam_rows`)."""
        keys = ["method", "config", "seed"]
        picked = self.selected[self.selected.method == method][keys]
        return picked.merge(self.lam_rows([method])[[*keys, "lam"]], on=keys).set_index("seed").lam.sort_index()


def lam_tally(lams: pd.Series) -> pd.Series:
    """How often each lambda of ``lams`` (one per run, e.g. :meth:`StudyResult.selected_lams`, or several studies'
    concatenated) was chosen: runs by lambda, most often first and, among equals, the smaller lambda first, so that
    the words (:func:`lam_counts`) and the most-chosen lambda a chapter glues (``.index[0]``) agree at every draw.

    Lambda only: a method that also tunes or inherits other knobs (ST + weight decay's decay) is counted by its
    lambda alone."""
    counts = lams.astype(float).value_counts().sort_index()
    return counts.sort_values(ascending=False, kind="stable").rename_axis("lam").rename("runs")


def lam_counts(lams: pd.Series) -> str:
    """:func:`lam_tally` in words, the one way a chapter prints how often validation chose each lambda:
    "λ = 0 (2 runs), λ = 0.63 (1 run)"."""
    return ", ".join(f"λ = {v:g} ({n} run{'' if n == 1 else 's'})" for v, n in lam_tally(lams).items())


def views_trend(results: dict[int, StudyResult], method: str, reference: str) -> dict[str, float]:
    """How much larger the gain of ``method`` over ``reference`` is with the most views than with the fewest
    (``results``: one study per number of views, sharing each run's clean inputs, validation and test sets), paired
    by run: a 95% interval."""
    gain = {k: protocol.paired(results[k].selected, method, reference) for k in (min(results), max(results))}
    return protocol.interval(gain[max(results)] - gain[min(results)])


def run_study(study: Study, execute: Callable[[Hashable, list], Any],
              group_of: Callable[[Any], Hashable] = lambda run: None) -> StudyResult:
    """Run ``study``: each distinct run once, in the groups of ``group_of``, by ``execute(group, runs)``.

    ``execute`` returns a table with a ``member`` column (the position in ``runs``), or that table and
    anything to keep (``models[group]``, e.g. the trained ensemble). A table with a ``step`` column is a
    training history (read at each member's validation stop, :func:`stlearn.protocol.stop_on_validation`);
    otherwise it holds each member's ``val_error`` and ``test_error`` (a measured method).

    Methods that follow another (:attr:`Method.follows`) run second, each run with the knobs the followed
    method chose on validation in that run; their runs that equal one already trained are not trained again
    (their lambda = 0 configuration *is* the followed method's choice). Their groups are kept as
    ``(group, "follows")`` in ``models`` and ``where``.
    """
    budget = study.budget()
    measured = {m.name for m in study.methods if m.measured}

    def key(r) -> tuple:  # a measured method shares nothing: the teacher as it is is not the base run
        return (r.method, r.config, r.seed) if r.method in measured else r.trains_as()

    stops, paths, models, member = [], [], {}, {}

    def train(runs: list, stage: str | None) -> None:
        groups: dict[Hashable, list] = {}
        for r in _distinct(runs, key):  # one run per key, whatever group its other names would put it in
            if key(r) not in member:  # not trained before (in the first stage)
                groups.setdefault(group_of(r), []).append(r)
        for g, reps in groups.items():
            name = g if stage is None else (g, stage)
            out = execute(g, reps)
            rows, models[name] = out if isinstance(out, tuple) else (out, None)
            keys = [key(r) for r in reps]
            if "step" in rows:
                paths.append(rows.assign(_key=rows.member.map(keys.__getitem__)))
                rows = protocol.stop_on_validation(rows, ["member"])
            stops.append(rows.assign(_key=rows.member.map(keys.__getitem__)))
            member.update({k: (name, e) for e, k in enumerate(keys)})

    runs = study.runs(leading=True)
    train(runs, None)
    later = [m for m in study.methods if m.follows]
    if later:
        chosen = protocol.select(_label(pd.concat(stops, ignore_index=True), _labels(runs, key)))
        pick = {(r.method, r.config, r.seed): r for r in runs}
        choice = {(row.method, row.seed): pick[row.method, row.config, row.seed]
                  for row in chosen.itertuples(index=False)}
        followers = [replace(r, **{k: getattr(choice[m.follows, r.seed], k) for k in m.inherits})
                     for m in later for r in study.runs_of(m)]
        train(followers, "follows")
        runs = runs + followers
    table = _label(pd.concat(stops, ignore_index=True), _labels(runs, key))
    history = _label(pd.concat(paths, ignore_index=True), _labels(runs, key)) if paths else pd.DataFrame()
    selected = protocol.select(table)
    result = StudyResult(study, table, selected, history, models, {r: member[key(r)] for r in runs}, budget)
    result.comparisons = comparisons(selected, study.comparisons)
    return result


def _distinct(runs: list, key) -> list:
    seen: dict = {}
    for r in runs:
        seen.setdefault(key(r), r)
    return list(seen.values())


def _labels(runs: list, key) -> pd.DataFrame:
    return pd.DataFrame({"_key": [key(r) for r in runs], "method": [r.method for r in runs],
                         "config": [r.config for r in runs], "seed": [r.seed for r in runs]})


def _label(rows: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Rows keyed by what a run trains with, repeated once per (method, config, seed) that trains so."""
    drop = [c for c in ("member", "method", "config", "seed") if c in rows]
    out = labels.merge(rows.drop(columns=drop), on="_key", how="left", sort=False).drop(columns="_key")
    first = ["method", "config", "seed"]
    return out[first + [c for c in out.columns if c not in first]]


def comparisons(selected: pd.DataFrame, wanted: Sequence[Comparison]) -> pd.DataFrame:
    """One row per comparison: family, method, reference (the strongest, where a tuple), the paired gain of
    method over reference with its 95% interval, and its words (:func:`sentence`)."""
    rows = []
    for c in wanted:
        reference = c.reference if isinstance(c.reference, str) else protocol.strongest(selected, c.reference)
        if reference == c.method:  # family 3's "winner of family 1" may be ST itself; never a self-comparison
            pool = [m for m in c.reference if m != c.method]
            reference = protocol.strongest(selected, pool)
        gain = protocol.compare(selected, c.method, reference)
        rows.append({"family": c.family, "method": c.method, "reference": reference, **gain,
                     "verdict": sentence(gain, c.method, reference)})
    return pd.DataFrame(rows, columns=["family", "method", "reference", "gain", "low", "high", "runs", "verdict"])


def words_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Comparisons (:func:`comparisons`) for readers: family, what is compared, the paired gain [95% interval],
    the verdict."""
    return pd.DataFrame({"family": table.family, "comparison": table.method + " vs " + table.reference,
                         GAIN_HEADER: [protocol.interval_text(r, digits)
                                                              for r in table.to_dict("records")],
                         "verdict": [v.rsplit(" (", 1)[0] for v in table.verdict]})


def start_ratio(history: pd.DataFrame, selected: pd.DataFrame, method: str = "ST") -> pd.Series:
    """Per run, the feature-to-task ratio at the start of ``method``'s selected configuration
    (``feature_weight * train_feature / train_task`` at step 0; 0 where lambda = 0 was chosen)."""
    chosen = selected[selected.method == method][["method", "config", "seed"]]
    start = history[history.step == 0].merge(chosen, on=["method", "config", "seed"])
    return (start.feature_weight * start.train_feature / start.train_task).set_axis(start.seed).sort_index()
