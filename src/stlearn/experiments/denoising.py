"""Chapter "Student-teacher denoising of real photographs".

Streams below the chapter's root ``rng`` (:mod:`stlearn.streams`):

- ``rng.child("split")``: which photographs are for training, validation and test;
  ``rng.child("student_data")``: which grid patches of the training photographs are the training set;
- run ``k``: pixel noise ``rng.child("noise", part, k)`` with ``part`` one of :data:`PARTS` (the same
  standard normal draw serves every noise level, so levels and methods are paired), student initialization
  ``rng.child("student_init", k)`` (shared by every method and level of run ``k``), teacher ``k``'s
  initialization ``rng.child("teacher_init", k)``; a teacher that knows fewer photographs draws them from
  ``rng.child("teacher_data", k)``; the fresh noise of noise augmentation ``rng.child("noise", FRESH)``;
  minibatch order ``rng.child("batch")``. Round ``r`` of training on (:func:`train_until_met`) draws its
  fresh noise from ``rng.child("noise", FRESH, r)`` and its minibatches from the ``("batch", r)`` child of the
  minibatch stream.

Methods. Every trained method runs as ensemble members of :class:`stlearn.denoisers.Denoiser`, one member per
(configuration, noise level, run index), trained by the library trainer with minibatch Adam and early
stopping on the noisy validation tiles; a member whose validation gain still came largely in its last third
trains on until it meets the stopping criterion or reaches a cap (:func:`train_until_met`). Each method's
configuration (weight decay for base and noise augmentation, ``lam`` for ST, ``0`` included) is then chosen per
(level, run) on the validation error alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from .. import photos as ph
from ..data import Samples
from ..denoisers import Denoiser, blur, select_members
from ..losses import FrozenTeacher
from ..streams import Stream, as_stream
from ..train import TrainConfig, evaluate, train
from ..validation import ParameterError, check_float

PARTS = {"train": 0, "val": 1, "test": 2, "fresh": 3, "poisson": 4}
METHOD_COLORS = {"base": "#6c6c6c", "noise aug.": "#0173b2", "ST": "#029e73", "teacher as is": "#cc78bc",
                 "TV": "#ca9161", "wavelet": "#949494", "NLM": "#de8f05", "BM3D": "#d55e00"}


@dataclass
class PhotoData:
    """Clean training patches (flat rows), validation and test crops ``(n, C, C)``, and where they come from."""

    split: ph.PhotoSplit
    photos: dict
    train: torch.Tensor
    train_photo: np.ndarray
    val: torch.Tensor
    test: torch.Tensor
    patch: int


def photo_data(n_val_photos: int, n_test_photos: int, patch: int, n_patches: int, crop: int, rng: Stream | int,
               max_side: int = 256) -> PhotoData:
    """The split by photograph, ``n_patches`` training patches, one central crop per validation and test photograph."""
    rng = as_stream(rng)
    photos = ph.load_photos(ph.PHOTO_NAMES, max_side, patch)
    split = ph.split_photos(n_val_photos, n_test_photos, rng.child("split"))
    train_rows, ids = ph.patches(photos, split.train, patch, n_patches, rng.child("student_data"), "train patches")
    val, _ = ph.center_crops(photos, split.val, crop, patch, "validation crops")
    test, _ = ph.center_crops(photos, split.test, crop, patch, "test crops")
    train_photo = np.array([ph.PHOTO_NAMES[i // ph.CELLS_PER_PHOTO] for i in ids])
    return PhotoData(split, photos, train_rows, train_photo, val, test, patch)


def noise(clean: torch.Tensor, sigmas: Sequence[float], seeds: Sequence[int], rng: Stream, part: str) -> torch.Tensor:
    """Noisy copies ``(len(sigmas) * len(seeds), *clean.shape)``, level-major: member ``j * S + s`` has level
    ``sigmas[j]`` and the noise draw ``rng.child("noise", PARTS[part], seeds[s])``."""
    draws = torch.stack([ph.gaussian_noise(clean, 1.0, rng.child("noise", PARTS[part], k)) - clean.double()
                         for k in seeds])  # (S, ...) standard normal / 255
    return torch.cat([clean.double() + s * draws for s in sigmas])


def grid(sigmas: Sequence[float], seeds: Sequence[int], **columns) -> pd.DataFrame:
    """The member table of a level-major ensemble (one row per (sigma, seed), plus constant columns)."""
    rows = [{"sigma": float(s), "seed": int(k), **columns} for s in sigmas for k in seeds]
    return pd.DataFrame(rows)


def adam(steps: int, lr: float, batch: int, log_points: int, monitor: str = "val_noisy",
         rng: Stream | int = 0) -> TrainConfig:
    """Minibatch Adam on the half squared error with early stopping on ``monitor`` (weights of the best log point).

    No progress bar (as for the other chapters: executed chapters and their references carry no stderr).
    """
    return TrainConfig(steps=steps, lr=lr, optimizer="adam", batch_size=batch, task="mse", log_points=log_points,
                       early_stopping=True, monitor=monitor, seed=as_stream(rng).child("batch"), progress=False)


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


def fit_teachers(data: PhotoData, rows: Sequence[torch.Tensor] | torch.Tensor, channels: int, bottleneck: int,
                 seeds: Sequence[int], rng: Stream, config: TrainConfig, train_model: bool = True,
                 device=None, tolerance: float | None = None, cap: int | None = None) -> Denoiser:
    """Teachers ``k`` in ``seeds`` (one ensemble): clean -> clean on their clean patches, early-stopped on the
    clean validation tiles; ``train_model=False`` returns them untrained (their initialization only).

    ``rows``: one tensor of clean patches shared by every teacher, or one per teacher. With ``tolerance``, a
    teacher that does not meet the stopping criterion trains on up to ``cap`` steps (:func:`train_until_met`).
    """
    model = Denoiser(channels, bottleneck, members=len(seeds), rng=[rng.child("teacher_init", k) for k in seeds],
                     device=device)
    if not train_model:
        return model
    if isinstance(rows, torch.Tensor):
        clean = rows.to(model.weights[0])
    else:
        n = min(len(r) for r in rows)  # equal set sizes so the members stack
        clean = torch.stack([r[:n] for r in rows]).to(model.weights[0])
    val = ph.tiles(data.val, data.patch).to(clean)
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
    """Each teacher's clean validation MSE per pixel with the weights it holds now: after early stopping, its
    best logged one (:func:`teacher_table`'s ``val``), if the trainer kept the validation-best weights."""
    v = ph.tiles(data.val, data.patch).to(model.weights[0])
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


def fit_students(data: PhotoData, sigmas: Sequence[float], seeds: Sequence[int], rng: Stream, channels: int,
                 bottleneck: int, config: TrainConfig, *, weight_decays: Sequence[float] = (0.0,), fresh: bool = False,
                 lams: Sequence[float] = (), layers: Sequence[str] = (), teachers: Denoiser | None = None,
                 rows: torch.Tensor | None = None, test: torch.Tensor | None = None,
                 device=None, tolerance: float | None = None, cap: int | None = None) -> tuple[Denoiser, pd.DataFrame]:
    """One ensemble: a member per (configuration, sigma, seed), configuration-major then level-major.

    The configurations are one per weight decay in ``weight_decays`` (``lam = 0``), then one per ``lam`` in
    ``lams`` (weight decay 0; ``lam > 0`` needs ``teachers``, teacher ``k`` guiding the members of run ``k``, and
    ``layers``). ``fresh``: noise augmentation (fresh noise on the clean patches at every minibatch), else one
    fixed noisy copy per patch. ``rows``: the clean training patches (default: all of ``data.train``).
    ``test``: clean crops whose noisy copies (noise part ``"test"``) are logged along training as the eval set
    ``test`` (read only for the training-length factor, never for a choice). With ``tolerance``, a member that
    does not meet the stopping criterion trains on up to ``cap`` steps (:func:`train_until_met`).

    Returns the model (best validation weights restored) and one row per member: its configuration and the
    columns of :func:`stopping_columns` (the best validation MSE per pixel ``val``, its step, ``val_early``,
    ``val_start``, the steps trained and the final training MSE per pixel). The full history is
    ``model.history``.
    """
    rows = data.train if rows is None else rows
    configs = [(0.0, float(w)) for w in weight_decays] + [(float(l), 0.0) for l in lams]
    if not configs:
        raise ParameterError("fit_students needs at least one weight decay or lam")
    members = grid(sigmas, seeds)
    table = pd.concat([members.assign(lam=l, weight_decay=w) for l, w in configs], ignore_index=True)
    E, C = len(table), len(configs)
    dev = torch.device(device) if device is not None else None
    model = Denoiser(channels, bottleneck, members=E,
                     rng=[rng.child("student_init", int(k)) for k in table.seed], device=dev)
    dev = model.weights[0].device
    ref = model.weights[0]  # the network's device and dtype
    clean = rows.to(ref).expand(E, *rows.shape)
    sig = torch.tensor(table.sigma.to_numpy(), dtype=ref.dtype, device=dev).reshape(E, 1, 1)
    noisy = noise(rows, sigmas, seeds, rng, "train").to(ref).repeat(C, 1, 1)
    if fresh:
        samples = ph.FreshNoise(clean, clean, sig, rng.child("noise", PARTS["fresh"]), noisy)
    else:
        samples = Samples(clean, noisy, clean)

    def eval_set(images: torch.Tensor, part: str) -> Samples:
        c = ph.tiles(images, data.patch).to(ref)
        n = ph.tiles(noise(images, sigmas, seeds, rng, part), data.patch).to(ref)
        return Samples(c.expand(E, *c.shape), n.repeat(C, 1, 1), c.expand(E, *c.shape))

    eval_sets = {"val": eval_set(data.val, "val")}
    if test is not None:
        eval_sets["test"] = eval_set(test, "test")
    teacher = None
    if any(l > 0 for l in table.lam):
        if teachers is None or not layers:
            raise ParameterError("lams > 0 need teachers and layers to match")
        teacher = FrozenTeacher(select_members(teachers, [list(seeds).index(k) for k in table.seed]))
    decay = tuple(table.weight_decay) if table.weight_decay.any() and E > 1 else float(table.weight_decay[0])
    cfg = TrainConfig(**{**config.__dict__, "weight_decay": decay})
    result = train(model, samples, teacher=teacher, lam=table.lam.tolist() if E > 1 else table.lam[0],
                   layers=layers if teacher else (), config=cfg, eval_sets=eval_sets)

    def problem(members: list[int], round_: int) -> tuple[dict, tuple]:
        """What ``members`` train on when they train on: their own inputs, eval sets and teachers."""
        idx = torch.as_tensor(members, device=dev)
        pick = lambda t: t.index_select(0, idx)  # noqa: E731
        if fresh:
            part = ph.FreshNoise(pick(clean), pick(clean), pick(sig), rng.child("noise", PARTS["fresh"], round_),
                                 pick(noisy))
        else:
            part = Samples(pick(clean), pick(noisy), pick(clean))
        own = None if teacher is None else FrozenTeacher(
            select_members(teachers, [list(seeds).index(int(table.seed[e])) for e in members]))
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


def select(table: pd.DataFrame, by: Sequence[str] = ("sigma", "seed")) -> pd.DataFrame:
    """The row of lowest validation MSE in each group of ``by``: each method's validation-only choice."""
    return table.loc[table.groupby(list(by)).val.idxmin()].reset_index(drop=True)


def chosen_outputs(models: dict, chosen: pd.DataFrame, noisy: dict[float, torch.Tensor],
                   seeds: Sequence[int]) -> np.ndarray:
    """Denoised test crops of the chosen members: ``(len(chosen), n, C, C)``.

    ``models`` maps a configuration key (the ``key`` column of ``chosen``) to its ensemble; ``noisy[sigma]``
    holds the noisy test crops of every seed ``(S, n, C, C)``.
    """
    out = []
    for _, r in chosen.iterrows():
        model = models[r.key]
        one = select_members(model, [int(r.member)])
        x = noisy[r.sigma][list(seeds).index(int(r.seed))][None]
        out.append(one.denoise(x)[0].cpu().double().numpy())
    return np.stack(out)


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

