"""Random streams by role (stlearn.streams) and the audit of disjoint sets.

Every test here is named ``test_stream_...``: ``pytest -k "disjoint or stream"`` selects them with the
chapters' own disjointness tests (``test_disjoint_*.py``).
"""

import itertools

import numpy as np
import pytest
import torch

import stlearn as st
from stlearn import datasets, streams
from stlearn.data import LinearTarget, randn
from stlearn.streams import ROLES, Stream, as_stream
from stlearn.validation import ParameterError

F64 = torch.float64


def first_draws(rng: Stream, n: int = 8) -> tuple[float, ...]:
    return tuple(randn(rng, n).tolist())


@pytest.fixture
def audit_off(monkeypatch):
    """No audit before the test, and none left on after it (the log is module state)."""
    monkeypatch.setattr(streams, "_LOG", None)


# --------------------------------------------------------------------------- paths and draws
def test_stream_distinct_paths_give_different_draws():
    indices = [(), (0,), (1,), (2,), (0, 0), (0, 1), (1, 0)]
    paths = [Stream(s).child(role, *i) for s in range(3) for role in ROLES for i in indices]
    paths += [Stream(0).child("student_data", k).child(sub) for k in range(3)
              for sub in ("inputs", "noise", "label_noise")]
    paths += [Stream(s) for s in range(3)]
    assert len({p.spawn_key() + (p.seed,) for p in paths}) == len(paths), "two paths share a seed sequence"
    draws = [first_draws(p) for p in paths]
    assert len(set(draws)) == len(paths), "two distinct paths gave the same draws"


def test_stream_same_path_gives_the_same_draws():
    a = Stream(3).child("test", 2).child("inputs")
    b = Stream(3).child("test", 2).child("inputs")
    assert a == b and a.name == "seed 3 / test[2] / inputs"
    assert first_draws(a, 100) == first_draws(b, 100)
    assert first_draws(a) == first_draws(a)  # each generator() starts the stream afresh
    assert Stream(3).children("test", 3)[2] == Stream(3).child("test", 2)
    assert as_stream(3) == Stream(3) and as_stream(np.int64(3)) == Stream(3)
    assert a.numpy_seed() == b.numpy_seed() and 0 <= a.numpy_seed() < 2**32


# pairs whose integers coincide under arithmetic offsets (seed + index, concatenated digits, nesting, ...)
COINCIDENCES = {
    "seed 2 vs seed 1 index 1": (Stream(2).child("test"), Stream(1).child("test", 1)),
    "seed 1 index 0 vs seed 0 index 1": (Stream(1).child("test", 0), Stream(0).child("test", 1)),
    "seed 10 vs seed 1 index 0": (Stream(10).child("test"), Stream(1).child("test", 0)),
    "no index vs index 0": (Stream(0).child("test"), Stream(0).child("test", 0)),
    "indices 1, 2 vs index 12": (Stream(0).child("test", 1, 2), Stream(0).child("test", 12)),
    "indices 1, 2 vs 2, 1": (Stream(0).child("test", 1, 2), Stream(0).child("test", 2, 1)),
    "indices 1, 2 vs nested 1 then 2": (Stream(0).child("test", 1, 2), Stream(0).child("test", 1).child("test", 2)),
    "index 3 vs indices 1, 2": (Stream(0).child("test", 3), Stream(0).child("test", 1, 2)),
    "teacher vs student data, same index": (Stream(0).child("teacher_data", 1), Stream(0).child("student_data", 1)),
    "member 1 of seed 0 vs member 0 of seed 1": (Stream(0).child("member", 1), Stream(1).child("member", 0)),
    "root vs its child": (Stream(0), Stream(0).child("test")),
    "a set vs its own inputs": (Stream(0).child("test", 1), Stream(0).child("test", 1).child("inputs")),
    "index 1000 * 1 + 0 vs seed 1 index 0": (Stream(0).child("test", 1000), Stream(1).child("test", 0)),
}


@pytest.mark.parametrize("case", list(COINCIDENCES))
def test_stream_integer_coincidences_do_not_collide(case):
    a, b = COINCIDENCES[case]
    assert first_draws(a) != first_draws(b)
    x, y = randn(a, 20000), randn(b, 20000)
    assert abs(float(torch.corrcoef(torch.stack([x, y]))[0, 1])) < 0.05, f"{case}: correlated draws"


