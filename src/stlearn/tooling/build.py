"""Build the book: execute chapters (cached), stage them, run Jupyter Book with warnings as errors.

Each chapter is executed by papermill at the chosen parameter set and cached
under ``_build/cache/<chapter>/<set>-<key>.ipynb``, where the key hashes the
chapter's source, the library's source and the parameter values: a rebuild
re-runs only chapters whose inputs changed, and editing ``src/`` re-runs all.

The executed notebooks and the other pages are staged in
``_build/stage/<set>/`` (only changed files are rewritten, so Sphinx's own
incremental build keeps working) and built with ``jupyter-book build -W``:
any cell error or Sphinx warning fails the build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat
import pandas as pd
import yaml
from tqdm import tqdm

from ..verdicts import CLAIMS, interval_text
from . import chapters as ch
from .notebook import headline_of

# chapter MyST sources are staged here and published by book/_ext/stlearn_site.py
SOURCES = "_chapter_sources"


def site_dir(param_set: str, root: Path) -> Path:
    return root / "_build" / ("html" if param_set == ch.FULL else f"html-{param_set}")


def executed_chapter(name: str, param_set: str, root: Path, progress: bool = True,
                     threads: int | None = None) -> tuple[Path, bool]:
    """The cached executed notebook of ``name`` at ``param_set``; returns ``(path, was_cached)``."""
    values = ch.resolve_parameters(name, None, param_set, root)
    cache = root / "_build" / "cache" / name
    target = cache / f"{param_set}-{ch.execution_key(name, values, root)}.ipynb"
    if target.is_file():
        return target, True
    ch.execute(name, target, None, param_set, root, progress=progress, threads=threads)
    for stale in cache.glob(f"{param_set}-*.ipynb"):
        if stale != target:
            stale.unlink()
    return target, False


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def execution_times(executed: dict[str, Path]) -> pd.DataFrame:
    """Seconds each chapter took to execute, read from papermill's metadata."""
    rows = []
    for name, path in executed.items():
        meta = nbformat.read(path, as_version=4).metadata
        rows.append({"chapter": name, "parameter set": meta["stlearn"]["parameter_set"],
                     "seconds": round(float(meta["papermill"]["duration"]), 1)})
    return pd.DataFrame(rows)


def _set_value(p: ch.Parameter, overrides: dict) -> str:
    """The value in effect in a parameter set; bold where the set changes the full default."""
    return f"**`{overrides[p.name]!r}`**" if p.name in overrides else f"`{p.default!r}`"


def execution_times_markdown(times: pd.DataFrame, last: dict | None = None) -> str:
    """The table of :func:`execution_times` with a total row, the machine it was measured on, and the
    wall-clock time of the last build that executed chapters (``last``, as :func:`execute_all` records it)."""
    total = pd.DataFrame([{"chapter": "**all chapters**", "parameter set": times["parameter set"].iloc[0],
                           "seconds": round(float(times["seconds"].sum()), 1)}])
    table = pd.concat([times, total], ignore_index=True).to_markdown(index=False)
    wall = ""
    if last:
        wall = (f" The last build that executed chapters ran {last['executed']} of the {last['of']}, "
                f"{last['jobs']} at a time on {last['cores']} cores, in {last['wall_seconds']:.0f} s of wall-clock "
                "time (the total above adds up each chapter's own time).")
    return (f"{table}\n\nMeasured on a machine with {os.cpu_count()} CPU cores; a cached chapter keeps "
            f"the time of the run that produced it.{wall}\n")


THUMB_WIDTH = 240  # displayed pixels of a findings thumbnail (its image has twice as many across)


