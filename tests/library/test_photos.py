"""Photographs, noise models, metrics and the residual denoiser of the denoising chapter (fast: seconds)."""

import numpy as np
import pytest
import torch

import stlearn as st
from stlearn import photos as ph
from stlearn import streams
from stlearn.denoisers import Architecture, Denoiser, select_members, stack
from stlearn.experiments import denoising as dn


@pytest.fixture(scope="module")
def small_photos():
    return ph.load_photos(["camera", "coins", "text", "china"], max_side=64)


def test_photos_load_offline_from_wheels(small_photos):
    for name, img in small_photos.items():
        assert img.dtype == np.float64 and img.ndim == 2, name
        assert 0.0 <= img.min() and img.max() <= 1.0
        assert min(img.shape) <= 64 and img.shape[0] % 16 == 0 and img.shape[1] % 16 == 0
    with pytest.raises(st.ParameterError, match="photo must be one of"):
        ph.load_photo("lena")


def test_disjoint_photos_and_patches():
    log = streams.audit()
    data = dn.photo_data(3, 3, 16, 64, 32, st.Stream(0), max_side=64)
    split = data.split
    split.check_disjoint()
    assert not set(split.train) & set(split.val) and not set(split.train) & set(split.test)
    assert not set(split.val) & set(split.test)
    assert set(split.train) | set(split.val) | set(split.test) == set(ph.PHOTO_NAMES)
    assert set(data.train_photo) <= set(split.train)
    assert streams.assert_disjoint() == 4  # train patches, validation crops, test crops, teacher stopping patches
    assert len(log.sets) == 4
    assert data.train.shape == (64, 256) and data.val.shape == (3, 32, 32) and data.test.shape == (3, 32, 32)


def test_disjoint_audit_catches_a_shared_patch(small_photos):
    streams.audit()
    _, ids = ph.patches(small_photos, ["camera"], 16, 4, st.Stream(0), "a")
    streams.record("b", ids[:1], space="photos")
    with pytest.raises(AssertionError, match="share"):
        streams.assert_disjoint()


def test_stream_split_does_not_depend_on_noise_or_seed_index():
    a = ph.split_photos(3, 3, st.Stream(0).child("split"))
    b = ph.split_photos(3, 3, st.Stream(0).child("split"))
    c = ph.split_photos(3, 3, st.Stream(1).child("split"))
    assert a == b and a != c
    x = torch.zeros(2, 8, 8)
    rng = st.Stream(0)
    n0 = dn.noise(x, [25.0], [0, 1], rng, "test")
    n1 = dn.noise(x, [25.0], [0, 2], rng, "test")
    assert torch.equal(n0[0], n1[0]) and not torch.equal(n0[1], n1[1])  # run k's draw is its own
    assert not torch.equal(dn.noise(x, [25.0], [0], rng, "val"), dn.noise(x, [25.0], [0], rng, "test"))


def test_noise_models_and_metrics():
    clean = torch.full((4, 32, 32), 0.5, dtype=torch.float64)
    noisy = ph.gaussian_noise(clean, 25.0, st.Stream(0))
    assert abs((noisy - clean).std().item() * 255 - 25.0) < 1.5
    assert np.allclose(ph.psnr(noisy, clean).mean(), 20 * np.log10(255 / 25), atol=0.5)
    assert np.allclose(ph.psnr(clean, clean), 120.0)
    assert np.allclose(ph.ssim(clean.numpy(), clean.numpy()), 1.0)
    shot = ph.poisson_noise(clean, 40.0, st.Stream(0))
    assert abs(shot.mean().item() - 0.5) < 0.02 and abs(shot.var().item() - 0.5 / 40) < 0.003


