"""The book as a reader meets it: chapter structure, the built site, and a real browser.

Every check runs for each chapter of ``stlearn.tooling.chapters.chapters()``, so a new
chapter is covered as soon as it is in ``_toc.yml``.

1. Sources (fast): shape of a chapter (label, opening, takeaway), sphinx-proof
   blocks with labels, citations that exist, glued numbers and figures (no
   number typed by hand in the prose after the parameters cell, every figure
   glued with a name and caption and referenced).
2. The built ci site (HTML): numbered theorems, equations and figures, the
   download links (executed notebook and MyST source), the re-run page's
   generated tables.
3. Headless Chromium over the served site: every page loads without console
   errors or off-site requests, math is typeset by the local MathJax (no LaTeX
   source left), every image loads, every internal link and anchor resolves;
   at 1280 and at 390 px (a phone) nothing wider than the window, no code wrapped, every raster image with
   twice the pixels it is shown at, and at 1280 px no equation that needs a scroll bar and the landing page's
   verdicts on the three claims in the first 800 px; a screenshot of each page at each width goes to
   ``_build/screenshots/ci/<width>/`` (``_build/screenshots/full/<width>/`` with ``make site-check``, which reads
   the full site instead).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jupytext
import nbformat
import pytest

from stlearn.tooling import chapters as ch
from stlearn.tooling import regression
from stlearn.tooling.notebook import HEADLINE_MIME, MIN_TEXT_PT

ROOT = ch.repo_root()
CHAPTERS = list(ch.chapters(ROOT))

pytestmark = pytest.mark.skipif(not CHAPTERS, reason="the book has no chapters")

BIB = (ROOT / "book" / "references.bib").read_text()
BIB_KEYS = set(re.findall(r"@\w+\{([^,\s]+),", BIB))
OPENING = re.compile(r"^\*\*What this chapter \w+\.\*\*")  # "shows", or "fixes" for the setting
PROOF_KINDS = ("theorem", "lemma", "proposition", "corollary", "definition", "conjecture", "axiom",
               "example", "remark", "assumption", "criterion", "property", "observation")


# --------------------------------------------------------------------------- reading the sources
def markdown_cells(name: str) -> list[str]:
    return [c.source for c in jupytext.read(ch.chapter_path(name, ROOT)).cells if c.cell_type == "markdown"]


def cells(name: str):
    return jupytext.read(ch.chapter_path(name, ROOT)).cells


def strip_markup(text: str) -> str:
    """Prose only: without math, code, roles, directive fences and option lines."""
    text = re.sub(r"\$\$.*?\$\$(\s*\([\w:-]+\))?", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " MATH ", text)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " REF ", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"^\s*(:{3,}|`{3,}).*$", " ", text, flags=re.M)
    text = re.sub(r"^\s*:[\w-]+:.*$", " ", text, flags=re.M)
    text = re.sub(r"^\([\w:-]+\)=\s*$", " ", text, flags=re.M)
    return text


def prose_after_parameters(name: str) -> str:
    seen, parts = False, []
    for cell in cells(name):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            seen = True
        elif seen and cell.cell_type == "markdown":
            parts.append(cell.source)
    return "\n\n".join(parts)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def sentences(paragraph: str) -> list[str]:
    flat = " ".join(strip_markup(paragraph).split())
    flat = re.sub(r"\b(e\.g|i\.e|cf|etc|vs|Fig|Eq|et al)\.", r"\1", flat)
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(])", flat) if s.strip()]


def reference_notebook(name: str):
    path = regression.reference_path(name, ROOT)
    if not path.is_file():
        pytest.fail(f"no regression reference for {name}: run `stlearn refs {name}`")
    return nbformat.read(path, as_version=4)


def glued_names(nb) -> set[str]:
    return {o.get("metadata", {}).get("scrapbook", {}).get("name")
            for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])} - {None}


# --------------------------------------------------------------------------- 1. sources
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_opens_with_label_title_and_what_it_shows(name):
    text = "\n\n".join(markdown_cells(name))
    head = [l for l in text.splitlines() if l.strip()][:2]
    label = f"(ch-{name.replace('_', '-')})="
    assert head and head[0].strip() in (label, f"(ch-{name})="), \
        f"{name}: the first line must be the label {label} (got {head[:1]})"
    assert len(head) > 1 and head[1].startswith("# "), f"{name}: a '# Title' must follow the label"
    opening = next((p for p in paragraphs(text) if OPENING.match(p)), None)
    assert opening is not None, f"{name}: the chapter must open with a '**What this chapter shows.**' paragraph"
    first_section = text.find("\n## ")
    assert first_section < 0 or text.find(opening) < first_section, \
        f"{name}: 'What this chapter shows' must come before the first section"
    body = OPENING.sub("", opening)
    n = len(sentences(body))
    assert 1 <= n <= 4, f"{name}: the opening should say what the chapter shows in two or three sentences; got {n}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_ends_with_its_takeaway(name):
    last = paragraphs(markdown_cells(name)[-1])[-1]
    assert last.startswith("**In practice.**"), \
        f"{name}: the last paragraph must be the takeaway, starting '**In practice.**'; got {last[:60]!r}"
    assert len(sentences(last.removeprefix("**In practice.**"))) >= 1


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_checks_its_claims_and_lists_them_in_one_box(name):
    code = [c for c in cells(name) if c.cell_type == "code"]
    bare = [line.strip() for c in code for line in c.source.splitlines() if line.strip().startswith("assert ")]
    assert not bare, f"{name}: state a claim with stlearn.tooling.notebook.check(claim, holds), not assert: {bare[:2]}"
    boxes = [c for c in code if "show_checks()" in c.source]
    assert len(boxes) == 1 and "remove-input" in boxes[0].metadata.get("tags", []), \
        f"{name}: one cell, its input removed, must show the chapter's checks (show_checks())"
    shown = [o for c in reference_notebook(name).cells for o in c.get("outputs", [])
             if "show_checks()" in c.get("source", "") and "text/html" in o.get("data", {})]
    assert shown and "stlearn-checks" in shown[0]["data"]["text/html"], f"{name}: the reference shows no checks box"


@pytest.mark.parametrize("name", CHAPTERS)
def test_results_tables_are_shown_as_tables_not_printed_text(name):
    code = [c.source for c in cells(name) if c.cell_type == "code"]
    printed = [line.strip() for src in code for line in src.splitlines() if ".to_string(" in line]
    assert not printed, f"{name}: show tables with stlearn.tooling.notebook.show_table, not print: {printed[:3]}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_plotting_code_is_behind_a_toggle(name):
    for c in cells(name):
        if c.cell_type == "code" and "glue_figure(" in c.source:
            tags = c.metadata.get("tags", [])
            assert {"hide-input", "remove-input", "remove-cell"} & set(tags), \
                f"{name}: a cell that draws a figure shows its code in full; tag it hide-input: {c.source[:80]!r}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_claims_are_sphinx_proof_blocks_with_labels(name):
    text = "\n".join(markdown_cells(name))
    for kind in PROOF_KINDS:
        assert not re.search(rf"^\*\*{kind}\b", text, flags=re.M | re.I), \
            f"{name}: write the {kind} as a ':::{{prf:{kind}}}' block, not in bold text"
    blocks = re.findall(r"^(:{3,}|`{3,})\{prf:(\w+)\}[^\n]*\n((?::[^\n]*\n)*)", text, flags=re.M)
    for _, kind, options in blocks:
        if kind in PROOF_KINDS:
            assert ":label:" in options, f"{name}: every prf:{kind} needs a :label: to be referenced"
    for label in re.findall(r"\{prf:ref\}`(?:[^`<]*<)?([^`>]+)>?`", text):
        assert re.search(rf":label:\s*{re.escape(label)}\s*$", _book_text(), flags=re.M), \
            f"{name}: {{prf:ref}} to unknown label {label}"
    for label in re.findall(r"\{eq\}`([^`]+)`", text):
        assert re.search(rf"\$\$\s*\({re.escape(label)}\)", _book_text()), \
            f"{name}: {{eq}} to unknown equation label {label}"


@functools.lru_cache(maxsize=1)
def _book_text() -> str:
    return "\n".join((ROOT / f"{page}.md").read_text() for page in ch.toc_files(ROOT)
                     if (ROOT / f"{page}.md").is_file())


@pytest.mark.parametrize("name", CHAPTERS)
def test_citations_exist_in_the_bibliography(name):
    text = "\n".join(markdown_cells(name))
    keys = {k.strip() for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text) for k in group.split(",")}
    assert keys, f"{name}: cite the works the chapter relies on ({{cite:t}}`key` with keys of book/references.bib)"
    missing = keys - BIB_KEYS
    assert not missing, f"{name}: cited keys missing from book/references.bib: {sorted(missing)}"


def test_bibliography_keys_are_unique_and_the_key_works_are_cited():
    keys = re.findall(r"@\w+\{([^,\s]+),", BIB)
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate keys in references.bib: {duplicates}"
    cited = {k.strip() for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", _book_text()) for k in group.split(",")}
    for key in ("hong2021student", "romero2015fitnets", "hinton2015distilling", "saxe2014exact"):
        assert key in cited, f"{key} is in the bibliography but cited nowhere in the book"
    assert cited & {"gunasekar2018implicit", "soudry2018implicit"}, "cite the implicit bias of gradient descent"


@pytest.mark.parametrize("name", CHAPTERS)
def test_numbers_in_the_prose_are_glued_not_typed(name):
    """After the parameters cell, results are quoted with {glue:text}: no decimal number typed by hand."""
    prose = strip_markup(prose_after_parameters(name))
    typed = re.findall(r"(?<![\w.])\d+\.\d+(?:[eE][-+]?\d+)?|(?<![\w.])\d+[eE][-+]?\d+", prose)
    assert not typed, f"{name}: numbers typed in the prose {typed}; glue them (glue_numbers, {{glue:text}})"


@pytest.mark.parametrize("name", CHAPTERS)
def test_glued_names_exist_and_figures_have_name_caption_and_reference(name):
    source = ch.chapter_path(name, ROOT).read_text()
    glued = glued_names(reference_notebook(name))
    used = set(re.findall(r"\{glue(?::\w+)?\}`([^`]+)`", source))
    assert used <= glued, f"{name}: quoted but never glued: {sorted(used - glued)}"
    figures = re.findall(r"^(:{3,}|`{3,})\{glue:figure\}\s*(\S+)\s*\n(.*?)^\1\s*$", source, flags=re.M | re.S)
    shown = {fig for _, fig, _ in figures}
    for _, fig, body in figures:
        assert fig in glued, f"{name}: figure {fig} is never glued"
        assert re.search(rf"^:name:\s*{re.escape(fig)}\s*$", body, flags=re.M), f"{name}: {fig} needs :name: {fig}"
        caption = "\n".join(l for l in body.splitlines() if not l.strip().startswith(":")).strip()
        assert len(caption.split()) >= 5, f"{name}: figure {fig} needs a caption"
        assert f"{{numref}}`{fig}`" in source, f"{name}: refer to {fig} in the text with {{numref}}`{fig}`"
    made = set(re.findall(r"glue_figure\(\s*[\"']([^\"']+)[\"']", source))
    assert made <= shown, f"{name}: glued figures never shown with {{glue:figure}}: {sorted(made - shown)}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_figure_text_is_readable_where_shown(name):
    # glue_figure records each figure's smallest text, in points at the size the site shows it
    sizes = {o["metadata"]["scrapbook"]["name"]: o["metadata"].get("image/png", {}).get("text_pt")
             for c in reference_notebook(name).cells for o in c.get("outputs", [])
             if "scrapbook" in o.get("metadata", {}) and any(k.endswith("image/png") for k in o.get("data", {}))}
    small = {k: v for k, v in sizes.items() if v is None or v < MIN_TEXT_PT}
    assert not small, f"{name}: figures whose smallest text shows under {MIN_TEXT_PT:g} pt (pt): {small}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_no_figure_shown_outside_a_captioned_glue(name):
    for cell in reference_notebook(name).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or {"remove-output", "remove-cell"} & set(tags):
            continue
        for out in cell.get("outputs", []):
            assert "image/png" not in out.get("data", {}), \
                f"{name}: a cell shows a figure without caption; glue it (glue_figure) and tag the cell " \
                f"remove-output:\n{cell.source[:200]}"


def _headline(name: str) -> dict:
    return next((o["data"][HEADLINE_MIME] for c in reference_notebook(name).cells for o in c.get("outputs", [])
                 if HEADLINE_MIME in o.get("data", {})), {})


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_front_of_the_book_links_the_chapter(name):
    """Every chapter is reachable from the front: one that names a claim has its verdict on the findings page
    (generated from its headline), any other is linked from the landing page's text."""
    landing = (ROOT / f"{ch.toc_files(ROOT)[0]}.md").read_text()
    headline = _headline(name)
    if "claim" in headline:
        assert "_generated/findings.md" in (ROOT / "book" / "findings.md").read_text()
        assert "_generated/claims.md" in landing, "the landing page must include the generated verdicts"
        assert headline.get("finding") and headline.get("verdict"), f"{name}: a claim needs a finding and a verdict"
    else:
        link = re.compile(rf"\{{(ref|doc)\}}`[^`]*(ch-{name.replace('_', '-')}|ch-{name}|{name})>?`")
        assert link.search(landing), f"the landing page must link {name}: give its headline a claim, a verdict " \
            f"and a finding, or link it with {{ref}}`ch-{name.replace('_', '-')}`"


