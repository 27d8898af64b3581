"""stlearn.train.curvature_rates against Hessians known in closed form (linear models)."""

import pytest
import torch

import stlearn as st
from stlearn.train import curvature_rates

F64 = torch.float64
RNG = st.Stream(0)


def _inputs(members: int, n: int, d: int) -> torch.Tensor:
    """Per member ``n`` inputs with unequal scales per coordinate, so the Gram matrix has a clear top eigenvalue."""
    x = torch.randn(members, n, d, generator=RNG.child("inputs").generator(), dtype=F64)
    return x * torch.linspace(0.5, 2.0, d, dtype=F64)


def _top_gram(x: torch.Tensor) -> torch.Tensor:
    """Per member the top eigenvalue of ``X^T X / n``."""
    return torch.linalg.eigvalsh(x.transpose(-1, -2) @ x / x.shape[-2])[..., -1]


def test_linear_model_rates_are_the_gram_matrix_with_decay_and_momentum():
    """f = W x: the Hessian of (1/2n)||W X^T - Y||^2 + (wd/2)||W||^2 is I (x) (X^T X / n) + wd I, per member."""
    members, n, d, d_out = 3, 40, 6, 2
    x = _inputs(members, n, d)
    y = torch.randn(members, n, d_out, generator=RNG.child("target").generator(), dtype=F64)
    model = st.DeepLinear([d, d_out], members=members, rng=RNG.child("student_init"), dtype=F64)
    decays = (0.0, 0.1, 1.0)
    config = st.TrainConfig(momentum=0.9, weight_decay=decays)
    rates = curvature_rates(model, st.Samples(x, x, y), config=config, fraction=0.5, max_rate=100.0, iterations=200,
                            tol=0.0)
    curvature = _top_gram(x) + torch.tensor(decays, dtype=F64)
    expected = 0.5 * 2 * (1 + 0.9) / curvature
    torch.testing.assert_close(torch.tensor(rates, dtype=F64), expected, rtol=1e-6, atol=0)


def test_feature_term_alone_gives_lam_times_the_gram_matrix():
    """At W1 = W2 = 0 with y = 0 the task term has no curvature and the feature term's Hessian is lam (X^T X / n)
    for each row of W1: the top eigenvalue is lam times the Gram matrix's (and the zero gradient starts from ones)."""
    members, n, d, m = 2, 30, 5, 4
    x = _inputs(members, n, d)
    y = torch.zeros(members, n, 1, dtype=F64)
    model = st.DeepLinear([d, m, 1], members=members, init_scale=0.0, dtype=F64)
    teacher = st.FrozenTeacher(st.DeepLinear([d, m, 1], rng=RNG.child("teacher_init"), dtype=F64))
    lams = [0.5, 3.0]
    rates = curvature_rates(model, st.Samples(x, x, y), teacher=teacher, lam=lams, layers=["h1"], fraction=1.0,
                            max_rate=100.0, iterations=200, tol=0.0)
    expected = 2.0 / (torch.tensor(lams, dtype=F64) * _top_gram(x))
    torch.testing.assert_close(torch.tensor(rates, dtype=F64), expected, rtol=1e-6, atol=0)


def test_cap_and_single_network():
    """A single network gets a list of one rate; a flat loss (zero curvature) gets the cap."""
    x = _inputs(1, 20, 3)[0]
    model = st.DeepLinear([3, 1], dtype=F64, rng=RNG.child("student_init"))
    rate = curvature_rates(model, st.Samples(x, x, torch.zeros(20, 1, dtype=F64)), fraction=0.5, max_rate=1e-3)
    assert rate == [1e-3]
    flat = st.DeepLinear([3, 2, 1], init_scale=0.0, dtype=F64)  # zero weights, zero targets: the Hessian is zero
    assert curvature_rates(flat, st.Samples(x, x, torch.zeros(20, 1, dtype=F64)), max_rate=0.25) == [0.25]


def test_bad_fraction_names_the_parameter():
    model = st.DeepLinear([3, 1], dtype=F64)
    x = torch.zeros(4, 3, dtype=F64)
    with pytest.raises(st.ParameterError, match="fraction must be"):
        curvature_rates(model, st.Samples(x, x, torch.zeros(4, 1, dtype=F64)), fraction=1.5)