def test_bad_inputs_name_the_parameter():
    x = torch.zeros(2, 8, 8)
    with pytest.raises(st.ParameterError, match="sigma must be"):
        ph.gaussian_noise(x, -1.0, 0)
    with pytest.raises(st.ParameterError, match="peak must be"):
        ph.poisson_noise(x, 0.0, 0)
    with pytest.raises(st.ParameterError, match="channels must be"):
        Denoiser(channels=0)
    with pytest.raises(st.ParameterError, match="bottleneck must be"):
        Denoiser(bottleneck=0)
    with pytest.raises(st.ParameterError, match="n_val_photos"):
        ph.split_photos(10, 10, 0)
    with pytest.raises(st.ParameterError, match="sigma must be"):
        ph.CLASSICAL["TV"](np.zeros((8, 8)), 0.0, 1.0)
    with pytest.raises(st.ParameterError, match="budget must be"):
        ph.CLASSICAL["TV"].factors(0)
    with pytest.raises(st.ParameterError, match="even"):
        Denoiser().denoise(torch.zeros(1, 7, 8))


def test_denoiser_features_members_and_selection():
    rngs = [st.Stream(0).child("student_init", k) for k in range(3)]
    ens = Denoiser(4, 2, members=3, rng=rngs)
    one = Denoiser(4, 2, rng=rngs[1])
    x = torch.rand(5, 256)
    out, feats = ens(x, return_features=True)
    assert out.shape == (3, 5, 256)
    assert feats["h1"].shape == (3, 5, 4 * 256) and feats["h2"].shape == (3, 5, 2 * 64)
    assert feats["h3"].shape == (3, 5, 4 * 256)
    assert torch.allclose(out[1], one(x), atol=1e-6)  # a member starts where the single network of its stream starts
    picked = select_members(ens, [2, 1])
    assert torch.allclose(picked(x)[1], one(x), atol=1e-6)
    both = stack([one, one])
    assert torch.allclose(both(x)[0], one(x), atol=1e-6)
    imgs = torch.rand(2, 32, 48)
    assert ens.denoise(imgs).shape == (3, 2, 32, 48)
    assert ens.denoise(imgs.expand(3, 2, 32, 48)).shape == (3, 2, 32, 48)


def test_fresh_noise_redraws_every_minibatch():
    clean = torch.rand(2, 6, 16)
    data = ph.FreshNoise(clean, clean, torch.tensor([25.0, 50.0]).reshape(2, 1, 1), st.Stream(0), clean)
    idx = torch.tensor([0, 3])
    a, b = data.rows(idx), data.rows(idx)
    assert torch.equal(a.clean, clean[:, idx]) and torch.equal(a.y, clean[:, idx])
    assert not torch.equal(a.noisy, b.noisy)
    ratio = (a.noisy - a.clean)[1].std() / (a.noisy - a.clean)[0].std()
    assert 1.0 < ratio < 4.0


def test_fresh_noise_with_a_stream_per_member_is_each_members_own():
    """One stream per member: member 1's noise is the same beside any member 0, and a wrong count is refused."""
    clean = torch.rand(2, 6, 16, dtype=torch.float64)
    sigma = torch.tensor([25.0, 25.0]).reshape(2, 1, 1)
    idx = torch.tensor([0, 3, 5])
    a = ph.FreshNoise(clean, clean, sigma, [st.Stream(0), st.Stream(1)], clean).rows(idx)
    b = ph.FreshNoise(clean, clean, sigma, [st.Stream(2), st.Stream(1)], clean).rows(idx)
    assert torch.equal(a.noisy[1], b.noisy[1]) and not torch.equal(a.noisy[0], b.noisy[0])
    with pytest.raises(st.ParameterError, match="one per member"):
        ph.FreshNoise(clean, clean, sigma, [st.Stream(0)], clean)


def test_classical_denoisers_improve_psnr(small_photos):
    clean = small_photos["camera"][:32, :32]
    noisy = ph.gaussian_noise(torch.from_numpy(clean), 25.0, st.Stream(0)).numpy()
    for name in ["TV", "NLM", "bilateral"]:
        c, best = ph.tune_classical(ph.CLASSICAL[name], noisy[None], clean[None], 25.0, 2)
        assert best > ph.psnr(noisy, clean) + 1, name
        assert c in ph.CLASSICAL[name].factors(2)