# --------------------------------------------------------------------------- 2. the built site
def page_of(name: str) -> str:
    return ch.chapter_path(name, ROOT).relative_to(ROOT).with_suffix(".html").as_posix()


def html(site: Path, page: str) -> str:
    return (site / page).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_site_numbers_claims_equations_and_figures(ci_site, name):
    page = html(ci_site.path, page_of(name))
    source = ch.chapter_path(name, ROOT).read_text()
    for kind, label in re.findall(r"\{prf:(\w+)\}[^\n]*\n(?::[^\n]*\n)*?:label:\s*(\S+)", source):
        if kind in PROOF_KINDS:
            number, anchor = rf'caption-number">{kind.title()} \d+', rf'id="{re.escape(label)}"'
            assert re.search(rf"{anchor}.*?{number}", page, flags=re.S | re.I) \
                or re.search(rf"{number}.{{0,400}}{anchor}", page, flags=re.S | re.I), \
                f"{name}: {kind} {label} is not numbered on the page"
    for label in re.findall(r"\$\$\s*\(([\w:-]+)\)", source):
        assert re.search(rf'id="equation-{re.escape(label)}".{{0,300}}class="eqno">\(\d', page, flags=re.S), \
            f"{name}: equation {label} has no number on the page"
    for fig in re.findall(r"\{glue:figure\}\s*(\S+)", source):
        assert re.search(rf'id="{re.escape(fig)}".*?caption-number">Fig\. [\d.]+', page, flags=re.S), \
            f"{name}: figure {fig} is not a numbered figure on the page"