def glued_png(notebook: Path, name: str) -> bytes:
    """The PNG of the figure an executed chapter glued as ``name``."""
    import base64

    for cell in nbformat.read(notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            book = out.get("metadata", {}).get("scrapbook", {})
            key = book.get("mime_prefix", "") + "image/png"  # myst-nb's glue stores it under a prefixed type
            if book.get("name") == name and key in out.get("data", {}):
                return base64.b64decode(out["data"][key])
    raise ValueError(f"{notebook}: no figure glued as {name!r} (the headline's figure=)")


def thumbnail(png: bytes, width: int = THUMB_WIDTH) -> bytes:
    """``png`` scaled down to ``width`` pixels wide."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    height = max(1, round(image.height * width / image.width))
    out = io.BytesIO()
    image.convert("RGB").resize((width, height), Image.LANCZOS).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _ref(name: str, text: str | None = None) -> str:
    label = f"ch-{name.replace('_', '-')}"
    return f"{{ref}}`{text} <{label}>`" if text else f"{{ref}}`{label}`"


def _effect(h: dict) -> str:
    """The headline's primary comparison as ``name: +g [low, high]``, or ``""``: signed, with fixed decimals, as
    the chapters print an interval (:func:`stlearn.verdicts.interval_text`), ``primary_digits`` of them (3 where
    the headline does not say)."""
    if not {"primary_gain", "primary_low", "primary_high"} <= set(h):
        return ""
    effect = interval_text({"gain": h["primary_gain"], "low": h["primary_low"], "high": h["primary_high"]},
                           int(h.get("primary_digits", 3)))
    return f"{h.get('primary', 'primary')}: {effect}"


def claimed_headlines(executed: dict[str, Path]) -> dict[str, dict]:
    """The headlines that name a paper ``claim`` (:data:`stlearn.verdicts.CLAIMS`), in the book's order."""
    found = {}
    for name, path in executed.items():
        try:
            h = headline_of(path)
        except ValueError:  # a page without results
            continue
        if "claim" not in h:
            continue
        if str(h["claim"]) not in CLAIMS:
            raise ValueError(f"{name}: headline claim {h['claim']!r} is none of {', '.join(CLAIMS)}")
        if "verdict" not in h or "finding" not in h:
            raise ValueError(f"{name}: a headline with a claim needs its verdict and finding (headline(...))")
        found[name] = h
    return found


def findings(executed: dict[str, Path], heads: dict[str, dict]) -> tuple[str, str, dict[str, bytes]]:
    """The findings page, the landing page's verdicts, and the findings' thumbnails (``{file name: PNG}``,
    staged in ``book/_static/thumbs/``).

    Built from the executed chapters' headlines (``heads``, :func:`claimed_headlines`), so neither can drift
    from them. The findings page has a section per claim, a paragraph per chapter: its one-sentence
    ``verdict``, its ``primary`` comparison with ``primary_gain [primary_low, primary_high]``, and a
    thumbnail of its key ``figure`` linked to it. The landing page has a line per claim with the verdicts of
    its ``lead`` chapters, each linked.
    """
    thumbs, page, landing = {}, [], []
    for claim, title in CLAIMS.items():
        members = {n: h for n, h in heads.items() if str(h["claim"]) == claim}
        if not members:
            continue
        page.append(f"## {title}\n")
        for name, h in members.items():
            figure = ""
            if "figure" in h:  # raw HTML: a chapter is a notebook in the staged book, so a Markdown link cannot name it
                thumbs[f"{name}.png"] = thumbnail(glued_png(executed[name], h["figure"]), 2 * THUMB_WIDTH)
                figure = (f'<a href="{name}.html" class="findings-thumb"><img src="../_static/thumbs/{name}.png" '
                          f'alt="The key figure of this chapter" width="{THUMB_WIDTH}"></a>')
            effect = _effect(h)
            effect = f" *Primary comparison:* {effect}." if effect else ""
            page.append(f"{figure}\n\n**{_ref(name)}.** {h['verdict']}{effect}\n\n"
                        '<div class="findings-end"></div>\n')
        leads = [f"{h['verdict']} ({_ref(name, 'chapter')})" for name, h in members.items() if h.get("lead")]
        if leads:
            landing.append(f"**{title}**\n: " + "\n: ".join(leads) + "\n")
    return "\n".join(page), "\n".join(landing), thumbs


# The synthesis page's maps: a chapter, the heading its key figure (its headline's ``figure``) goes under, and the
# chapters whose verdicts are read with it
MAPS = (("linear_proportional", "In linear networks: the exact region", ("linear_proportional",
                                                                          "linear_teacher_knowledge")),
        ("where_st_helps", "In ReLU networks: the measured region", ("where_st_helps", "nonlinear_teacher_knowledge")))
MAP_WIDTH = 720  # displayed pixels of a synthesis map (its image has more than twice as many across)


def _width(png: bytes) -> int:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).width