def test_stream_seed_plus_index_grids_are_all_distinct():
    """What ``seed + k`` used to conflate (seed 1 run 2 and seed 2 run 1): every (seed, k) its own stream."""
    grid = {(s, k): first_draws(Stream(s).child("student_data", k)) for s, k in itertools.product(range(6), repeat=2)}
    assert len(set(grid.values())) == len(grid)


# --------------------------------------------------------------------------- one role's index changes nothing else
ROLE_SET = ("task", "target", "teacher_data", "teacher_init", "student_data", "student_init", "validation", "test",
            "split", "noise")


def world(index: dict[str, int]) -> dict[str, torch.Tensor]:
    """What each role draws, by ``role: name``, with the stream of role ``r`` at ``rng.child(r, index[r])``.

    Data sets are drawn from isotropic inputs with a zero target, so that their clean inputs, noise and labels
    are their own stream's draws and nothing else (a task subspace and a target shape every set deterministically).
    """
    rng = Stream(7)
    r = {role: rng.child(role, index[role]) for role in ROLE_SET}
    out = {"task:basis": st.gaussian_inputs(6, rank=3, rng=r["task"]).basis,
           "target:weight": st.linear_target(st.gaussian_inputs(6), 2, rng=r["target"]).weight}
    data = st.Task(st.gaussian_inputs(6), LinearTarget(torch.zeros(2, 6, dtype=F64)), sigma=0.5, label_noise=0.3)
    for role in ("teacher_data", "student_data", "validation", "test"):
        s = st.draw(data, 5, r[role], label_noise=role != "test", dtype=F64)
        out |= {f"{role}:clean": s.clean, f"{role}:noisy": s.noisy}
        if role != "test":  # test targets carry no label noise
            out[f"{role}:labels"] = s.y
    for role in ("teacher_init", "student_init"):
        net = st.MLP([6, 4, 2], rng=r[role], dtype=F64)
        out |= {f"{role}:layer{i}": layer.weight.detach() for i, layer in enumerate(net.layers)}
    digits = datasets.labelled("digits", 30, 20, 0.5, split_rng=r["split"], noise_rng=r["noise"], dtype=F64)
    out |= {"split:train": digits.train.clean, "split:test": digits.test.clean,
            "noise:train": digits.train.noisy - digits.train.clean, "noise:val": digits.val.noisy - digits.val.clean}
    return out