@pytest.mark.slow
def test_findings_page_and_landing_verdicts_link_every_claimed_chapter(ci_site):
    """The findings page (generated from the headlines): a section per claim, each claimed chapter's verdict
    linked to it with a thumbnail of its key figure; the landing page: the paper's three claims, each with
    its lead chapters' verdicts, linked."""
    from bs4 import BeautifulSoup

    from stlearn.verdicts import CLAIMS

    claimed = [n for n in CHAPTERS if "claim" in _headline(n)]
    main = BeautifulSoup(html(ci_site.path, "book/findings.html"), "html.parser").find("main")
    titles = [h.get_text(" ", strip=True).rstrip("#").strip() for h in main.find_all("h2")]
    assert [t for t in titles if t in CLAIMS.values()] == list(CLAIMS.values()), titles  # a section per claim
    for name in claimed:
        thumb = main.find("a", class_="findings-thumb", href=re.compile(rf"^{name}\.html"))
        assert thumb is not None and thumb.find("img"), f"{name}: no thumbnail of its key figure linked to it"
        assert (ci_site.path / "book" / thumb.find("img")["src"]).is_file(), f"{name}: thumbnail missing"
        assert main.find("a", href=re.compile(rf"^{name}\.html#"), string=True) or main.find(
            "a", href=re.compile(rf"^{name}\.html")), f"{name}: its verdict does not link it"
    landing = BeautifulSoup(html(ci_site.path, page_of_home()), "html.parser").find("main")
    terms = [dt.get_text(" ", strip=True) for dt in landing.find_all("dt")]
    for claim in ("1", "2", "3"):
        assert CLAIMS[claim] in terms, f"the landing page lacks claim {claim}'s verdicts"
    for dt in landing.find_all("dt"):
        verdicts = dt.find_next_sibling("dd")
        assert verdicts is not None and verdicts.find("a"), f"{dt.get_text()}: no verdict linked to its chapter"