def synthesis(executed: dict[str, Path], heads: dict[str, dict]) -> tuple[str, dict[str, bytes]]:
    """The synthesis page's body and its images (``{file name: PNG}``, staged in ``book/_static/maps/``): the
    exact region from the linear theory and the region measured in networks, each the key figure of its chapter
    (:data:`MAPS`) with the verdicts that read it, then the verdicts on real data; built from the executed
    chapters and their headlines (``heads``, :func:`claimed_headlines`), so it cannot drift from them."""
    parts, images = [], {}
    for name, title, readers in MAPS:
        if name not in heads or "figure" not in heads[name]:
            continue
        images[f"{name}.png"] = png = glued_png(executed[name], heads[name]["figure"])
        verdicts = "\n".join(f"- {heads[n]['verdict']} ({_ref(n, 'chapter')})" for n in readers if n in heads)
        parts.append(f"## {title}\n\n"
                     f'<a href="../_static/maps/{name}.png"><img src="../_static/maps/{name}.png" '
                     f'alt="The key figure of {name.replace("_", " ")}" width="{min(MAP_WIDTH, _width(png) // 2)}" '
                     f'class="synthesis-map"></a>\n\n{verdicts}\n')
    data = [f"- {h['verdict']} ({_ref(n, 'chapter')})" for n, h in heads.items() if str(h["claim"]) == "data"]
    if data:
        parts.append(f"## {CLAIMS['data']}\n\n" + "\n".join(data) + "\n")
    return "\n".join(parts), images


def rerun_header(name: str, param_set: str, seconds: float) -> str:
    """The line under a chapter's title: how to re-run it, and what the run behind this page cost."""
    other = "" if param_set == ch.FULL else f" --set {param_set}"
    return (f"*Re-run:* `stlearn run {name}{other}` (or `-p NAME VALUE` to change a parameter, "
            f"{{ref}}`ch-rerun`) · *cost:* {seconds:.0f} s at the `{param_set}` settings on the machine "
            "that built this site")


SHOWN_TAGS = {"parameters", "remove-input", "remove-cell", "hide-input", "hide-cell"}


def with_code_folded(nb) -> None:
    """Every code cell's source behind a toggle on the site (its outputs shown), except the parameters cell,
    which a reader changes to re-run the chapter, and cells already hidden or removed."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code" and not SHOWN_TAGS & set(tags):
            tags.append("hide-input")


def with_rerun_header(notebook: bytes, header: str) -> bytes:
    """The executed notebook with ``header`` as a paragraph under the title of its first markdown cell, and its
    code folded (:func:`with_code_folded`)."""
    nb = nbformat.reads(notebook.decode(), as_version=4)
    with_code_folded(nb)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    lines = first.source.split("\n")
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    first.source = "\n".join(lines[:title + 1] + ["", header, ""] + lines[title + 1:])
    return nbformat.writes(nb).encode()


def parameters_table(names) -> str:
    """Markdown tables of every chapter's parameters: meaning, range, full default and other sets."""
    parts = []
    for name in names:
        params = ch.parameters(name)
        sets = ch.parameter_sets(name)
        rows = [{"parameter": f"`{p.name}`", "meaning": p.description, "valid values": f"`{p.spec}`",
                 "full": f"`{p.default!r}`",
                 **{s: _set_value(p, v) for s, v in sets.items() if s != ch.FULL}}
                for p in params.values()]
        # a choice "a | b" stays in its cell: a table's pipes are escaped
        cells = pd.DataFrame(rows).map(lambda v: v.replace("|", "\\|") if isinstance(v, str) else v)
        parts.append(f"### `{name}`\n\n" + cells.to_markdown(index=False) + "\n")
    return "\n".join(parts)