def _same(key: str, a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    if key.startswith("noise:"):  # noisy - clean: the noise itself up to the rounding of the sum
        return torch.allclose(a, b, rtol=0, atol=1e-12)
    return torch.equal(a, b)


@pytest.mark.parametrize("role", ROLE_SET)
def test_stream_changing_one_roles_index_leaves_every_other_role_unchanged(role):
    base = world(dict.fromkeys(ROLE_SET, 0))
    moved = world(dict.fromkeys(ROLE_SET, 0) | {role: 1})
    for key in base:
        owner = key.split(":")[0]
        if owner == role:
            assert not _same(key, base[key], moved[key]), f"{key} did not change with the {role} index"
        else:
            assert _same(key, base[key], moved[key]), f"changing the {role} index changed {key}"


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, message", [
    (lambda: Stream(0).child("students"), r"role must be one of \[.*'student_data'.*\]; got 'students'"),
    (lambda: Stream(0).child("test", -1), r"test index must be an integer >= 0; got -1"),
    (lambda: Stream(0).child("teacher_data", 0, -3), r"teacher_data index must be an integer >= 0; got -3"),
    (lambda: Stream(0).child("test", 1.5), r"test index must be an integer >= 0; got 1.5"),
    (lambda: Stream(0).child("test", True), r"test index must be an integer >= 0; got True"),
    (lambda: Stream(-1), r"seed must be an integer >= 0; got -1"),
    (lambda: Stream(0).children("validation", -2), r"n must be an integer >= 0; got -2"),
    (lambda: as_stream("3"), r"rng must be a Stream or an integer seed >= 0; got '3'"),
])
def test_stream_unknown_role_or_bad_index_raises_naming_it(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


# --------------------------------------------------------------------------- draws
def test_stream_draw_inputs_are_independent_of_sigma_and_label_noise():
    """Inputs, noise and label noise are three child streams: changing a noise level changes no input."""
    rng = Stream(0)
    inputs = st.gaussian_inputs(8, rank=3, rng=rng.child("task"))
    target = st.linear_target(inputs, 2, rng=rng.child("target"))

    def draw(sigma, s):
        return st.draw(st.Task(inputs, target, sigma=sigma, label_noise=s), 50, rng.child("student_data", 0), dtype=F64)

    quiet, loud, noiseless, labelled = draw(0.1, 0.2), draw(0.9, 0.2), draw(0.0, 0.2), draw(0.1, 0.0)
    for s in (loud, noiseless, labelled):
        assert torch.equal(s.clean, quiet.clean)
    assert torch.equal(loud.y, quiet.y) and torch.equal(noiseless.y, quiet.y)  # label noise ignores sigma
    assert torch.equal(noiseless.noisy, quiet.clean)
    torch.testing.assert_close(loud.noisy - loud.clean, 9 * (quiet.noisy - quiet.clean), rtol=1e-12, atol=1e-12)
    assert torch.equal(labelled.noisy, quiet.noisy)  # the input noise ignores the label noise
    assert torch.equal(labelled.y, target(quiet.clean))


# --------------------------------------------------------------------------- the audit
def _task():
    rng = Stream(0)
    inputs = st.gaussian_inputs(8, rank=3, rng=rng.child("task"))
    return st.Task(inputs, st.linear_target(inputs, 2, rng=rng.child("target")), sigma=0.5)


def test_stream_audit_passes_for_disjoint_sets(audit_off):
    rng, task = Stream(0), _task()
    streams.audit()
    st.draw(task, 30, rng.child("teacher_data", 0))
    st.draw_members(task, 20, rng.children("student_data", 3))
    st.draw(task, 20, rng.child("validation", 0))
    st.draw(task, 100, rng.child("test", 0), label_noise=False)
    datasets.labelled("digits", 100, 50, 0.5, split_rng=rng.child("split"), noise_rng=rng.child("noise"))
    assert streams.assert_disjoint() == 1 + 3 + 1 + 1 + 3


def test_stream_audit_counts_a_redrawn_identical_set_once(audit_off):
    """Paired runs (one per lam) draw the same set again: it is one set, not an overlap."""
    rng, task = Stream(0), _task()
    log = streams.audit()
    for _ in range(3):
        st.draw(task, 25, rng.child("student_data", 0))
    st.draw(task, 25, rng.child("student_data", 0), dtype=F64)  # the same draws in another dtype
    st.draw(task.with_noise(2.0), 25, rng.child("student_data", 0))  # other noise, same inputs
    for k in range(2):  # one split shared by every noise draw
        datasets.labelled("digits", 100, 50, 0.3, split_rng=rng.child("split"), noise_rng=rng.child("noise", k))
    assert streams.assert_disjoint() == 1 + 3 and len(log.sets) == 4


def test_stream_audit_fails_for_a_prefix(audit_off):
    """A 40-sample set and a 1000-sample set from one stream share inputs (a student's set inside a teacher's)."""
    rng, task = Stream(0), _task()
    streams.audit()
    st.draw(task, 40, rng.child("student_data", 0))
    st.draw(task, 1000, rng.child("student_data", 0))
    with pytest.raises(AssertionError, match=r"sample sets overlap: seed 0 / student_data\[0\] and seed 0 / "
                                             r"student_data\[0\] share \d+ inputs"):
        streams.assert_disjoint()
    assert streams._LOG.overlaps()[0][2] >= 20


def test_stream_audit_fails_for_overlapping_index_sets_of_a_fixed_dataset(audit_off):
    streams.audit()
    datasets.labelled("digits", 100, 50, 0.5, split_rng=Stream(0).child("split", 0), noise_rng=0)
    datasets.labelled("digits", 100, 50, 0.5, split_rng=Stream(0).child("split", 1), noise_rng=0)
    with pytest.raises(AssertionError, match=r"digits .* and digits .* share \d+ inputs"):
        streams.assert_disjoint()


def test_stream_audit_keeps_datasets_apart_and_needs_to_be_on(audit_off):
    with pytest.raises(RuntimeError, match="no audit is on"):
        streams.assert_disjoint()
    streams.record("not recorded: no audit", np.arange(5), space="digits")
    streams.audit()
    streams.record("digits train", np.arange(5), space="digits")
    streams.record("mnist1d train", np.arange(5), space="mnist1d")  # same indices, another dataset
    assert streams.assert_disjoint() == 2
    streams.record("digits test", np.arange(4, 9), space="digits")
    with pytest.raises(AssertionError, match="digits train and digits test share 1 inputs"):
        streams.assert_disjoint()