def page_of_home() -> str:
    return f"{ch.toc_files(ROOT)[0]}.html"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_site_offers_notebook_and_source_downloads(ci_site, name):
    page = html(ci_site.path, page_of(name))
    rel = ch.chapter_path(name, ROOT).relative_to(ROOT)
    for suffix in (".ipynb", ".md"):
        target = f"_sources/{rel.with_suffix(suffix).as_posix()}"
        assert re.search(rf'href="(\.\./)*{re.escape(target)}"', page), f"{name}: no download link to {target}"
        assert (ci_site.path / target).is_file(), f"{name}: {target} is linked but not in the site"
    assert (ci_site.path / "_sources" / rel).read_bytes() == ch.chapter_path(name, ROOT).read_bytes()
    nb = nbformat.read(ci_site.path / "_sources" / rel.with_suffix(".ipynb"), as_version=4)
    assert nb.metadata["stlearn"]["chapter"] == name
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{name}: the notebook offered is not executed"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), \
        f"{name}: the downloaded notebook must keep its parameters cell for papermill"


@pytest.mark.slow
def test_rerun_page_lists_every_chapter_parameter_and_time(ci_site):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html(ci_site.path, "book/rerun.html"), "html.parser")
    text = soup.get_text()
    for command in ("stlearn run", "stlearn sweep", "papermill"):
        assert command in text, f"the re-run page must show the {command} command"
    tables = soup.find_all("table")
    for name in CHAPTERS:
        heading = soup.find(lambda t, name=name: t.name in ("h2", "h3", "h4")
                            and t.get_text(strip=True).startswith(name))
        assert heading is not None, f"no parameter table for {name} on the re-run page"
        table = heading.find_next("table")
        cells = {_cell(tr.find("td")): tr.find_all("td") for tr in table.find_all("tr") if tr.find("td")}
        rows = {k: [_cell(td) for td in tds] for k, tds in cells.items()}
        header = [_cell(th) for th in table.find_all("th")]
        assert {"parameter", "meaning", "valid values", "full", "ci"} <= set(header), header
        ci_values = ch.parameter_sets(name, ROOT)["ci"]
        for p in ch.parameters(name, ROOT).values():
            assert p.name in rows, f"{name}: parameter {p.name} missing from the re-run page"
            row = dict(zip(header, rows[p.name]))
            assert row["meaning"] == _plain(p.description), f"{name}.{p.name}: meaning"
            assert row["valid values"] == _plain(p.spec), f"{name}.{p.name}: valid values"
            assert row["full"] == _plain(repr(p.default)), f"{name}.{p.name}: full default"
            assert row["ci"] == _plain(repr(ci_values.get(p.name, p.default))), f"{name}.{p.name}: ci"
            ci_cell = cells[p.name][header.index("ci")]
            assert (ci_cell.find("strong") is not None) == (p.name in ci_values), \
                f"{name}.{p.name}: ci values that differ from the paper are in bold, the others not"
        assert any(name in t.get_text() and "seconds" in t.get_text() for t in tables), \
            f"{name} missing from the execution-time table"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_header_gives_its_rerun_command_and_cost(ci_site, name):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html(ci_site.path, page_of(name)), "html.parser")
    title = soup.find("h1")
    header = title.find_next("p")
    text = _plain(header.get_text())
    command = f"stlearn run {name}" + ("" if ci_site.param_set == "full" else f" --set {ci_site.param_set}")
    assert f"{command} (" in text, f"{name}: no re-run command under the title: {text!r}"
    cost = re.search(rf"cost: (\d+) s at the {ci_site.param_set} settings", text)
    assert cost, f"{name}: no cost under the title: {text!r}"
    (executed,) = (ROOT / "_build" / "cache" / name).glob(f"{ci_site.param_set}-*.ipynb")  # the run behind the page
    seconds = float(nbformat.read(executed, as_version=4).metadata["papermill"]["duration"])
    assert abs(int(cost.group(1)) - seconds) <= 0.5 + 0.05, f"{name}: cost differs from papermill's {seconds}"


