"""The ST loss's documented reduction, the frozen teacher, and the task losses."""

import pytest
import torch

import stlearn as st
from stlearn.data import randn
from stlearn.validation import ParameterError

F64 = torch.float64
RNG = st.Stream(0)


def _setup():
    student = st.DeepLinear([6, 4, 4, 2], rng=RNG.child("student_init"), dtype=F64)
    teacher = st.FrozenTeacher(st.DeepLinear([6, 4, 4, 2], rng=RNG.child("teacher_init"), dtype=F64))
    x = randn(RNG.child("inputs"), 9, 6)
    noisy = x + 0.3 * randn(RNG.child("noise"), 9, 6)
    y = randn(RNG.child("target"), 9, 2)
    return student, teacher, x, noisy, y


def test_terms_follow_the_documented_reduction():
    student, teacher, x, noisy, y = _setup()
    out, feats = student(noisy, return_features=True)
    tfeats = teacher.features(x, ["h1", "h2"])
    terms = st.student_teacher_loss(out, feats, y, tfeats, 0.7, ["h1", "h2"])
    task = 0.5 * ((out - y) ** 2).sum() / 9
    feature = 0.5 * sum(((feats[l] - tfeats[l]) ** 2).sum() for l in ["h1", "h2"]) / 9
    assert torch.allclose(terms["task"], task)
    assert torch.allclose(terms["feature"], feature)
    assert torch.allclose(terms["total"], task + 0.7 * feature)


def test_lam_zero_is_exactly_the_base_loss_with_identical_gradients():
    student, teacher, x, noisy, y = _setup()
    out, feats = student(noisy, return_features=True)
    st_terms = st.student_teacher_loss(out, feats, y, teacher.features(x, ["h1"]), 0.0, ["h1"])
    base = st.student_teacher_loss(out, feats, y, None, 0.0, [])
    assert torch.equal(st_terms["total"], base["total"])
    g1 = torch.autograd.grad(st_terms["total"], list(student.parameters()), retain_graph=True)
    g2 = torch.autograd.grad(base["total"], list(student.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))


def test_teacher_is_frozen_and_not_a_module():
    model = st.DeepLinear([3, 2, 1])
    teacher = st.FrozenTeacher(model)
    assert not isinstance(teacher, torch.nn.Module)
    assert all(not p.requires_grad for p in model.parameters()) and not model.training
    feats = teacher.features(randn(RNG, 4, 3).float(), ["h1"])
    assert not feats["h1"].requires_grad


def test_teacher_transform_remixes_features():
    model = st.DeepLinear([3, 2, 1], dtype=F64)
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64)
    x = randn(RNG, 5, 3)
    plain = st.FrozenTeacher(model).features(x, ["h1"])["h1"]
    mixed = st.FrozenTeacher(model, transform={"h1": rot}).features(x, ["h1"])["h1"]
    assert torch.allclose(mixed, plain @ rot.T)


def test_teacher_transform_per_member_and_source_layer():
    deep = st.MLP([3, 4, 2, 1], dtype=F64, rng=RNG.child("teacher_init"))
    x = randn(RNG.child("inputs"), 2, 5, 3)  # one input set per member
    mixes = randn(RNG.child("rotation"), 2, 2, 2)
    h2 = deep(x, return_features=True)[1]["h2"]
    got = st.FrozenTeacher(deep, transform={"h1": mixes}, source={"h1": "h2"}).features(x, ["h1"])["h1"]
    for e in range(2):
        assert torch.allclose(got[e], h2[e] @ mixes[e].T)
    with pytest.raises(ParameterError, match="teacher's"):
        st.FrozenTeacher(deep, source={"h1": "h3"}).features(x, ["h1"])


def test_cross_entropy_for_ensembles_matches_single():
    logits = randn(RNG.child("inputs"), 3, 8, 4).float()
    labels = torch.randint(0, 4, (8,), generator=RNG.child("target").generator())
    per_member = st.task_loss(logits, labels, "ce")
    for e in range(3):
        assert torch.allclose(per_member[e], torch.nn.functional.cross_entropy(logits[e], labels))


def test_unknown_layer_and_task_are_clear_errors():
    student, teacher, x, noisy, y = _setup()
    with pytest.raises(ParameterError, match="layers must be among the teacher's"):
        teacher.features(x, ["h7"])
    with pytest.raises(ParameterError, match="task must be one of"):
        st.task_loss(y, y, "hinge")


def test_relative_scale_makes_the_terms_lam_to_one_where_training_starts():
    import stlearn as st
    from stlearn.experiments import nonlinear as nl

    rng = st.Stream(4)
    task = nl.relu_task(5, 3, 0.5, rng)
    teacher = nl.clean_teacher(task, 16, 50, rng, steps=20)
    config = st.TrainConfig(steps=2, lr=0.01, log_points=2, feature_scale="relative", progress=False)
    from stlearn.protocol import Run

    runs = [Run("ST", "-", k, lam=lam) for lam, k in zip([0.0, 0.1, 1.0, 10.0], [0, 0, 1, 1])]
    students = nl.Students(task, 30, 10, 20, config, rng)
    history = students.train(students.network(16, [0, 0, 1, 1]), runs, teacher=teacher, layers=["h1"]).history
    start = history[history.step == 0].sort_values("member")
    ratio = (start.feature_weight * start.train_feature / start.train_task).to_numpy()
    torch.testing.assert_close(torch.tensor(ratio), torch.tensor([0.0, 0.1, 1.0, 10.0], dtype=torch.float64))
    with pytest.raises(ParameterError, match="feature_scale must be one of"):
        st.TrainConfig(feature_scale="mean")


def test_a_teacher_of_a_burst_gives_every_view_the_features_of_its_clean_input():
    net = st.MLP([5, 7, 1], members=2, rng=0)
    x = torch.randn(2, 6, 5, generator=st.Stream(0).generator())
    once = st.FrozenTeacher(net).features(x, ["h1"])["h1"]
    burst = st.FrozenTeacher(net, views=3).features(x.repeat(1, 3, 1), ["h1"])["h1"]
    assert torch.allclose(burst, once.repeat(1, 3, 1)) and burst.is_contiguous()
    with pytest.raises(ParameterError, match="views"):
        st.FrozenTeacher(net, views=4).features(x.repeat(1, 3, 1), ["h1"])
