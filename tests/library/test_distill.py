"""Logit distillation (stlearn.distill): the loss against the plain KL divergence, and its trainer."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import stlearn as st
from stlearn.data import randn
from stlearn.distill import distillation_loss, distilled_terms, train_distilled

F64 = torch.float64
RNG = st.Stream(0)


def test_distillation_loss_is_t_squared_times_the_kl_divergence_per_member():
    student, teacher = randn(RNG.child("reference", 0), 3, 8, 5), randn(RNG.child("reference", 1), 3, 8, 5)
    loss = distillation_loss(student, teacher, temperature=2.0)
    assert loss.shape == (3,)
    for e in range(3):
        kl = F.kl_div(F.log_softmax(student[e] / 2, -1), F.log_softmax(teacher[e] / 2, -1), log_target=True,
                      reduction="batchmean")
        torch.testing.assert_close(loss[e], 4 * kl, rtol=1e-12, atol=1e-14)
    assert torch.allclose(distillation_loss(teacher, teacher, 3.0), torch.zeros(3, dtype=F64), atol=1e-14)


def test_distilled_terms_mix_the_task_and_distillation_terms():
    logits, teacher = randn(RNG.child("reference", 0), 8, 4), randn(RNG.child("reference", 1), 8, 4)
    y = torch.randint(0, 4, (8,), generator=RNG.child("target").generator())
    terms = distilled_terms(logits, y, teacher, alpha=0.25, temperature=2.0)
    torch.testing.assert_close(terms["task"], F.cross_entropy(logits, y), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(terms["total"], 0.75 * terms["task"] + 0.25 * terms["distill"], rtol=1e-12, atol=0)


def _problem():
    inputs = st.gaussian_inputs(6)
    task = st.Task(inputs, st.linear_target(inputs, 3, rng=RNG.child("target")), sigma=0.5)

    def label(s):
        return st.Samples(s.clean, s.noisy, s.y.argmax(-1))

    train = label(st.draw(task, 30, RNG.child("student_data"), dtype=F64))
    test = label(st.draw(task, 50, RNG.child("test"), label_noise=False, dtype=F64))
    teacher = st.FrozenTeacher(st.MLP([6, 8, 3], rng=RNG.child("teacher_init"), dtype=F64))
    return train, test, teacher


def test_train_distilled_logs_its_terms_and_the_fast_and_plain_paths_agree():
    train, test, teacher = _problem()
    config = st.TrainConfig(steps=40, lr=0.1, task="ce", batch_size=10, log_points=6, seed=RNG.child("batch"),
                            progress=False)
    histories = []
    for fast in (True, False):
        model = st.MLP([6, 8, 3], rng=RNG.child("student_init"), dtype=F64)
        histories.append(train_distilled(model, train, teacher, alpha=0.5, temperature=3.0,
                                         config=dataclasses.replace(config, fast=fast), eval_sets={"test": test}))
    h, plain = histories
    assert {"step", "member", "train_task", "train_distill", "train_total", "test_noisy", "test_clean"} <= set(h)
    assert h.step.tolist() == st.log_schedule(40, 6)
    assert h.train_total.iloc[-1] < h.train_total.iloc[0]
    for column in ("train_task", "train_distill", "train_total", "test_noisy"):
        torch.testing.assert_close(torch.tensor(h[column].values), torch.tensor(plain[column].values),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=1.5), r"alpha must be a finite number >= 0.0 and <= 1.0; got 1.5"),
    (dict(temperature=0.0), r"temperature must be a finite number > 0.0; got 0.0"),
    (dict(config=st.TrainConfig(task="mse")), r"distillation needs a classification task \(task='ce'\); got 'mse'"),
])
def test_train_distilled_rejects_bad_input(kwargs, message):
    train, _, teacher = _problem()
    with pytest.raises(st.ParameterError, match=message):
        train_distilled(st.MLP([6, 8, 3], dtype=F64), train, teacher, **kwargs)


def test_output_distillation_is_the_base_loss_on_blended_targets():
    """(1/2n)||f - y||^2 + lam (1/2n)||f - g||^2 = (1 + lam) (1/2n)||f - blended||^2 + const: equal gradients."""
    from stlearn.distill import blended_targets
    from stlearn.losses import half_mean_square

    rng = st.Stream(0)
    y, g, f = (randn(rng.child("reference", j), 2, 7, 3) for j in range(3))
    lam = torch.tensor([0.0, 2.5], dtype=torch.float64)
    f.requires_grad_(True)
    direct = half_mean_square(f - y) + lam * half_mean_square(f - g)
    (grad_direct,) = torch.autograd.grad(direct.sum(), f)
    blended = (1 + lam) * half_mean_square(f - blended_targets(y, g, lam))
    (grad_blended,) = torch.autograd.grad(blended.sum(), f)
    torch.testing.assert_close(grad_direct, grad_blended)
    torch.testing.assert_close(blended_targets(y, g, lam)[0], y[0])  # lam = 0: the labels themselves