_SMART = str.maketrans({"…": "...", "“": '"', "”": '"', "‘": "'", "’": "'", "–": "--", "—": "---"})


def _plain(text: str) -> str:
    """Whitespace collapsed and Sphinx's smart quotes and dashes undone, to compare with the source."""
    return " ".join(text.translate(_SMART).split())


def _cell(tag) -> str:
    return _plain(tag.get_text())


# --------------------------------------------------------------------------- 3. a real browser
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """A static file server for ``folder`` on 127.0.0.1 (a free port), in a thread; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served_site(ci_site):
    with serve(ci_site.path) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    yield drv
    drv.quit()


def site_pages() -> list[str]:
    """Every page of the table of contents, as site-relative HTML paths."""
    return [f"{p}.html" for p in ch.toc_files(ROOT)]


_WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  if (!document.querySelector('script[src*="mathjax"]')) { done('no MathJax on the page'); }
  else if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset'), (e) => done('error: ' + e));
  } else if (Date.now() - start > 20000) { done('no MathJax'); } else { setTimeout(poll, 100); }
})();
"""

_PAGE_FACTS = """
const body = document.querySelector('main') || document.body;
const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
const scrollAncestor = e => {
  for (let a = e.parentElement; a && a !== document.documentElement; a = a.parentElement) if (scrolls(a)) return a;
  return null;
};
const clone = body.cloneNode(true);
clone.querySelectorAll('pre, code, .highlight, mjx-container, script, style').forEach(e => e.remove());
const math = Array.from(document.querySelectorAll('.math'));
return {
  title: document.title,
  text: clone.innerText,
  mathBlocks: math.length,
  mathTypeset: math.filter(m => m.querySelector('mjx-container')).length,
  mathErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  resources: performance.getEntriesByType('resource').map(r => r.name),
  height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),
  // what spills past the window, outside any box that scrolls it (a table, code or an equation may scroll
  // inside its own box); what is clipped without a scroll bar
  overflowing: Array.from(body.querySelectorAll('p, li, dd, dt, table, pre, img, figure, mjx-container, h1, h2, h3'))
    .filter(e => e.offsetParent !== null && !scrollAncestor(e)
      && (e.getBoundingClientRect().right > window.innerWidth + 1
          || (e.scrollWidth > e.clientWidth + 1 && ['hidden', 'clip'].includes(getComputedStyle(e).overflowX))))
    .map(e => e.tagName + ': ' + e.textContent.trim().slice(0, 60)),
  pageOverflow: document.documentElement.scrollWidth > window.innerWidth + 1,
  // display equations that need their scroll bar (allowed on a phone, not at 1280 px)
  scrolledMath: Array.from(body.querySelectorAll('mjx-container[display="true"]'))
    .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.textContent.trim().slice(0, 40)),
  wrappedCode: Array.from(body.querySelectorAll('pre'))
    .filter(e => e.offsetParent !== null && getComputedStyle(e).whiteSpace !== 'pre').length,
  // raster images shown with fewer than twice their displayed pixels across
  lowResolution: Array.from(body.querySelectorAll('img'))
    .filter(i => i.complete && i.clientWidth > 0 && !/\\.svg($|\\?)/.test(i.currentSrc || i.src)
            && i.naturalWidth < 2 * i.clientWidth - 1)
    .map(i => (i.currentSrc || i.src).split('/').pop() + ` (${i.naturalWidth} px shown at ${i.clientWidth})`),
  // the bottom (from the top of the page) of the landing page's verdicts on the third claim
  claimsBottom: (() => {
    const third = Array.from(body.querySelectorAll('dl dt')).find(d => d.innerText.trim().startsWith('3.'));
    if (!third) return null;
    let e = third, bottom = third.getBoundingClientRect().bottom;
    while ((e = e.nextElementSibling) && e.tagName === 'DD') {
      bottom = Math.max(bottom, e.getBoundingClientRect().bottom);
    }
    return bottom + window.scrollY;
  })(),
  resultTables: document.querySelectorAll('table.stlearn-table').length,
};
"""

_RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$]*\$"
                      r"|\\(begin|end|frac|mathbb|mathcal|lVert|tilde|lambda|sigma|alpha)\b")


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


WIDTHS = (1280, 390)  # a laptop and a phone, in CSS pixels
FIRST_SCREEN = 800  # the height of the laptop's first screen


def _set_width(drv, width: int) -> None:
    """Lay pages out as a window ``width`` CSS pixels wide (a phone's, with ``mobile`` at 390)."""
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": FIRST_SCREEN if width > 600 else 844, "deviceScaleFactor": 1,
        "mobile": width <= 600})


def _screenshot(drv, path: Path, width: int, height: int) -> None:
    import base64

    height = min(max(height, 800), 15000)
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.slow
def test_every_page_renders_in_chromium(browser, served_site, ci_site):
    """Load each page in headless Chromium at 1280 and 390 px: math typeset, images loaded and sharp, links
    resolve, nothing off-site, nothing wider than the window, code not wrapped, the landing page's verdicts in
    the first screen; a screenshot of every page at both widths."""
    shots = ROOT / "_build" / "screenshots" / ci_site.param_set
    pages = site_pages()
    for name in CHAPTERS:
        assert page_of(name) in pages
    links: set[str] = set()
    problems: list[str] = []
    for width in WIDTHS:
        _set_width(browser, width)
        for page in pages:
            found, facts = page_problems(browser, served_site, page, width)
            _screenshot(browser, shots / str(width) / page.replace("/", "__").replace(".html", ".png"), width,
                        facts["height"])
            problems += found
            links |= {l for l in facts["links"] if l.startswith(served_site)}
            chapter = next((c for c in CHAPTERS if page_of(c) == page), None)
            if chapter and "show_table(" in "".join(c.source for c in cells(chapter) if c.cell_type == "code"):
                if not facts["resultTables"]:
                    problems.append(f"{page}: its results tables are not HTML tables")
            if page == page_of_home() and width == WIDTHS[0]:
                bottom = facts["claimsBottom"]
                if bottom is None or bottom > FIRST_SCREEN:
                    problems.append(f"{page}: the three claims' verdicts end at {bottom} px, below the first "
                                    f"{WIDTHS[0]} x {FIRST_SCREEN} screen")
    problems += _broken_links(links)
    assert not problems, "\n".join(problems)
    for width in WIDTHS:
        assert len(list((shots / str(width)).glob("*.png"))) >= len(pages)