def test_relabelled_student_and_target_get_the_same_rate():
    """The null control's symmetry holds for curvature rates: matching P h from an init gives the rate of matching
    h from the init relabelled by P^T (the Hessians are conjugate by an orthogonal map)."""
    d, m, n = 4, 6, 25
    x = _inputs(1, n, d)[0]
    data = st.Samples(x, x + 0.3, torch.randn(n, 1, generator=RNG.child("target").generator(), dtype=F64))
    net = st.MLP([d, m, 1], rng=RNG.child("teacher_init"), dtype=F64)
    p = torch.eye(m, dtype=F64)[torch.randperm(m, generator=RNG.child("rotation").generator())]
    a = st.MLP([d, m, 1], rng=RNG.child("student_init"), dtype=F64)
    b = st.MLP([d, m, 1], rng=RNG.child("student_init"), dtype=F64)
    with torch.no_grad():
        b.layers[0].weight.copy_(p.T @ a.layers[0].weight)
        b.layers[0].bias.copy_(p.T @ a.layers[0].bias)
        b.layers[1].weight.copy_(a.layers[1].weight @ p)
    config = st.TrainConfig(momentum=0.9)
    rate_a = curvature_rates(a, data, teacher=st.FrozenTeacher(net, transform={"h1": p}), lam=2.0, layers=["h1"],
                             config=config)
    rate_b = curvature_rates(b, data, teacher=st.FrozenTeacher(net), lam=2.0, layers=["h1"], config=config)
    assert rate_a == pytest.approx(rate_b, rel=1e-10)


def test_a_diverged_member_restarts_from_its_start_at_half_the_fraction_and_the_others_are_untouched():
    """nonlinear._restart_diverged: member 1 marked diverged is trained again from its start (its rate halves);
    member 0's weights and rows stay as they were."""
    import pandas as pd

    from stlearn.experiments import nonlinear as nl
    from stlearn.models import select_members

    task = nl.relu_task(4, 2, 0.5, RNG)
    data = nl.run_sets(task, 20, [RNG.child("student_data", k) for k in range(2)])
    model = st.MLP([4, 8, 1], members=2, rng=[RNG.child("student_init", k) for k in range(2)])
    start = select_members(model, [0, 1])
    config = st.TrainConfig(steps=20, momentum=0.9, log_points=3, weight_decay=(0.0, 0.01), progress=False)
    first = nl.train_at_curvature_rates(model, data, config, 0.4)
    trained = select_members(model, [0, 1])
    marked = first.history.assign(diverged_at=first.history.member.map({1: 5.0}).astype(float))
    result = nl._restart_diverged(model, start, type(first)(marked), data, config, 0.4, teacher=None, lam=0.0,
                                  layers=(), eval_sets=None, member_info=None, fresh_noise=None)
    h = result.history
    assert set(h[h.member == 1].restarts) == {1} and set(h[h.member == 0].restarts) == {0}
    rate = h.groupby("member").rate.first()
    assert rate[1] == pytest.approx(first.history.groupby("member").rate.first()[1] / 2, rel=1e-6)
    pd.testing.assert_frame_equal(h[h.member == 0].drop(columns=["restarts", "diverged_at"]).reset_index(drop=True),
                                  first.history[first.history.member == 0].reset_index(drop=True))
    assert torch.equal(model.layers[0].weight[0], trained.layers[0].weight[0])
    assert not torch.equal(model.layers[0].weight[1], trained.layers[0].weight[1])


def test_a_restarted_members_teacher_keeps_its_views_and_chunk_and_a_single_teacher_is_kept():
    """nonlinear._member_args: the members' teacher ensemble is cut to the restarted members with its views and chunk;
    a teacher that is one network for every member is passed on as it is."""
    from stlearn.experiments import nonlinear as nl

    kw = dict(lam=[0.0, 1.0, 2.0], member_info=None, fresh_noise=None, eval_sets=None, layers=["h1"])
    ensemble = st.FrozenTeacher(st.MLP([3, 4, 1], members=3, rng=0), views=2, chunk=5)
    cut = nl._member_args({**kw, "teacher": ensemble}, [2])
    assert (cut["teacher"].model.members, cut["teacher"].views, cut["teacher"].chunk) == (1, 2, 5)
    assert cut["lam"] == [2.0]
    single = st.FrozenTeacher(st.MLP([3, 4, 1], rng=0))
    assert nl._member_args({**kw, "teacher": single}, [0, 2])["teacher"] is single