COSTS = Path("book") / "parameters" / "costs.yaml"  # committed estimates, for a build with an empty cache


def _duration(notebook: Path) -> float:
    return float(nbformat.read(notebook, as_version=4).metadata["papermill"]["duration"])


def expected_seconds(names, param_set: str, root: Path) -> dict[str, float]:
    """What each chapter should take at ``param_set``, to start the longest first: the duration of its newest
    executed notebook in the cache (whatever its key), else the committed estimate of ``COSTS``, else 0."""
    costs = yaml.safe_load((root / COSTS).read_text()) if (root / COSTS).is_file() else {}
    estimates = {}
    for name in names:
        cached = sorted((root / "_build" / "cache" / name).glob(f"{param_set}-*.ipynb"), key=os.path.getmtime)
        estimates[name] = _duration(cached[-1]) if cached else float(costs.get(param_set, {}).get(name, 0.0))
    return estimates


def execute_all(names, param_set: str, root: Path, jobs: int = 1, progress: bool = True) -> dict[str, Path]:
    """Execute (or reuse) chapters, ``jobs`` at a time, the longest first (:func:`expected_seconds`: with two
    jobs, a long chapter started last would run alone at the end); each kernel gets ``1/jobs`` of the cores."""
    bar = tqdm(total=len(names), desc=f"chapters ({param_set})", disable=not progress)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    cost = expected_seconds(names, param_set, root)
    start, fresh = time.time(), 0
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(executed_chapter, n, param_set, root, progress and jobs == 1, threads): n
                       for n in sorted(names, key=lambda n: -cost[n])}
            executed = {}
            for fut in as_completed(futures):
                executed[futures[fut]], cached = fut.result()
                fresh += not cached
                bar.set_postfix_str(futures[fut])
                bar.update()
    finally:
        bar.close()
    if fresh:
        record = {"executed": fresh, "of": len(names), "jobs": jobs, "cores": os.cpu_count(),
                  "wall_seconds": round(time.time() - start, 1)}
        _write_if_changed(last_execution_path(param_set, root), json.dumps(record).encode())
    return {n: executed[n] for n in names}


def last_execution_path(param_set: str, root: Path) -> Path:
    """Where the build records the wall-clock time of its last execution of chapters at ``param_set``."""
    return root / "_build" / "cache" / f"last-execution-{param_set}.json"


BINDER = "https://mybinder.org"


def repository_url(root: Path) -> str | None:
    """Where the book's repository is published: ``STLEARN_REPOSITORY_URL``, else the clone's ``origin`` remote
    (as an https address), else None (a local clone: no repository or launch buttons)."""
    url = os.environ.get("STLEARN_REPOSITORY_URL")
    if not url:
        found = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True,
                               text=True, check=False)
        url = found.stdout.strip() if found.returncode == 0 else ""
    if url.startswith("git@"):  # git@github.com:org/repo.git
        url = "https://" + url[4:].replace(":", "/", 1)
    url = url.removesuffix(".git").rstrip("/")
    return url if url.startswith("https://") else None


