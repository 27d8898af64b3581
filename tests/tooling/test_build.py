"""The cached chapter execution behind the book build: what its key depends on (a tiny book)."""

import pytest
from tinybook import make_tiny_book

from stlearn.tooling import build
from stlearn.tooling import chapters as ch
from stlearn.verdicts import CLAIMS


def test_cache_reruns_only_what_changed(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    monkeypatch.setattr(ch, "library_hash", lambda: "v1")  # the library's hash, fixed while the library is edited
    first, cached = build.executed_chapter("tiny", "ci", root, progress=False)
    assert not cached
    again, cached = build.executed_chapter("tiny", "ci", root, progress=False)
    assert cached and again == first
    # the full set is a different key
    full, cached = build.executed_chapter("tiny", "full", root, progress=False)
    assert not cached and full != first
    # a change in the library invalidates the cache
    monkeypatch.setattr(ch, "library_hash", lambda: "v2")
    changed, cached = build.executed_chapter("tiny", "ci", root, progress=False)
    assert not cached and changed != first and not first.exists()


def test_execution_key_depends_on_source_and_values(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    k1 = ch.execution_key("tiny", {"n": 2}, root)
    assert k1 != ch.execution_key("tiny", {"n": 3}, root)
    path = root / "book" / "tiny.md"
    path.write_text(path.read_text().replace("# Tiny", "# Tiny, edited"))
    assert k1 != ch.execution_key("tiny", {"n": 2}, root)


def test_library_hash_covers_the_science_and_the_kernels_tooling_only(monkeypatch):
    """Editing the CLI, the build, the sweep or the regression tooling re-runs no chapter; the science does."""
    from pathlib import Path

    package = Path(ch.__file__).resolve().parents[1]
    read = Path.read_bytes
    base = ch.library_hash()

    def edited(name):
        monkeypatch.setattr(Path, "read_bytes", lambda p: read(p) + (b"# edited" if p.name == name else b""))
        try:
            return ch.library_hash()
        finally:
            monkeypatch.setattr(Path, "read_bytes", read)

    assert (package / "tooling" / "cli.py").is_file() and (package / "train.py").is_file()
    for tooling in ("cli.py", "build.py", "sweep.py", "regression.py", "chapters.py", "lint.py"):
        assert edited(tooling) == base, f"editing tooling/{tooling} changes the chapters' cache key"
    for kernel_side in ("notebook.py", "scheme.py", "train.py", "streams.py", "data.py"):
        assert edited(kernel_side) != base, f"editing {kernel_side} does not change the chapters' cache key"


def test_kernel_environment_reaches_the_kernel_and_leaves_ours_alone():
    """Chapter kernels start with kernel_env() (no progress bars, the thread count); os.environ is untouched."""
    import os

    import nbformat
    from nbclient import NotebookClient

    from stlearn.tooling.chapters import _kernel_manager, kernel_env

    before = dict(os.environ)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os; print(os.environ.get('TQDM_DISABLE'), os.environ.get('OMP_NUM_THREADS'))")])
    NotebookClient(nb, kernel_name="python3", kernel_manager_class=_kernel_manager(kernel_env(3))).execute()
    assert nb.cells[0].outputs[0]["text"].split() == ["1", "3"]
    assert dict(os.environ) == before


def _write_notebook(path, cells):
    import nbformat
    from nbformat.v4 import new_notebook

    nbformat.write(new_notebook(cells=cells), path)
    return path


def _executed_with_headline(path, **values):
    from nbformat.v4 import new_code_cell, new_output

    from stlearn.tooling.notebook import HEADLINE_MIME

    cell = new_code_cell("headline(...)", outputs=[new_output("display_data", data={HEADLINE_MIME: values})])
    return _write_notebook(path, [cell])


def test_findings_and_landing_are_built_from_the_headlines(tmp_path):
    executed = {
        "zero_loss": _executed_with_headline(tmp_path / "a.ipynb", claim="1", finding="Proved.", verdict="V0.",
                                             lead=True),
        "setting": _executed_with_headline(tmp_path / "b.ipynb", gap=1e-15),  # no claim: not a finding
        "intro": _write_notebook(tmp_path / "e.ipynb", []),  # no headline at all
        "linear_coincide": _executed_with_headline(tmp_path / "f.ipynb", claim="1", finding="F.", verdict="V1."),
        "nonlinear_decomposition": _executed_with_headline(
            tmp_path / "c.ipynb", claim="3", finding="X beats ST.", verdict="V3.", lead=True, primary="ST vs X",
            primary_gain=-0.0933, primary_low=-0.1236, primary_high=-0.0629),
    }
    page, landing, thumbs = build.findings(executed, build.claimed_headlines(executed))
    assert thumbs == {}  # no headline names a figure
    sections = page.split("## ")[1:]  # a section per claim that has findings, in the claims' order
    assert [s.splitlines()[0] for s in sections] == [CLAIMS["1"], CLAIMS["3"]]
    assert "{ref}`ch-zero-loss`" in sections[0] and "{ref}`ch-linear-coincide`" in sections[0]
    assert sections[0].index("V0.") < sections[0].index("V1.")  # the book's order within a claim
    assert "ST vs X: -0.093 [-0.124, -0.063]" in sections[1]  # as the chapters print it (interval_text)
    # the landing: a line per claim, its lead chapters' verdicts only, each linked
    assert landing.count("**") == 4 and "V1." not in landing
    assert "V0. ({ref}`chapter <ch-zero-loss>`)" in landing and "V3." in landing
    executed["digits"] = _executed_with_headline(tmp_path / "d.ipynb", claim="data", finding="F.")
    with pytest.raises(ValueError, match="digits: a headline with a claim needs its verdict and finding"):
        build.findings(executed, build.claimed_headlines(executed))
    executed["digits"] = _executed_with_headline(tmp_path / "d.ipynb", claim="1-3", finding="F.", verdict="V.")
    with pytest.raises(ValueError, match="digits: headline claim '1-3' is none of 1, 2, 3"):
        build.findings(executed, build.claimed_headlines(executed))


def test_findings_effect_is_printed_as_the_chapters_print_an_interval():
    """The primary comparison reads as in the chapters (stlearn.verdicts.interval_text): signed, fixed decimals,
    3 unless the headline gives primary_digits."""
    from stlearn.verdicts import interval_text

    h = {"primary": "ST vs ridge (%)", "primary_gain": -3.563, "primary_low": -9.101, "primary_high": 1.974}
    assert build._effect(h) == "ST vs ridge (%): -3.563 [-9.101, 1.974]"
    assert build._effect({**h, "primary_digits": 1}) == "ST vs ridge (%): -3.6 [-9.1, 2.0]"
    assert build._effect({**h, "primary_gain": 0.5}).endswith(
        interval_text({"gain": 0.5, "low": -9.101, "high": 1.974}))  # "+0.500": the sign always shown
    assert build._effect({"primary_gain": 1.0}) == ""  # no interval, no effect


def test_findings_row_shows_a_thumbnail_of_the_key_figure_linked_to_its_chapter(tmp_path):
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nbformat.v4 import new_code_cell, new_output

    from stlearn.tooling.notebook import HEADLINE_MIME

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([0, 1], [1, 0])
    png = io.BytesIO()
    fig.savefig(png, format="png")
    prefix = "application/papermill.record/"  # as myst-nb's glue writes it
    figure = new_output("display_data", data={f"{prefix}image/png": base64.b64encode(png.getvalue()).decode()},
                        metadata={"scrapbook": {"name": "fig_main", "mime_prefix": prefix}})
    head = new_output("display_data", data={HEADLINE_MIME: {"claim": "2", "finding": "F.", "verdict": "V.",
                                                            "figure": "fig_main"}})
    path = _write_notebook(tmp_path / "k.ipynb", [new_code_cell("", outputs=[o]) for o in (figure, head)])
    page, _, thumbs = build.findings({"digits": path}, build.claimed_headlines({"digits": path}))
    assert '<a href="digits.html" class="findings-thumb"><img src="../_static/thumbs/digits.png"' in page
    from PIL import Image

    assert Image.open(io.BytesIO(thumbs["digits.png"])).width == 2 * build.THUMB_WIDTH


def test_the_build_starts_the_longest_chapter_first(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    (root / build.COSTS).write_text("ci:\n  tiny: 1\n  failing: 50\nfull:\n  tiny: 9\n")
    assert build.expected_seconds(["tiny", "failing"], "ci", root) == {"tiny": 1.0, "failing": 50.0}
    assert build.expected_seconds(["tiny", "failing"], "full", root) == {"tiny": 9.0, "failing": 0.0}
    started = []
    monkeypatch.setattr(build, "executed_chapter", lambda name, *a: started.append(name) or (root / name, True))
    executed = build.execute_all(["tiny", "failing"], "ci", root, jobs=1, progress=False)
    assert started == ["failing", "tiny"] and list(executed) == ["tiny", "failing"]  # results in the book's order


def test_the_cached_duration_replaces_the_committed_estimate(tmp_path, monkeypatch):
    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    (root / build.COSTS).write_text("ci:\n  tiny: 1000\n")
    build.executed_chapter("tiny", "ci", root, progress=False)
    assert build.expected_seconds(["tiny"], "ci", root)["tiny"] < 1000


def test_the_committed_estimates_name_every_chapter_of_the_book():
    import yaml

    costs = yaml.safe_load((ch.repo_root() / build.COSTS).read_text())
    for param_set in (ch.FULL, ch.CI):
        assert set(costs[param_set]) == set(ch.chapters()), f"{build.COSTS}: {param_set} must list every chapter"


def test_the_build_records_the_wall_clock_time_of_its_executions(tmp_path, monkeypatch):
    import json

    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_ROOT", str(root))
    build.execute_all(["tiny"], "ci", root, jobs=1, progress=False)
    record = json.loads(build.last_execution_path("ci", root).read_text())
    assert record["executed"] == 1 and record["of"] == 1 and record["jobs"] == 1 and record["wall_seconds"] > 0
    build.execute_all(["tiny"], "ci", root, jobs=1, progress=False)  # all cached: the record stays
    assert json.loads(build.last_execution_path("ci", root).read_text()) == record
    times = build.execution_times({"tiny": build.executed_chapter("tiny", "ci", root, progress=False)[0]})
    text = build.execution_times_markdown(times, record)
    assert "ran 1 of the 1, 1 at a time" in text and f"in {record['wall_seconds']:.0f} s of wall-clock" in text


def test_the_site_names_its_repository_and_launches_chapters_on_binder(tmp_path, monkeypatch):
    import yaml

    root = make_tiny_book(tmp_path)
    monkeypatch.setenv("STLEARN_REPOSITORY_URL", "")
    monkeypatch.chdir(tmp_path)
    assert build.site_config(root) == (root / "_config.yml").read_text()  # no remote: no buttons
    monkeypatch.setenv("STLEARN_REPOSITORY_URL", "git@github.com:someone/stlearn-book.git")
    config = yaml.safe_load(build.site_config(root))
    assert config["repository"]["url"] == "https://github.com/someone/stlearn-book"
    assert config["html"]["use_repository_button"] and config["launch_buttons"]["binderhub_url"] == build.BINDER


def test_the_site_folds_every_code_cell_but_the_parameters():
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [new_markdown_cell("# Title\n\nText."), new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
             new_code_cell("run(n)"), new_code_cell("plot()", metadata={"tags": ["remove-input"]})]
    out = nbformat.reads(build.with_rerun_header(nbformat.writes(new_notebook(cells=cells)).encode(),
                                                 "*Re-run:* x").decode(), as_version=4)
    assert [c.metadata.get("tags", []) for c in out.cells[1:]] == [["parameters"], ["hide-input"], ["remove-input"]]
    assert "*Re-run:* x" in out.cells[0].source


def test_the_synthesis_page_shows_each_map_with_the_verdicts_that_read_it(tmp_path):
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nbformat.v4 import new_code_cell, new_output

    from stlearn.tooling.notebook import HEADLINE_MIME

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = io.BytesIO()
    fig.savefig(png, format="png")
    prefix = "application/papermill.record/"
    figure = new_output("display_data", data={f"{prefix}image/png": base64.b64encode(png.getvalue()).decode()},
                        metadata={"scrapbook": {"name": "fig-map", "mime_prefix": prefix}})
    head = new_output("display_data", data={HEADLINE_MIME: {"claim": "where", "finding": "F.", "verdict": "W.",
                                                            "figure": "fig-map"}})
    where = _write_notebook(tmp_path / "w.ipynb", [new_code_cell("", outputs=[o]) for o in (figure, head)])
    data = _executed_with_headline(tmp_path / "d.ipynb", claim="data", finding="F.", verdict="D.")
    executed = {"where_st_helps": where, "digits": data}
    body, images = build.synthesis(executed, build.claimed_headlines(executed))
    assert list(images) == ["where_st_helps.png"] and images["where_st_helps.png"] == png.getvalue()
    assert "## In ReLU networks" in body and "W. ({ref}`chapter <ch-where-st-helps>`)" in body
    assert f"## {CLAIMS['data']}" in body and "D." in body