def page_problems(browser, base: str, page: str, width: int = WIDTHS[0]) -> tuple[list[str], dict]:
    """Load ``base + page``, wait for MathJax, and list what a reader would see broken."""
    browser.get(base + page)
    state = browser.execute_async_script(_WAIT_FOR_MATHJAX)
    facts = browser.execute_script(_PAGE_FACTS)
    where = f"{page} ({width} px):"
    problems = []
    if not facts["title"] or "404" in facts["title"]:
        problems.append(f"{where} did not load (title {facts['title']!r})")
    if facts["mathBlocks"]:
        if state != "typeset":
            problems.append(f"{where} MathJax did not run ({state})")
        if facts["mathTypeset"] != facts["mathBlocks"]:
            missing = facts["mathBlocks"] - facts["mathTypeset"]
            problems.append(f"{where} {missing} of {facts['mathBlocks']} formulas not typeset")
    if facts["mathErrors"]:
        problems.append(f"{where} {facts['mathErrors']} MathJax errors")
    raw = [m.group(0) for m in _RAW_TEX.finditer(facts["text"])]
    if raw:
        problems.append(f"{where} LaTeX source left in the page: {raw[:5]}")
    for image in facts["images"]:
        if not image["ok"]:
            problems.append(f"{where} image did not load: {image['src']}")
    if facts["overflowing"] or facts["pageOverflow"]:
        problems.append(f"{where} wider than the window: {facts['overflowing'][:3]}")
    if facts["scrolledMath"] and width >= 1000:
        problems.append(f"{where} equations wider than the column: {facts['scrolledMath'][:3]}")
    if facts["wrappedCode"]:
        problems.append(f"{where} {facts['wrappedCode']} code blocks wrap their lines")
    if facts["lowResolution"]:
        problems.append(f"{where} images with less than twice their displayed resolution: "
                        f"{facts['lowResolution'][:3]}")
    off_site = [r for r in facts["resources"] if not r.startswith(base) and not r.startswith("data:")]
    if off_site:
        problems.append(f"{where} fetched resources from outside the site: {off_site[:5]}")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    if errors:
        problems.append(f"{where} console errors: {errors[:5]}")
    return problems, facts