def site_config(root: Path) -> str:
    """``_config.yml`` as the site is built with it: where the book's repository is published
    (:func:`repository_url`), its repository and issues buttons and a Binder launch button on every chapter
    (which opens the chapter's MyST source there: ``book/_ext/stlearn_site.py``)."""
    text = (root / "_config.yml").read_text()
    url = repository_url(root)
    if url is None:
        return text
    config = yaml.safe_load(text)
    config["repository"] = {"url": url, "branch": os.environ.get("STLEARN_REPOSITORY_BRANCH", "main")}
    config.setdefault("html", {}).update(use_repository_button=True, use_issues_button=True)
    config.setdefault("launch_buttons", {}).update(binderhub_url=BINDER)
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def stage(param_set: str, root: Path, progress: bool = True, jobs: int = 1) -> tuple[Path, dict[str, Path]]:
    """Execute (or reuse) every chapter and lay out the book source in the stage folder."""
    stage_dir = root / "_build" / "stage" / param_set
    names = list(ch.chapters(root))
    executed = execute_all(names, param_set, root, jobs, progress)

    wanted: dict[Path, bytes] = {stage_dir / "_toc.yml": (root / "_toc.yml").read_bytes(),
                                 stage_dir / "_config.yml": site_config(root).encode()}
    chapter_sources = {p.resolve() for p in ch.chapters(root).values()}
    for f in (root / "book").rglob("*"):
        if f.is_file() and f.resolve() not in chapter_sources and "_generated" not in f.parts:
            wanted[stage_dir / f.relative_to(root)] = f.read_bytes()
    times = execution_times(executed)
    seconds = dict(zip(times["chapter"], times["seconds"]))
    home = Path(ch.toc_files(root)[0]).name
    for name, path in executed.items():
        source = ch.chapter_path(name, root)
        rel = source.relative_to(root)
        notebook = path.read_bytes()
        if name != home:
            notebook = with_rerun_header(notebook, rerun_header(name, param_set, seconds[name]))
        wanted[stage_dir / rel.with_suffix(".ipynb")] = notebook
        # published next to the notebook, with a ".md" download button, by book/_ext/stlearn_site.py
        wanted[stage_dir / SOURCES / rel] = source.read_bytes()
    for f in (root / "src" / "stlearn").rglob("*.py"):  # for the chapters' literalinclude of the code that ran
        wanted[stage_dir / f.relative_to(root)] = f.read_bytes()
    gen = stage_dir / "book" / "_generated"
    last = last_execution_path(param_set, root)
    last = json.loads(last.read_text()) if last.is_file() else None
    wanted[gen / "execution_times.md"] = execution_times_markdown(times, last).encode()
    wanted[gen / "parameters.md"] = parameters_table(names).encode()
    heads = claimed_headlines(executed)  # each executed chapter's headline, read once
    page, landing, thumbs = findings(executed, heads)
    wanted[gen / "findings.md"] = page.encode()
    wanted[gen / "claims.md"] = landing.encode()
    for file, png in thumbs.items():  # html_static_path (book/_static) is copied to the site's _static/
        wanted[stage_dir / "book" / "_static" / "thumbs" / file] = png
    body, maps = synthesis(executed, heads)
    wanted[gen / "synthesis.md"] = body.encode()
    for file, png in maps.items():
        wanted[stage_dir / "book" / "_static" / "maps" / file] = png

    for f in list(stage_dir.rglob("*")) if stage_dir.exists() else []:
        if f.is_file() and f not in wanted and "_build" not in f.relative_to(stage_dir).parts:
            f.unlink()
    for path, data in wanted.items():
        _write_if_changed(path, data)
    return stage_dir, executed


def build_book(param_set: str = ch.FULL, root: Path | None = None, progress: bool = True, jobs: int = 1) -> Path:
    """Execute, stage and build; returns the folder of the static site."""
    root = root or ch.repo_root()
    start = time.time()
    stage_dir, executed = stage(param_set, root, progress, jobs)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(stage_dir),
           "--builder", "html", "--warningiserror", "--keep-going"]
    result = subprocess.run(cmd, cwd=root, check=False)
    if result.returncode != 0:
        raise SystemExit(f"jupyter-book build failed (exit {result.returncode}); see the warnings above")
    site = site_dir(param_set, root)
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(stage_dir / "_build" / "html", site)
    print(f"site ({param_set} parameters) written to {site} in {time.time() - start:.0f} s")
    return site