def test_untrained_denoiser_starts_near_the_blur_and_sees_the_high_pass():
    from stlearn.denoisers import blur

    imgs = torch.rand(3, 16, 16)
    net = Denoiser(4, 2, rng=st.Stream(0).child("student_init"))
    b = blur(imgs[:, None])[:, 0]
    ref = Denoiser(4, 2, output_scale=1.0, rng=st.Stream(0).child("student_init"))
    assert (net.denoise(imgs) - b).abs().mean() < 0.2 * (ref.denoise(imgs) - b).abs().mean()
    flat = torch.full((2, 16, 16), 0.7)  # no high-pass: the layers see zeros, whatever the brightness
    assert torch.allclose(net.denoise(flat) - blur(flat[:, None])[:, 0],
                          net.denoise(flat * 0.1) - blur(flat[:, None] * 0.1)[:, 0], atol=1e-6)
    with pytest.raises(st.ParameterError, match="output_scale must be"):
        Denoiser(output_scale=-1.0)


def test_rotated_code_is_the_same_function_with_another_layout():
    ens = Denoiser(4, 3, members=2, output_scale=1.0, rng=[st.Stream(0).child("teacher_init", k) for k in range(2)])
    rot = dn.rotate_code(ens, st.Stream(1))
    x = torch.rand(5, 256)
    out, feats = ens(x, return_features=True)
    out_r, feats_r = rot(x, return_features=True)
    assert torch.allclose(out, out_r, atol=1e-5)
    assert torch.allclose(feats["h1"], feats_r["h1"]) and not torch.allclose(feats["h2"], feats_r["h2"], atol=1e-3)
    norms = feats["h2"].reshape(2, 5, 3, -1).pow(2).sum(2)  # an orthogonal mix keeps each position's code norm
    assert torch.allclose(norms, feats_r["h2"].reshape(2, 5, 3, -1).pow(2).sum(2), rtol=1e-4, atol=1e-6)


def test_rate_from_the_problem_and_the_stopping_criterion():
    import pandas as pd

    data = dn.photo_data(3, 3, 16, 64, 32, st.Stream(0), max_side=64)
    lr, a = dn.adam_rate(data, 15.0, 8, 0.25, st.Stream(0))
    assert lr == pytest.approx(0.25 * (15 / 255) / (72 * a)) and 0.01 < a < 0.5
    assert dn.adam_rate(data, 15.0, 16, 0.25, st.Stream(0))[0] == pytest.approx(lr / 2)
    with pytest.raises(st.ParameterError, match="lr_fraction"):
        dn.adam_rate(data, 15.0, 8, 0.0, st.Stream(0))
    table = pd.DataFrame({"val": [1.0, 1.0, 1.0], "val_early": [1.0, 10 ** 0.03, 10 ** 0.03],
                          "val_start": [1.0, 10 ** 0.06, 10 ** 0.3]})  # last thirds: 0, 0.3 of 0.6, 0.3 of 3 dB
    assert np.allclose(dn.last_third_gain(table), [0.0, 0.3, 0.3])
    assert np.allclose(dn.last_third_share(table), [0.0, 0.5, 0.1])
    assert dn.stopping_met(table, 0.25).tolist() == [True, False, True]


def test_fit_students_one_member_per_configuration_level_and_run():
    data = dn.photo_data(3, 3, 16, 32, 32, st.Stream(0), max_side=64)
    rng = st.Stream(0)
    cfg = dn.adam(4, 1e-3, 8, 4, rng=rng)
    teachers = dn.fit_teachers(data, data.train, Architecture(4, 2), [0, 1], rng, cfg)
    assert len(dn.teacher_table(teachers)) == 2
    model, table = dn.fit_students(data, [15.0, 50.0], [0, 1], rng, Architecture(4, 2), cfg,
                                   weight_decays=[0.0, 1e-3],
                                   lams=[0.1], layers=["h2"], teachers=teachers, test=data.test)
    assert model.n_members == len(table) == 12
    assert table.groupby(["lam", "weight_decay"]).size().tolist() == [4, 4, 4]
    assert {"test_noisy", "val_noisy"} <= set(model.history.columns)
    assert (table.val <= table.val_early + 1e-12).all() and (table.val > 0).all()
    with pytest.raises(st.ParameterError, match="teachers"):
        dn.fit_students(data, [15.0], [0], rng, Architecture(4, 2), cfg, weight_decays=[], lams=[0.1])