_BROKEN_PAGE = """<!DOCTYPE html><html><head><title>broken</title></head><body><main>
<p>Inline <span class="math">\\(x^2 + \\lambda\\)</span> and $\\sigma$ left as source.</p>
<img src="missing.png" alt="missing figure"><a href="nowhere.html">dead link</a>
<p style="width: 3000px">a paragraph wider than any window</p><pre style="white-space: pre-wrap">wrapped code</pre>
<a href="#no-such-anchor">dead anchor</a></main></body></html>"""


@pytest.mark.slow
def test_the_browser_check_catches_raw_math_missing_images_and_dead_links(browser, tmp_path):
    """Negative control: a page with untypeset math, a missing image and dead links fails every check."""
    (tmp_path / "broken.html").write_text(_BROKEN_PAGE)
    with serve(tmp_path) as base:
        problems, facts = page_problems(browser, base, "broken.html")
        text = "\n".join(problems)
        assert "formulas not typeset" in text and "MathJax did not run" in text, text
        assert "LaTeX source left" in text and "image did not load" in text, text
        assert "console errors" in text, text  # the 404 of the image
        assert "wider than the window" in text and "code blocks wrap" in text, text
        dead = _broken_links({l for l in facts["links"] if l.startswith(base)})
    assert any("nowhere.html" in d and "404" in d for d in dead), dead
    assert any("no-such-anchor" in d for d in dead), dead


def _broken_links(links: set[str]) -> list[str]:
    """Fetch every internal link once; a link with #anchor needs an element with that id."""
    problems, pages = [], {}
    for link in sorted(links):
        url, _, anchor = link.partition("#")
        if url not in pages:
            pages[url] = _fetch(url)
        status, body = pages[url]
        if status != 200:
            problems.append(f"broken link {link} (HTTP {status})")
        elif anchor and url.endswith(".html"):
            anchor = urllib.parse.unquote(anchor)
            if f'id="{anchor}"'.encode() not in body and f"id='{anchor}'".encode() not in body:
                problems.append(f"link to a missing anchor: {link}")
    return problems
