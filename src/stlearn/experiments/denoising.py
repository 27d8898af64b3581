"""Chapter "Student-teacher denoising of real photographs".

Streams below the chapter's root ``rng`` (:mod:`stlearn.streams`):

- ``rng.child("split")``: which photographs are for training, validation and test;
  ``rng.child("student_data")``: which grid patches of the training photographs are the training set;
- run ``k``: pixel noise ``rng.child("noise", part, k)`` with ``part`` one of :data:`PARTS` (the same
  standard normal draw serves every noise level, so levels and methods are paired), student initialization
  ``rng.child("student_init", k)`` (shared by every method and level of run ``k``), teacher ``k``'s
  initialization ``rng.child("teacher_init", k)``; a teacher that knows fewer photographs draws them from
  ``rng.child("teacher_data", k)``; the fresh noise of noise augmentation ``rng.child("noise", FRESH, k)``
  (:func:`fresh_streams`: run ``k``'s own, whichever runs share its ensemble);
  minibatch order ``rng.child("batch")``. Round ``r`` of training on (:func:`train_until_met`) draws its
  fresh noise from ``rng.child("noise", FRESH, k, r)`` and its minibatches from the ``("batch", r)`` child of the
  minibatch stream.

Methods. The chapter declares its methods as a :class:`stlearn.study.Study` (:func:`primary_study`,
:func:`sweep_study`) and the study runner does the rest: equal budgets, one training per distinct run,
selection on validation and the three families. This module supplies only how one group of runs trains
(:class:`Execute`): every trained run is a member of one :class:`stlearn.denoisers.Denoiser` ensemble per
(noise level, noise model, initialization, teacher, layer), trained by the library trainer with minibatch Adam
and early stopping on the noisy validation tiles; a member whose validation gain still came largely in its last
third trains on until it meets the stopping criterion or reaches a cap (:func:`train_until_met`). A run's
validation error is minus its mean validation PSNR (dB) on the whole validation crops, its test error minus
its mean test PSNR, so that every gain is in dB of test PSNR.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .. import photos as ph
from .. import protocol, study, verdicts
from ..data import Samples
from ..denoisers import Architecture, Denoiser, blur, select_members
from ..losses import FrozenTeacher
from ..streams import Stream, as_stream
from ..train import TrainConfig, evaluate, train
from ..validation import ParameterError, check_float, check_int

MEASURE_ROWS = 256  # training patches a log point measures on, and the teacher's features are computed at a time
PARTS = {"train": 0, "val": 1, "test": 2, "fresh": 3, "poisson": 4}
METHOD_COLORS = {"base": "#6c6c6c", "weight decay": "#949494", "noise augmentation": "#0173b2", "ST": "#029e73",
                 "ST + noise augmentation": "#56b4e9", "teacher as is": "#cc78bc", "fine-tuned teacher": "#fbafe4",
                 "TV": "#ca9161", "wavelet": "#949494", "NLM": "#de8f05", "BM3D": "#d55e00"}


@dataclass
class PhotoData:
    """Clean training patches (flat rows), validation and test crops ``(n, C, C)``, the teachers' own stopping
    patches (flat rows), and where they come from."""

    split: ph.PhotoSplit
    photos: dict
    train: torch.Tensor
    train_photo: np.ndarray
    val: torch.Tensor
    test: torch.Tensor
    patch: int
    teacher_val: torch.Tensor


def photo_data(n_val_photos: int, n_test_photos: int, patch: int, n_patches: int, crop: int, rng: Stream | int,
               max_side: int = 256) -> PhotoData:
    """The split by photograph, ``n_patches`` training patches, one central crop per validation and test photograph,
    and the teachers' stopping patches: as many patches as the validation crops hold, from cells of the training
    photographs that no student trains on (stream ``rng.child("teacher_data").child("validation")``), so that a
    teacher never reads a validation or test photograph."""
    rng = as_stream(rng)
    photos = ph.load_photos(ph.PHOTO_NAMES, max_side, patch)
    split = ph.split_photos(n_val_photos, n_test_photos, rng.child("split"))
    train_rows, ids = ph.patches(photos, split.train, patch, n_patches, rng.child("student_data"), "train patches")
    val, _ = ph.center_crops(photos, split.val, crop, patch, "validation crops")
    test, _ = ph.center_crops(photos, split.test, crop, patch, "test crops")
    n_stop = len(val) * (crop // patch) ** 2
    free = sum(len(ph.grid_cells(photos[p], patch)) for p in split.train) - n_patches
    if n_stop > free:
        raise ParameterError(f"n_patches leaves {free} cells of the training photographs for the teachers' stopping "
                             f"set, which needs {n_stop}; use n_patches <= {n_patches + free - n_stop}")
    stop_rows, _ = ph.patches(photos, split.train, patch, n_stop, rng.child("teacher_data").child("validation"),
                              "teacher stopping patches", exclude=ids)
    train_photo = np.array([ph.PHOTO_NAMES[i // ph.CELLS_PER_PHOTO] for i in ids])
    return PhotoData(split, photos, train_rows, train_photo, val, test, patch, stop_rows)


def noise(clean: torch.Tensor, sigmas: Sequence[float], seeds: Sequence[int], rng: Stream, part: str,
          view: int = 0) -> torch.Tensor:
    """Noisy copies ``(len(sigmas) * len(seeds), *clean.shape)``, level-major: member ``j * S + s`` has level
    ``sigmas[j]`` and the noise draw ``rng.child("noise", PARTS[part], seeds[s])``; ``view`` ``v > 0``: the
    ``v``-th further noisy view of the same images, ``rng.child("noise", PARTS[part], seeds[s], v)``."""
    extra = (int(view),) if view else ()
    draws = torch.stack([ph.gaussian_noise(clean, 1.0, rng.child("noise", PARTS[part], k, *extra)) - clean.double()
                         for k in seeds])  # (S, ...) standard normal / 255
    return torch.cat([clean.double() + s * draws for s in sigmas])


def grid(sigmas: Sequence[float], seeds: Sequence[int], **columns) -> pd.DataFrame:
    """The member table of a level-major ensemble (one row per (sigma, seed), plus constant columns)."""
    rows = [{"sigma": float(s), "seed": int(k), **columns} for s in sigmas for k in seeds]
    return pd.DataFrame(rows)


def adam(steps: int, lr: float, batch: int, log_points: int, monitor: str = "val_noisy",
         rng: Stream | int = 0) -> TrainConfig:
    """Minibatch Adam on the half squared error with early stopping on ``monitor`` (weights of the best log point),
    ``lam`` on the relative scale (:mod:`stlearn.losses`: ``lam = 1``, feature and task terms of one size where
    training starts).

    No progress bar (as for the other chapters: executed chapters and their references carry no stderr). The
    training set is scored at the first and the last log points only (a log point's forward pass over it cost a
    fifth of the chapter): the chapter reads the feature-to-task ratio where training starts and the training
    error where it ends.
    """
    return TrainConfig(steps=steps, lr=lr, optimizer="adam", batch_size=batch, task="mse", log_points=log_points,
                       early_stopping=True, monitor=monitor, seed=as_stream(rng).child("batch"), progress=False,
                       feature_scale="relative", train_metrics="ends")


def adam_rate(data: PhotoData, sigma: float, channels: int, fraction: float, rng: Stream) -> tuple[float, float]:
    """The Adam learning rate from the problem, and the feature scale ``a`` it rests on.

    Adam moves every weight by about ``lr`` per step, whatever its gradient's size. The output layer adds,
    at each pixel, ``9 * channels`` weights times hidden maps of about the size ``a`` of the input's
    high-pass (the RMS of ``x - blur(x)`` over run 0's noisy training patches at level ``sigma``, 0-255 scale), so
    one step moves the output by up to about ``lr * 9 * channels * a``. The rate makes that ``fraction`` of
    the noise's standard deviation ``sigma / 255``: ``lr = fraction * (sigma / 255) / (9 * channels * a)``.
    """
    fraction = check_float("lr_fraction", fraction, low=0.0, low_open=True)
    side = data.patch
    x = noise(data.train.reshape(-1, side, side), [sigma], [0], rng, "train")[0].to(torch.get_default_dtype())
    high = x[:, None] - blur(x[:, None])
    a = float(high.pow(2).mean().sqrt())
    return fraction * (sigma / 255.0) / (9 * channels * a), a


def fit_teachers(data: PhotoData, rows: Sequence[torch.Tensor] | torch.Tensor, arch: Architecture,
                 seeds: Sequence[int], rng: Stream, config: TrainConfig, train_model: bool = True,
                 device=None, tolerance: float | None = None, cap: int | None = None) -> Denoiser:
    """Teachers ``k`` in ``seeds`` (one ensemble): clean -> clean on their clean patches, early-stopped on their own
    clean stopping patches (``data.teacher_val``: training photographs, cells no student trains on);
    ``train_model=False`` returns them untrained (their initialization only).

    ``rows``: one tensor of clean patches shared by every teacher, or one per teacher. With ``tolerance``, a
    teacher that does not meet the stopping criterion trains on up to ``cap`` steps (:func:`train_until_met`).
    """
    model = arch.build(len(seeds), [rng.child("teacher_init", k) for k in seeds], device)
    if not train_model:
        return model
    if isinstance(rows, torch.Tensor):
        clean = rows.to(model.weights[0])
    else:
        n = min(len(r) for r in rows)  # equal set sizes so the members stack
        clean = torch.stack([r[:n] for r in rows]).to(model.weights[0])
    val = data.teacher_val.to(clean)
    result = train(model, Samples(clean, clean, clean), config=config, eval_sets={"val": Samples(val, val, val)})

    def problem(members: list[int], round_: int) -> tuple[dict, float]:
        c = clean if clean.dim() == 2 else clean.index_select(0, torch.as_tensor(members, device=clean.device))
        return {"data": Samples(c, c, c), "eval_sets": {"val": Samples(val, val, val)}}, 0.0

    history = result.history
    if tolerance is not None:
        history = train_until_met(model, history, problem, config, tolerance, cap, data.patch**2)
    model.history = history  # for the stopping criterion (teacher_table)
    model.pixels = data.patch**2
    return model


def teacher_table(model: Denoiser) -> pd.DataFrame:
    """Per trained teacher: its best clean validation MSE per pixel ``val``, ``val_early`` (the best over the
    first two thirds of training) and ``val_start`` (at step 0), for :func:`stopping_met`."""
    h = getattr(model, "history", None)
    if h is None:
        raise ParameterError("teacher_table needs teachers trained by fit_teachers (train_model=True)")
    cols = stopping_columns(h, model.pixels)
    return cols[["val", "val_early", "val_start", "steps"]].assign(seed=np.arange(model.n_members))


def kept_val(model: Denoiser, data: PhotoData) -> np.ndarray:
    """Each teacher's clean MSE per pixel on its stopping patches with the weights it holds now: after early
    stopping, its best logged one (:func:`teacher_table`'s ``val``), if the trainer kept the best weights."""
    v = data.teacher_val.to(model.weights[0])
    return (evaluate(model, Samples(v, v, v))["noisy"] / data.patch**2).cpu().numpy()


def rotate_code(teachers: Denoiser, rng: Stream) -> Denoiser:
    """The same teachers with their bottleneck code laid out differently: member ``k``'s code ``h2`` is mixed by
    a random orthogonal matrix ``Q_k`` (from ``rng.child("rotation", k)``) and the next layer undoes it.

    ``h2`` is linear, so ``h2' = Q h2`` and ``W3' = W3 Q^T`` compute exactly the same function (the outputs agree
    to rounding): only the decomposition of the code into channels changes.
    """
    out = select_members(teachers, list(range(teachers.n_members)))
    b = out.weights[1].shape[1]
    with torch.no_grad():
        for k in range(out.n_members):
            g = torch.randn(b, b, generator=rng.child("rotation", k).generator(), dtype=torch.float64)
            q, r = torch.linalg.qr(g)
            q = (q * torch.sign(torch.diagonal(r))).to(out.weights[1])  # Haar-distributed
            out.weights[1][k] = torch.einsum("ij,jcuv->icuv", q, out.weights[1][k])
            out.biases[1][k] = q @ out.biases[1][k]
            out.weights[2][k] = torch.einsum("ojuv,ij->oiuv", out.weights[2][k], q)
    return out


def few_photo_rows(data: PhotoData, n_photos: int, k: int, rng: Stream) -> torch.Tensor:
    """Teacher ``k``'s clean patches when it knows only ``n_photos`` of the training photographs
    (drawn from ``rng.child("teacher_data", k)``): a subset of the training patches."""
    names = sorted(set(data.train_photo))
    if not 1 <= n_photos < len(names):
        raise ParameterError(f"teacher_photos must be in [1, {len(names) - 1}]; got {n_photos}")
    pick = torch.randperm(len(names), generator=rng.child("teacher_data", k).generator())[:n_photos].tolist()
    keep = np.isin(data.train_photo, [names[i] for i in pick])
    return data.train[torch.from_numpy(keep)]


def clean_psnr(model: Denoiser, images: torch.Tensor) -> np.ndarray:
    """Mean PSNR of each member's reconstruction of clean images (a teacher's knowledge of the clean problem)."""
    out = model.denoise(images).cpu().double()
    return ph.psnr(out if model.members else out[None], images).mean(axis=-1)


def fresh_streams(rng: Stream, seeds, round_: int | None = None) -> list[Stream]:
    """Each member's stream of fresh noise: run ``k``'s ``rng.child("noise", FRESH, k)``, or in round ``r`` of
    training on ``rng.child("noise", FRESH, k, r)``."""
    extra = () if round_ is None else (round_,)
    return [rng.child("noise", PARTS["fresh"], int(k), *extra) for k in seeds]


def fit_members(data: PhotoData, members: pd.DataFrame, rng: Stream, arch: Architecture,
                config: TrainConfig, *, fresh: bool = False, layers: Sequence[str] = (),
                teachers: Denoiser | None = None, init: Denoiser | None = None, rows: torch.Tensor | None = None,
                test: torch.Tensor | None = None, device=None, tolerance: float | None = None,
                cap: int | None = None, views: int = 1) -> tuple[Denoiser, pd.DataFrame]:
    """One ensemble: a member per row of ``members`` (columns ``sigma``, ``seed``, ``lam``, ``weight_decay``).

    Member ``e`` sees the noise of run ``seed`` at level ``sigma``; ``lam > 0`` needs ``teachers`` (teacher ``k``,
    the ``k``-th member, guides the members of run ``k``) and ``layers``. ``fresh``: noise augmentation (fresh
    noise on the clean patches at every minibatch), else ``views`` fixed noisy copies of each patch (a burst:
    view ``v`` of run ``k`` from :func:`noise`'s ``view`` stream; view 0 is the one-copy design's). ``init``: an
    ensemble whose member ``k`` is the starting point of the members of run ``k`` (the teacher's weights); default, the
    run's own initialization ``rng.child("student_init", k)``. ``rows``: the clean training patches (default: all
    of ``data.train``). ``test``: clean crops whose noisy copies (noise part ``"test"``) are logged along training
    as the eval set ``test`` (read only for the training-length factor, never for a choice). With ``tolerance``,
    a member that does not meet the stopping criterion trains on up to ``cap`` steps (:func:`train_until_met`).

    Returns the model (best validation weights restored) and ``members`` with the columns of
    :func:`stopping_columns` and ``member``. The full history is ``model.history``.
    """
    rows = data.train if rows is None else rows
    views = check_int("views", views, low=1)
    if fresh and views > 1:
        raise ParameterError("noise augmentation draws fresh noise: it takes views = 1")
    table = members[["sigma", "seed", "lam", "weight_decay"]].reset_index(drop=True).astype(
        {"sigma": float, "seed": int, "lam": float, "weight_decay": float})
    if table.empty:
        raise ParameterError("fit_members needs at least one member")
    E = len(table)
    seeds = sorted(set(table.seed))
    if init is None:
        model = arch.build(E, [rng.child("student_init", int(k)) for k in table.seed],
                           torch.device(device) if device is not None else None)
    else:
        model = select_members(init, table.seed.tolist())
    dev = model.weights[0].device
    ref = model.weights[0]  # the network's device and dtype
    sig = torch.tensor(table.sigma.to_numpy(), dtype=ref.dtype, device=dev).reshape(E, 1, 1)

    def noisy_of(images: torch.Tensor, part: str, view: int = 0) -> torch.Tensor:
        """Each member's noisy copy ``(E, ...)``: the draw of its run (:func:`noise`) at its level."""
        draws = noise(images, [1.0], seeds, rng, part, view) - images.double()  # (S, ...) standard normal / 255
        pick = torch.as_tensor([seeds.index(int(k)) for k in table.seed])
        level = torch.tensor(table.sigma.to_numpy(float)).reshape(-1, *[1] * images.dim())
        return images.double() + level * draws[pick]

    noisy = torch.cat([noisy_of(rows, "train", v) for v in range(views)], dim=1).to(ref)  # (E, views * n, d)
    rows = rows.repeat(views, 1)  # each clean patch beside each of its noisy views
    clean = rows.to(ref).expand(E, *rows.shape)
    if fresh:
        samples = ph.FreshNoise(clean, clean, sig, fresh_streams(rng, table.seed), noisy)
    else:
        samples = Samples(clean, noisy, clean)

    def eval_set(images: torch.Tensor, part: str) -> Samples:
        c = ph.tiles(images, data.patch).to(ref)
        n = torch.stack([ph.tiles(x, data.patch) for x in noisy_of(images, part)]).to(ref)
        return Samples(c.expand(E, *c.shape), n, c.expand(E, *c.shape))

    eval_sets = {"val": eval_set(data.val, "val")}
    if test is not None:
        eval_sets["test"] = eval_set(test, "test")
    teacher = None
    if (table.lam > 0).any():
        if teachers is None or not layers:
            raise ParameterError("lams > 0 need teachers and layers to match")
        teacher = FrozenTeacher(select_members(teachers, table.seed.tolist()), views=views, chunk=MEASURE_ROWS)
    decay = tuple(table.weight_decay) if table.weight_decay.any() and E > 1 else float(table.weight_decay[0])
    # the training terms of a log point and the relative scale are measured on the first MEASURE_ROWS patches (all
    # of them at the chapter's defaults), a burst's on its first view: more would cost time and memory, not news
    measure = min(len(rows) // views, MEASURE_ROWS)
    if measure < len(rows):
        config = replace(config, train_log_size=measure)
    cfg = TrainConfig(**{**config.__dict__, "weight_decay": decay})
    result = train(model, samples, teacher=teacher, lam=table.lam.tolist() if E > 1 else table.lam[0],
                   layers=layers if teacher else (), config=cfg, eval_sets=eval_sets)

    def problem(members: list[int], round_: int) -> tuple[dict, tuple]:
        """What ``members`` train on when they train on: their own inputs, eval sets and teachers."""
        idx = torch.as_tensor(members, device=dev)
        pick = lambda t: t.index_select(0, idx)  # noqa: E731
        if fresh:
            part = ph.FreshNoise(pick(clean), pick(clean), pick(sig), fresh_streams(rng, table.seed[members], round_),
                                 pick(noisy))
        else:
            part = Samples(pick(clean), pick(noisy), pick(clean))
        own = None if teacher is None else FrozenTeacher(select_members(teachers, table.seed[members].tolist()),
                                                         views=views, chunk=MEASURE_ROWS)
        return ({"data": part, "eval_sets": {k: v.map(pick) for k, v in eval_sets.items()}, "teacher": own,
                 "lam": [float(table.lam[e]) for e in members], "layers": layers if own else ()},
                tuple(float(table.weight_decay[e]) for e in members))

    h = result.history
    if tolerance is not None:
        h = train_until_met(model, h, problem, config, tolerance, cap, data.patch**2)
    columns = stopping_columns(h, data.patch**2)
    for name in columns:
        table[name] = columns[name].to_numpy()
    if not config.early_stopping:
        table["best_step"] = table.steps  # the weights kept are the last ones
    table["member"] = np.arange(E)
    model.history = h
    return model, table


def fit_students(data: PhotoData, sigmas: Sequence[float], seeds: Sequence[int], rng: Stream, arch: Architecture,
                 config: TrainConfig, *, weight_decays: Sequence[float] = (0.0,),
                 lams: Sequence[float] = (), **kwargs) -> tuple[Denoiser, pd.DataFrame]:
    """:func:`fit_members` on a grid: a member per (configuration, sigma, seed), configuration-major then
    level-major; the configurations are one per weight decay in ``weight_decays`` (``lam = 0``), then one per
    ``lam`` in ``lams`` (weight decay 0). ``kwargs`` go to :func:`fit_members`."""
    configs = [(0.0, float(w)) for w in weight_decays] + [(float(l), 0.0) for l in lams]
    if not configs:
        raise ParameterError("fit_students needs at least one weight decay or lam")
    members = grid(sigmas, seeds)
    table = pd.concat([members.assign(lam=l, weight_decay=w) for l, w in configs], ignore_index=True)
    return fit_members(data, table, rng, arch, config, **kwargs)


def stopping_columns(history: pd.DataFrame, pixels: int) -> pd.DataFrame:
    """Per member (the index), from its logged validation MSE: the best per pixel ``val`` and its ``best_step``,
    ``val_early`` (the best over the first two thirds of the member's own steps), ``val_start`` (step 0),
    ``steps`` (its last step) and ``final_train``, the training MSE per pixel there."""
    rows = {}
    for member, g in history.groupby("member"):
        last = g.step.max()
        rows[member] = {"val": g.val_noisy.min() / pixels, "best_step": int(g.step[g.val_noisy.idxmin()]),
                        "val_early": g.val_noisy[g.step <= 2 * last / 3].min() / pixels,
                        "val_start": g.val_noisy[g.step == 0].iloc[0] / pixels, "steps": int(last),
                        "final_train": 2 * g.train_task[g.step == last].iloc[0] / pixels}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def train_until_met(model: Denoiser, history: pd.DataFrame, problem: Callable[[list[int], int], tuple[dict, object]],
                    config: TrainConfig, tolerance: float, cap: int, pixels: int) -> pd.DataFrame:
    """The stopping criterion (:func:`stopping_met`) met by training on, with a cap; returns the whole history.

    Each member whose last third still brought ``tolerance`` or more of its validation gain trains on from its
    kept (validation-best) weights, ``config.steps // 2`` steps a round, with a fresh optimizer and the minibatch
    stream ``batch`` of the round below ``config.seed``, until it meets the criterion or has trained ``cap`` steps.
    ``problem(members, round)`` gives the keyword arguments of :func:`stlearn.train.train` for those members
    (``data``, ``eval_sets``, and for ST ``teacher``, ``lam``, ``layers``) and their weight decay. A round's steps
    follow on the member's earlier ones in the history. Only the members still short of the criterion train.
    """
    cap = max(int(cap if cap is not None else config.steps), config.steps)
    for round_ in itertools.count(1):
        cols = stopping_columns(history, pixels)
        todo = cols.index[~stopping_met(cols, tolerance) & (cols.steps < cap)].tolist()
        if not todo:
            return history
        done = int(cols.steps[todo].max())  # the same for every member still training
        kwargs, decay = problem(todo, round_)
        sub = select_members(model, todo)
        cfg = replace(config, steps=min(max(config.steps // 2, 1), cap - done), weight_decay=decay,
                      seed=as_stream(config.seed).child("batch", round_))
        h = train(sub, kwargs.pop("data"), config=cfg, **kwargs).history
        with torch.no_grad():
            for whole, part in zip(model.parameters(), sub.parameters()):
                whole[todo] = part
        h = h[h.step > 0].copy()  # step 0 re-reads the kept weights
        h["step"], h["member"] = h.step + done, np.asarray(todo)[h.member.to_numpy()]
        history = pd.concat([history, h], ignore_index=True)


# --------------------------------------------------------------------------- the study: methods, runs, execution
TEACHERS = ("full", "weak", "untrained", "rotated")  # the teachers a run's ST term may match (see the chapter)
LAYERS = ("h1", "h2", "h3")


@dataclass(frozen=True)
class DenoisingRun(protocol.Run):
    """A run of the chapter: ``sigma`` (0-255 scale), ``fresh`` (noise augmentation), ``init`` (``"random"`` or
    ``"teacher"``: the student starts from its teacher's weights) and, for ``lam > 0``, which ``teacher`` and
    ``layer`` the feature term matches (inert at ``lam = 0``: ST at ``lam = 0`` is the base run); ``views``: fixed
    noisy copies of each training patch (a burst)."""

    INERT = {"lam": ("teacher", "layer")}
    sigma: float = 25.0
    views: int = 1
    fresh: bool = False
    init: str = "random"
    teacher: str = "full"
    layer: str = "h2"


def _lam(v: float) -> str:
    return f"λ = {v:g}"


def _wd(v: float) -> str:
    return f"weight decay {v:g}"


FACTOR_VARIANTS = {  # secondary methods of the factor section: (teacher, layer) at the fixed factor_lam
    "ST at the fixed λ": ("full", "h2"),
    "teacher on few photographs": ("weak", "h2"),
    "untrained teacher": ("untrained", "h2"),
    "layer h1": ("full", "h1"),
    "rotated teacher": ("rotated", "h2"),
}


def primary_study(sigma: float, seeds: Sequence[int], lams: Sequence[float], weight_decays: Sequence[float],
                  factor_lam: float | None = None,
                  from_teacher: bool = True) -> study.Study:
    """The study at the level of the primary comparison: the three families and, with ``factor_lam``, the
    factor variants (:data:`FACTOR_VARIANTS`, one configuration each: ST at ``factor_lam`` with another
    teacher or layer).

    Family 1: ST (``lams``) against the strongest of base, weight decay (``weight_decays``), the teacher as it
    is and the fine-tuned teacher (the teacher's weights trained on the noisy pairs). Family 2: ST + weight
    decay (``lams`` at the decay weight decay chose in the run) against weight decay and, with
    ``from_teacher``, ST from the teacher's weights against the fine-tuned teacher. Family 3: noise augmentation
    (tuned over ``weight_decays``) against the winner of family 1, ST + noise augmentation (at augmentation's
    chosen decay) against noise augmentation (:attr:`stlearn.study.Method.follows`).
    """
    lams = study.check_lam_grid(lams)
    if len(weight_decays) != len(lams) or sorted(set(weight_decays)) != list(weight_decays) or weight_decays[0]:
        raise ParameterError(f"weight_decays must start with 0, increase and have one value per lam (equal tuning "
                             f"budgets: {len(lams)}); got {list(weight_decays)}")
    at = {"sigma": float(sigma)}
    one = lambda name, **knobs: study.Method(name, ({"config": "-", **at, **knobs},))  # noqa: E731
    methods = [one("base"), study.grid("weight decay", "weight_decay", weight_decays, label=_wd, **at),
               study.Method("teacher as is", ({"config": "-", **at},), measured=True),
               one("fine-tuned teacher", init="teacher"),
               study.grid("ST", "lam", lams, label=_lam, **at),
               study.grid("ST + weight decay", "lam", lams, label=_lam, follows="weight decay",
                          inherits=["weight_decay"], **at)]
    if from_teacher:
        methods.append(study.grid("ST from the teacher's weights", "lam", lams, label=_lam, init="teacher", **at))
    methods += [study.grid("noise augmentation", "weight_decay", weight_decays, label=_wd, fresh=True,
                           family=study.NOISE_MODEL, **at),
                study.grid("ST + noise augmentation", "lam", lams, label=_lam, fresh=True, family=study.NOISE_MODEL,
                           follows="noise augmentation", inherits=["weight_decay"], **at)]
    if factor_lam is not None:
        check_float("factor_lam", factor_lam, low=0.0, low_open=True)
        methods += [study.Method(name, ({"config": _lam(factor_lam), "lam": factor_lam, "teacher": t, "layer": l,
                                         **at},)) for name, (t, l) in FACTOR_VARIANTS.items()]
    return study.Study(tuple(methods), tuple(int(k) for k in seeds), DenoisingRun)


def sweep_study(sigma: float, seeds: Sequence[int], lams: Sequence[float]) -> study.Study:
    """The study at another noise level, reduced to base, ST (``lams``), noise augmentation (weight decay 0,
    untuned: this can only favour ST) and the teacher as it is."""
    at = {"sigma": float(sigma)}
    methods = (study.Method("base", ({"config": "-", **at},)),
               study.Method("teacher as is", ({"config": "-", **at},), measured=True),
               study.grid("ST", "lam", study.check_lam_grid(lams), label=_lam, **at),
               study.Method("noise augmentation", ({"config": _wd(0.0), "fresh": True, **at},),
                            family=study.NOISE_MODEL))
    return study.Study(methods, tuple(int(k) for k in seeds), DenoisingRun)


def views_study(sigma: float, views: int, seeds: Sequence[int], lams: Sequence[float],
                weight_decays: Sequence[float]) -> study.Study:
    """The burst design at ``views`` fixed noisy copies of each training patch: family 1 only (base, weight decay
    over ``weight_decays``, the teacher as it is, the fine-tuned teacher, ST over ``lams``), no noise model. Noise
    augmentation, which draws fresh noise and so does not depend on the views, is the primary study's."""
    lams = study.check_lam_grid(lams)
    if len(weight_decays) != len(lams) or sorted(set(weight_decays)) != list(weight_decays) or weight_decays[0]:
        raise ParameterError(f"views_decays must start with 0, increase and have one value per views_lam (equal "
                             f"tuning budgets: {len(lams)}); got {list(weight_decays)}")
    at = {"sigma": float(sigma), "views": check_int("views", views, low=1)}
    methods = (study.Method("base", ({"config": "-", **at},)),
               study.grid("weight decay", "weight_decay", weight_decays, label=_wd, **at),
               study.Method("teacher as is", ({"config": "-", "sigma": float(sigma)},), measured=True),
               study.Method("fine-tuned teacher", ({"config": "-", "init": "teacher", **at},)),
               study.grid("ST", "lam", lams, label=_lam, **at))
    return study.Study(methods, tuple(int(k) for k in seeds), DenoisingRun)


def run_views(sigma: float, views: Sequence[int], seeds: Sequence[int], lams: Sequence[float],
              weight_decays: Sequence[float], execute: Execute) -> dict[int, study.StudyResult]:
    """:func:`views_study` at each number of views, run by the study runner."""
    return {int(v): study.run_study(views_study(sigma, v, seeds, lams, weight_decays), execute, group_of)
            for v in views}


def views_table(results: dict[int, study.StudyResult], reference: study.StudyResult) -> pd.DataFrame:
    """Per number of views: ST against the strongest same-information method on validation (family 1), against
    base, and against the reference study's noise augmentation (the noise model), gains in test PSNR (dB)
    paired by run, and the mean test PSNR of base and ST."""
    aug = reference.selected[reference.selected.method == "noise augmentation"]
    rows = []
    for v, r in results.items():
        first = r.primary()
        both = pd.concat([r.selected, aug], ignore_index=True)
        psnr = -r.selected.groupby("method").test_error.mean()
        for against, c in ((f"{first['reference']} (strongest)", first),
                           ("base", protocol.compare(r.selected, "ST", "base")),
                           ("noise augmentation", protocol.compare(both, "ST", "noise augmentation"))):
            rows.append({"views": v, "against": against, "base PSNR (dB)": psnr["base"], "ST PSNR (dB)": psnr["ST"],
                         **{k: c[k] for k in ("gain", "low", "high")}})
    return pd.DataFrame(rows)


def burst_words(results: dict[int, study.StudyResult], reference: study.StudyResult) -> str:
    """The burst design's verdict (:func:`stlearn.verdicts.burst_verdict`)."""
    aug = reference.selected[reference.selected.method == "noise augmentation"]
    return verdicts.burst_verdict(
        {v: r.compare("ST", "base") for v, r in results.items()}, study.views_trend(results, "ST", "base"),
        {v: r.comparisons for v, r in results.items()},
        {v: protocol.compare(pd.concat([r.selected, aug]), "ST", "noise augmentation") for v, r in results.items()})


def group_of(run: DenoisingRun) -> tuple:
    """One ensemble per (level, views, noise model, initialization, teacher, layer) of what the run trains as; the
    teacher as it is (measured) per level."""
    knobs = dict(run.trains_as())
    if run.method == "teacher as is":
        return ("measured", knobs["sigma"])
    return ("trained", knobs["sigma"], knobs["views"], knobs["fresh"], knobs["init"], knobs["teacher"], knobs["layer"])


@dataclass
class Execute:
    """How one group of runs trains (or, for the teacher as it is, is measured): ``execute(group, runs)`` for
    :func:`stlearn.study.run_study`.

    ``teachers`` maps each name of :data:`TEACHERS` in use to its ensemble (member ``k``: teacher of run ``k``).
    Returns one row per run (``member``, ``val_error`` = minus the mean validation PSNR of its whole
    validation crops, ``test_error`` = minus its mean test PSNR, and the columns of :func:`stopping_columns`)
    and ``(model, history)``: the ensemble (member ``e`` is run ``e``, the teacher as it is included) and its
    training history (``None`` when measured).
    """

    data: PhotoData
    rng: Stream
    teachers: dict
    arch: Architecture
    config: TrainConfig
    tolerance: float | None = None
    cap: int | None = None
    device: object = None
    done: dict = field(default_factory=dict)  # each trained run's row, by what it trains as (across studies)

    def __call__(self, group: tuple, runs: list) -> tuple[pd.DataFrame, tuple | None]:
        if group[0] == "trained" and all(r.trains_as() in self.done for r in runs):
            # every run of the group trained in an earlier study (the burst study at one view is the primary
            # study's runs on a coarser grid): its rows, not a second training of the same runs
            rows = pd.DataFrame([self.done[r.trains_as()] for r in runs])
            return rows.assign(member=np.arange(len(runs))), None
        table, kept = self._run(group, runs)
        if group[0] == "trained":
            self.done.update({r.trains_as(): row for r, row in zip(runs, table.to_dict("records"))})
        return table, kept

    def _run(self, group: tuple, runs: list) -> tuple[pd.DataFrame, tuple]:
        members = pd.DataFrame({"sigma": [r.sigma for r in runs], "seed": [r.seed for r in runs],
                                "lam": [r.lam for r in runs], "weight_decay": [r.weight_decay for r in runs]})
        if group[0] == "measured":
            model, table, history = select_members(self.teachers["full"], members.seed.tolist()), members, None
        else:
            _, sigma, views, fresh, init, teacher, layer = group
            model, table = fit_members(self.data, members, self.rng, self.arch, self.config,
                                       fresh=fresh, layers=[layer], teachers=self.teachers[teacher],
                                       init=self.teachers["full"] if init == "teacher" else None,
                                       device=self.device, tolerance=self.tolerance, cap=self.cap, views=views)
            history = model.history
        seeds = members.seed.tolist()
        test = denoised_psnr(model, self.data.test, members.sigma, seeds, self.rng, "test", per_image=True)
        table = table.assign(member=np.arange(len(runs)),
                             val_error=-denoised_psnr(model, self.data.val, members.sigma, seeds, self.rng, "val"),
                             test_error=-test.mean(axis=-1), test_by_photo=[tuple(row) for row in test])
        return table.drop(columns=["sigma", "seed", "lam", "weight_decay"]), (model, history)


def member_noise(images: torch.Tensor, sigmas: Sequence[float], seeds: Sequence[int], rng: Stream,
                 part: str) -> torch.Tensor:
    """Noisy copies ``(E, n, H, W)``: copy ``e`` has level ``sigmas[e]`` and the draw of run ``seeds[e]``
    (:func:`noise`, part ``part``)."""
    runs = sorted(set(int(k) for k in seeds))
    draws = noise(images, [1.0], runs, rng, part) - images.double()
    pick = torch.as_tensor([runs.index(int(k)) for k in seeds])
    return images.double() + torch.tensor(np.asarray(sigmas, float)).reshape(-1, 1, 1, 1) * draws[pick]


def denoised_psnr(model: Denoiser, clean: torch.Tensor, sigmas: Sequence[float], seeds: Sequence[int],
                  rng: Stream, part: str, per_image: bool = False) -> np.ndarray:
    """Per member ``e``: the mean PSNR of its output on the crops ``clean`` with the noise of run ``seeds[e]``
    at level ``sigmas[e]`` (noise part ``part``); ``per_image``: each crop's PSNR, ``(E, n)``."""
    out = model.denoise(member_noise(clean, sigmas, seeds, rng, part)).cpu().double()
    psnr = ph.psnr(out, clean)
    return psnr if per_image else psnr.mean(axis=-1)


def locate(result: study.StudyResult) -> dict:
    """``(method, config, seed) -> (model, member)`` for every run of a study's result."""
    return {(r.method, r.config, r.seed): (result.models[g][0], e) for r, (g, e) in result.where.items()}


def outputs(result: study.StudyResult, rows: pd.DataFrame, noisy: torch.Tensor) -> np.ndarray:
    """The outputs ``(len(rows), n, H, W)`` of the runs named by ``rows`` (``method``, ``config``, ``seed``) on
    ``noisy[seed]`` (``(runs, n, H, W)``, indexed by run)."""
    where = locate(result)
    out = []
    for r in rows.itertuples():
        model, e = where[(r.method, r.config, r.seed)]
        out.append(select_members(model, [e]).denoise(noisy[int(r.seed)][None])[0].cpu().double().numpy())
    return np.stack(out)


def history_of(result: study.StudyResult) -> pd.DataFrame:
    """Every trained run's history labelled with its method, configuration and run (for
    :func:`stlearn.study.start_ratio`)."""
    parts = []
    for r, (g, e) in result.where.items():
        history = result.models[g][1]
        if history is not None:
            parts.append(history[history.member == e].assign(method=r.method, config=r.config, seed=r.seed))
    return pd.concat(parts, ignore_index=True)


def stopping_table(result: study.StudyResult, planned: int) -> pd.DataFrame:
    """Each distinct trained run once (named by the first of the runs that train as it), with the columns of
    :func:`stopping_columns` and the steps it ``planned``."""
    first: dict = {}
    for r, place in result.where.items():
        first.setdefault(place, r)
    keys = pd.DataFrame([(r.method, r.config, r.seed) for r in first.values()], columns=["method", "config", "seed"])
    sigma = float(result.study.methods[0].configs[0]["sigma"])
    return result.table.merge(keys).dropna(subset=["val"]).assign(planned=planned, sigma=sigma)


def test_scores(result: study.StudyResult, methods: Sequence[str], clean: torch.Tensor, noisy: torch.Tensor,
                sigma: float) -> pd.DataFrame:
    """PSNR and SSIM of the selected runs of ``methods`` on the test crops (``noisy``: per run)."""
    rows = result.selected[result.selected.method.isin(list(methods))].reset_index(drop=True)
    psnr, ssim = scores(outputs(result, rows, noisy), clean)
    return rows[["method", "seed"]].assign(sigma=float(sigma), psnr=psnr, ssim=ssim)


def references(data: PhotoData, sigma: float, seeds: Sequence[int], rng: Stream, budget: int,
               with_bm3d: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The noisy input and the classical denoisers at ``sigma``: each one's strength factor chosen on the
    validation crops (noise of run 0) from ``budget`` values, then applied to every run's test crops.

    Returns the test scores (``method``, ``sigma``, ``seed``, ``psnr``, ``ssim``) and the tuned factors
    (``method``, ``sigma``, ``factor``, ``val_psnr``)."""
    test = noise(data.test, [sigma], seeds, rng, "test").numpy()
    val = noise(data.val, [sigma], [0], rng, "val")[0].numpy()
    scores_ = [pd.DataFrame({"method": "noisy input", "seed": list(seeds),
                             **dict(zip(("psnr", "ssim"), scores(test, data.test)))})]
    tuned = []
    for name, method in ph.CLASSICAL.items():
        if name == "BM3D" and not with_bm3d:
            continue
        c, v = ph.tune_classical(method, val, data.val.numpy(), sigma, budget)
        tuned.append({"method": name, "sigma": float(sigma), "factor": c, "val_psnr": v})
        scores_.append(pd.DataFrame({"method": name, "seed": list(seeds),
                                     **dict(zip(("psnr", "ssim"), scores(method(test, sigma, c), data.test)))}))
    return pd.concat(scores_, ignore_index=True).assign(sigma=float(sigma)), pd.DataFrame(tuned)


def photo_gain(selected: pd.DataFrame, method: str, reference: str) -> dict[str, float]:
    """The gain in test PSNR (dB) of ``method`` over ``reference`` with the test photographs counted as random
    draws too: the ``(runs, photographs)`` matrix of paired gains, and its crossed interval
    (:func:`stlearn.stats.crossed_ci`), ``{"gain", "low", "high", "runs"}``."""
    from ..stats import crossed_ci

    by = {m: selected[selected.method == m].set_index("seed").test_by_photo for m in (method, reference)}
    seeds = sorted(set(by[method].index) & set(by[reference].index))
    d = np.array([np.subtract(by[method][k], by[reference][k]) for k in seeds])
    gain, low, high = crossed_ci(d)
    return {"gain": gain, "low": low, "high": high, "runs": len(seeds)}


GAIN_DB = "method vs against, dB (above 0: method better)"  # a paired gain in test PSNR, beside the two names


def family_table(result: study.StudyResult) -> pd.DataFrame:
    """The comparisons of the three families in words: gain of the method over its reference in test PSNR (dB)."""
    c = result.comparisons
    photos = [photo_gain(result.selected, r["method"], r["reference"]) for r in c.to_dict("records")]
    return pd.DataFrame({"family": c.family, "method": c.method, "against": c.reference,
                         GAIN_DB: [protocol.interval_text(r, 2) for r in c.to_dict("records")],
                         "the same over runs and photographs, dB": [protocol.interval_text(r, 2) for r in photos],
                         "verdict": [protocol.by_sign(r, "better", "worse", "no resolvable difference")
                                     for r in c.to_dict("records")]})


def lam_curve(result: study.StudyResult, methods: Sequence[str] = ("ST", "ST + noise augmentation")) -> pd.DataFrame:
    """Test PSNR (dB) of every lambda of ``methods`` per run (``lam``: 0 is the method without the feature term)."""
    t = result.lam_rows(methods)
    return t[["method", "seed", "lam"]].assign(psnr=-t.test_error)


def factor_table(result: study.StudyResult, knowledge: dict[str, float]) -> pd.DataFrame:
    """Per factor variant: its gain over base (test PSNR, dB, paired by run) and its teacher's clean PSNR."""
    rows = []
    for name, (teacher, _) in FACTOR_VARIANTS.items():
        g = result.compare(name, "base")
        rows.append({"variant": name, "gain over base (dB)": protocol.interval_text(g, 2),
                     "teacher's clean PSNR (dB)": f"{knowledge[teacher]:.2f}", "gain": g["gain"], "low": g["low"],
                     "high": g["high"]})
    return pd.DataFrame(rows)


def scores(denoised: np.ndarray, clean: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean PSNR and SSIM over the test crops, per row of ``denoised (m, n, C, C)``."""
    c = clean.double().numpy()
    return ph.psnr(denoised, c).mean(-1), ph.ssim(denoised, c).mean(-1)


def last_third_gain(table: pd.DataFrame) -> pd.Series:
    """Per run, the validation PSNR (dB) gained in the last third of training over the best of the first two
    thirds: ``10 log10(val_early / val)`` (0 when the best point lies in the first two thirds)."""
    return 10.0 * np.log10(table.val_early / table.val)


def last_third_share(table: pd.DataFrame) -> pd.Series:
    """Per run, the share of its validation PSNR gain (from step 0 to its best point) that came in the last third
    of training: :func:`last_third_gain` over ``10 log10(val_start / val)`` (0 for a run that never improved)."""
    total = 10.0 * np.log10(table.val_start / table.val)
    return (last_third_gain(table) / total.where(total > 0)).fillna(0.0)


def stopping_met(table: pd.DataFrame, tolerance: float) -> pd.Series:
    """The stated stopping criterion, per run: diminishing returns. The last third of training brought less than
    ``tolerance`` (a fraction) of the validation PSNR the run gained from its start to its best point
    (:func:`last_third_share`). It does not say the run is at its capacity: only that more steps of the same
    training pay less and less."""
    return last_third_share(table) < tolerance


def stopping_summary(table: pd.DataFrame, tolerance: float, planned) -> tuple[pd.Series, str]:
    """Which networks of ``table`` meet the stopping criterion, and words for it.

    ``table`` holds the columns of :func:`stopping_columns` (and ``method``, ``sigma``, ``seed`` to name a
    network); ``planned`` is each row's planned steps (a number or a column), so that a network that trained on
    (:func:`train_until_met`) is counted. A network that did not meet the criterion is named.
    """
    met = stopping_met(table, tolerance)
    on = table.steps > planned
    longest = f" (up to {int(table.steps[on].max())} steps)" if on.any() else ""
    text = f"{int(met.sum())} of {len(table)} met it" + (f", {int(on.sum())} of them after training on{longest}"
                                                         if on.any() else " within their planned steps")
    if not met.all():
        named = ", ".join(f"{r.method}" + (f" at σ = {r.sigma:g}" if pd.notna(r.get("sigma", np.nan)) else "")
                          + f" run {int(r.seed)}" for _, r in table[~met].iterrows())
        text += f"; still short of it at the cap: {named}"
    return met, text

# --------------------------------------------------------------------------- the chapter's steps and readouts
def make_teachers(data: PhotoData, seeds: Sequence[int], rng: Stream, arch: Architecture,
                  config: TrainConfig, teacher_photos: int, tolerance: float | None = None, cap: int | None = None,
                  device=None) -> dict[str, Denoiser]:
    """The teachers of :data:`TEACHERS`, member ``k`` for run ``k``: ``full`` (trained clean -> clean on every
    training patch), ``weak`` (on the patches of ``teacher_photos`` training photographs, :func:`few_photo_rows`),
    ``untrained`` (the full teachers' initializations) and ``rotated`` (the full teachers with their code
    rotated, :func:`rotate_code`: the same function)."""
    full = fit_teachers(data, data.train, arch, seeds, rng, config, device=device,
                        tolerance=tolerance, cap=cap)
    few = [few_photo_rows(data, teacher_photos, k, rng) for k in seeds]
    weak = fit_teachers(data, few, arch, seeds, rng, config, device=device, tolerance=tolerance,
                        cap=cap)
    untrained = fit_teachers(data, data.train, arch, seeds, rng, config, train_model=False,
                             device=device)
    return {"full": full, "weak": weak, "untrained": untrained, "rotated": rotate_code(full, rng)}


def teacher_summary(teachers: dict[str, Denoiser], data: PhotoData) -> pd.DataFrame:
    """Each teacher's clean validation PSNR (its knowledge of clean images), beside the blur path alone."""
    from ..stats import format_ci

    blur_psnr = ph.psnr(blur(data.val[:, None].to(torch.get_default_dtype()))[:, 0].double(), data.val).mean()
    rows = [{"teacher": name, "clean validation PSNR (dB)": format_ci(clean_psnr(t, data.val), 2)}
            for name, t in teachers.items()]
    return pd.DataFrame([*rows, {"teacher": "the blur path alone", "clean validation PSNR (dB)": f"{blur_psnr:.2f}"}])


def run_sweep(sigmas: Sequence[float], seeds: Sequence[int], lams: Sequence[float],
              execute: Execute) -> dict[float, study.StudyResult]:
    """:func:`sweep_study` at each level of ``sigmas``, run by the study runner."""
    return {float(s): study.run_study(sweep_study(s, seeds, lams), execute, group_of) for s in sigmas}


def level_scores(results: dict[float, study.StudyResult], data: PhotoData, seeds: Sequence[int], rng: Stream,
                 classical_grid: int, bm3d_at: Sequence[float] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test PSNR and SSIM per (method, level, run): every selected method of each level's study and the
    references (:func:`references`; BM3D only at the levels ``bm3d_at``); and the classical factors tuned."""
    scores_, tuned = [], []
    for s, result in results.items():
        noisy = noise(data.test, [s], seeds, rng, "test")
        scores_.append(test_scores(result, [m.name for m in result.study.methods], data.test, noisy, s))
        ref, t = references(data, s, seeds, rng, classical_grid, s in set(map(float, bm3d_at)))
        scores_.append(ref)
        tuned.append(t)
    return pd.concat(scores_, ignore_index=True), pd.concat(tuned, ignore_index=True)


def score_table(scores_: pd.DataFrame, sigma: float, order: Sequence[str]) -> pd.DataFrame:
    """Test PSNR and SSIM (mean [95% interval] over runs) at ``sigma``, methods in ``order``."""
    from ..stats import interval_table

    at = scores_[scores_.sigma == sigma]
    table = interval_table(at, "method", ["psnr"], digits=2).merge(interval_table(at, "method", ["ssim"], digits=3))
    table["method"] = pd.Categorical(table.method, [m for m in order if m in set(table.method)])
    return table.dropna(subset=["method"]).sort_values("method").rename(
        columns={"psnr": "test PSNR (dB)", "ssim": "test SSIM"}).set_index("method")


def level_table(scores_: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Test PSNR (dB, mean [95% interval]) of ``methods`` (rows) at each noise level (columns)."""
    from ..stats import interval_table

    t = interval_table(scores_[scores_.method.isin(list(methods))], ["method", "sigma"], ["psnr"], digits=2)
    t = t.pivot(index="method", columns="sigma", values="psnr").rename(columns=lambda s: f"σ = {s:g}")
    return t.reindex([m for m in methods if m in t.index])


def level_verdicts(primary: study.StudyResult, sweep: dict[float, study.StudyResult]) -> pd.DataFrame:
    """At each level: ST against the strongest simple method there (family 1), noise augmentation against the
    winner (family 3)."""
    rows = []
    levels = {**sweep, float(primary.study.methods[0].configs[0]["sigma"]): primary}
    for s, result in sorted(levels.items()):
        for c in result.comparisons.to_dict("records"):
            if c["method"] in ("ST", "noise augmentation"):
                rows.append({"σ": f"{s:g}", "method": c["method"], "against": c["reference"],
                             GAIN_DB: protocol.interval_text(c, 2), "gain": c["gain"], "low": c["low"],
                             "high": c["high"]})
    return pd.DataFrame(rows)


def classical_gap(scores_: pd.DataFrame, tuned: pd.DataFrame, sigma: float, method: str = "ST") -> tuple[str, dict]:
    """The classical method best on validation at ``sigma`` and ``method`` minus it, paired by run (dB)."""
    at = tuned[tuned.sigma == sigma]
    best = str(at.loc[at.val_psnr.idxmax(), "method"])
    wide = scores_[scores_.sigma == sigma].pivot(index="seed", columns="method", values="psnr")
    return best, protocol.interval(wide[method] - wide[best])


def training_length(data: PhotoData, seeds: Sequence[int], rng: Stream, arch: Architecture,
                    config: TrainConfig, teachers: dict[str, Denoiser], n_small: int, long_steps: int, lam: float,
                    sigma: float, device=None) -> tuple[pd.DataFrame, pd.DataFrame, study.StudyResult]:
    """The training-length factor on the study runner: base and ST (``lam``) on the first ``n_small`` training
    patches, full batch for ``long_steps`` steps, the noisy test tiles logged along the way (read only here).

    Returns the test PSNR per (method, run) at the validation stop and at the end of training (of the mean
    squared error over the test tiles), the paired gain of ST there, and the study's result."""
    small = data.train[:n_small]  # a subset of the training patches (no new draw)
    long_config = replace(config, steps=long_steps, batch_size=None)
    methods = (study.Method("base", ({"config": "-", "sigma": float(sigma)},)),
               study.Method("ST", ({"config": _lam(lam), "lam": float(lam), "sigma": float(sigma)},)))

    def execute(group, runs):
        members = pd.DataFrame({"sigma": [r.sigma for r in runs], "seed": [r.seed for r in runs],
                                "lam": [r.lam for r in runs], "weight_decay": 0.0})
        model, _ = fit_members(data, members, rng, arch, long_config, layers=["h2"],
                               teachers=teachers["full"], rows=small, test=data.test, device=device)
        return model.history, (model, model.history)

    result = study.run_study(study.Study(methods, tuple(seeds), DenoisingRun), execute)
    pixels = data.patch**2
    to_psnr = lambda mse: -10 * np.log10(mse / pixels)  # noqa: E731
    t = result.table
    psnr = pd.concat([t.assign(point=p, psnr=to_psnr(t[c])) for p, c in
                      (("validation-stopped", "test_error"), ("end of training", "end_test"))], ignore_index=True)
    wide = psnr.pivot_table(index=["point", "seed"], columns="method", values="psnr").reset_index()
    gains = {p: protocol.interval(g.ST - g.base) for p, g in wide.groupby("point")}
    from ..stats import interval_table

    table = interval_table(psnr, ["point", "method"], ["psnr"], digits=2).pivot(index="point", columns="method",
                                                                                  values="psnr")
    table["ST - base"] = [protocol.interval_text(gains[p], 2) for p in table.index]
    return table, pd.DataFrame(gains).T, result


def stress_test(primary: study.StudyResult, data: PhotoData, seeds: Sequence[int], rng: Stream, peak: float,
                tuned: pd.DataFrame, methods: Sequence[str], with_bm3d: bool) -> pd.DataFrame:
    """Test PSNR under Poisson noise of ``peak`` photons at white: the selected runs of ``methods`` and the
    classical denoisers with their strength chosen at the primary level, unchanged."""
    sigma = float(primary.study.methods[0].configs[0]["sigma"])
    pois = torch.stack([ph.poisson_noise(data.test, peak, rng.child("noise", PARTS["poisson"], k)) for k in seeds])
    rows = primary.selected[primary.selected.method.isin(list(methods))].reset_index(drop=True)
    out = [rows[["method", "seed"]].assign(psnr=scores(outputs(primary, rows, pois), data.test)[0])]
    for name, method in ph.CLASSICAL.items():
        if name == "BM3D" and not with_bm3d:
            continue
        c = tuned[(tuned.method == name) & (tuned.sigma == sigma)].factor.item()
        out.append(pd.DataFrame({"method": name, "seed": list(seeds),
                                 "psnr": scores(method(pois.numpy(), sigma, c), data.test)[0]}))
    out.append(pd.DataFrame({"method": "noisy input", "seed": list(seeds), "psnr": scores(pois.numpy(), data.test)[0]}))
    return pd.concat(out, ignore_index=True)
