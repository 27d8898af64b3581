"""The robustness checks' rules: which parameters move and how, what counts as a fast stop, random seeds."""

from stlearn.tooling import chapters as ch
from stlearn.tooling import robustness

ROOT = ch.repo_root()


def test_every_size_parameter_moves_by_the_factor_and_nothing_else():
    for name in ch.chapters(ROOT):
        known, sizes = ch.parameters(name, ROOT), robustness.size_parameters(name, ROOT)
        assert "seed" not in sizes and not any("steps" in p for p in sizes)
        sets = robustness.nearby_sets(name, ROOT)
        base = {**{k: p.default for k, p in known.items()}, **ch.parameter_sets(name, ROOT)["ci"]}
        for values in sets.values():
            assert {k for k in values if values[k] != base[k]} <= set(sizes)
            ch.resolve_parameters(name, values, ch.FULL, ROOT)  # inside the stated ranges
        up, down = sets.values()
        low = {p: robustness._low(known[p].spec) for p in sizes}
        for p in sizes:
            b, u, d = ([x] if isinstance(x, int) else x for x in (base[p], up[p], down[p]))
            assert all(v == 0 or w >= 1.5 * v for v, w in zip(b, u)), (name, p)
            # a grid whose smallest points meet at the range's end loses the repeats
            assert all(v == 0 or w <= v / 1.5 or w == low[p] for v, w in zip(b, d)) or len(d) < len(b), (name, p)


def test_widths_per_layer_keep_their_length_and_grids_stay_grids():
    assert robustness.nearby_sets("digits", ROOT)["sizes x1.5"]["mlp_hidden"] == [96, 96]
    down = robustness.nearby_sets("zero_loss", ROOT)["sizes /1.5"]["depths"]
    assert down == sorted(set(down))


def test_a_fast_stop_names_a_parameter_and_a_value():
    assert robustness.names_a_fix("ParameterError: n_train must be <= d = 30", "zero_loss", ROOT)
    assert not robustness.names_a_fix("AssertionError: training did not converge: raise steps", "zero_loss", ROOT)
    assert not robustness.names_a_fix("AssertionError: the gain is 0.01", "zero_loss", ROOT)


def test_random_seeds_are_distinct_and_not_the_defaults():
    seeds = robustness.random_seeds(5)
    assert len(set(seeds)) == 5 and all(0 <= s < 10**6 for s in seeds)


def test_the_seeds_check_at_ci_starts_from_the_chapters_ci_set():
    assert robustness.at_set("zero_loss", "full") == {}
    ci = robustness.at_set("zero_loss", "ci")
    assert ci["n_seeds"] == 2 and ci["init_scales"] == [0.1, 0.03] and "seed" not in ci
