"""Sphinx extension of the book: a download link to each chapter's MyST source, clean pages.

A chapter page is built from its executed notebook, so the theme's download
button offers that ``.ipynb``. ``stlearn build`` also stages each chapter's
MyST-markdown source under ``_chapter_sources/`` (the same relative path as
the page); this extension copies those files next to the notebooks in the
site's ``_sources/`` folder and adds a ``.md`` entry to the page's download
button. It needs no repository URL, so it works for a site read offline.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

SOURCES = "_chapter_sources"  # = stlearn.tooling.build.SOURCES


def _myst_source(app, docname: str) -> Path:
    return Path(app.srcdir) / SOURCES / f"{docname}.md"


def add_source_button(app, pagename, templatename, context, doctree) -> None:
    """Add "download .md" to the theme's download group of a chapter page."""
    if not _myst_source(app, pagename).is_file():
        return
    group = next((b for b in context.get("header_buttons", []) if b.get("label") == "download-buttons"), None)
    if group is None:
        return
    group["buttons"].insert(1, {
        "type": "link",
        "url": f"{context['pathto']('_sources', 1)}/{pagename}.md",
        "text": ".md",
        "tooltip": "Download the chapter's source (MyST markdown notebook)",
        "icon": "fas fa-file-code",
        "label": "download-myst-source-button",
    })


def launch_the_source(app, pagename, templatename, context, doctree) -> None:
    """Binder opens a chapter's MyST source (the repository holds ``book/<chapter>.md``, not the executed
    notebook the page was built from; jupytext, in the book's requirements, opens it as a notebook)."""
    if not _myst_source(app, pagename).is_file():
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if "url" in button:
                    button["url"] = button["url"].replace(f"{pagename}.ipynb", f"{pagename}.md")


def drop_duplicate_assets(app, pagename, templatename, context, doctree) -> None:
    """Each script and stylesheet once: extensions that add theirs after the builder starts
    (sphinx-thebe, sphinx-togglebutton) get them registered twice, and a repeated inline
    ``const`` declaration is a JavaScript error in the reader's browser."""
    for key in ("script_files", "css_files"):
        seen, unique = set(), []
        for asset in context.get(key, []):
            # an inline script is registered once with filename None, once with ""
            ident = (str(getattr(asset, "filename", asset) or ""),
                     tuple(sorted((k, str(v)) for k, v in getattr(asset, "attributes", {}).items())))
            if ident not in seen:
                seen.add(ident)
                unique.append(asset)
        if key in context:
            context[key] = unique


def captions_as_alt_text(app, doctree, docname) -> None:
    """A figure's caption is its image's alt text (a screen reader's and a broken image's words), unless
    the source gave one: glued figures otherwise carry the hashed file name."""
    from docutils import nodes

    for figure in doctree.findall(nodes.figure):
        caption = next(iter(figure.findall(nodes.caption)), None)
        if caption is None:
            continue
        for image in figure.findall(nodes.image):
            if not image.get("alt") or image["alt"] == image.get("uri"):
                image["alt"] = " ".join(caption.astext().split())


def author_year_style():
    """The bibliography's pybtex style: entries labelled as the text cites them, "Hong et al. 2021" (two
    authors: "Saxe and Ganguli 2014"), with accents rendered ("Marčenko and Pastur 1967") and a, b, ... after
    the year where two labels would coincide."""
    from pybtex.richtext import Text
    from pybtex.style.formatting.unsrt import Style
    from pybtex.style.labels import BaseLabelStyle

    def last(person) -> str:  # with its "von" part: "van der Walt"
        return " ".join(Text(name).render_as("text") for name in (*person.rich_prelast_names,
                                                                  *person.rich_last_names))

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = []
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                names = (last(people[0]) if len(people) == 1 else f"{last(people[0])} and {last(people[1])}"
                         if len(people) == 2 else f"{last(people[0])} et al." if people else entry.key)
                labels.append(f"{names} {entry.fields.get('year', '')}".strip())
            for label in labels:
                repeated = [i for i, other in enumerate(labels) if other == label]
                if len(repeated) > 1:
                    for letter, i in zip("abcdefghijklmnopqrstuvwxyz", repeated):
                        labels[i] = f"{label}{letter}"
            yield from labels

    class AuthorYear(Style):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    return AuthorYear


def copy_sources(app, exception) -> None:
    """Publish the staged MyST sources under ``_sources/`` of the built site."""
    src = Path(app.srcdir) / SOURCES
    if exception is not None or app.builder.format != "html" or not src.is_dir():
        return
    for f in src.rglob("*.md"):
        target = Path(app.outdir) / "_sources" / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)


def setup(app):
    import pybtex.plugin

    pybtex.plugin.register_plugin("pybtex.style.formatting", "authoryear", author_year_style())
    # after sphinx-book-theme has laid out its header buttons (priority 501)
    app.connect("html-page-context", add_source_button, priority=600)
    app.connect("html-page-context", drop_duplicate_assets, priority=600)
    app.connect("html-page-context", launch_the_source, priority=600)
    app.connect("doctree-resolved", captions_as_alt_text)
    app.connect("build-finished", copy_sources)
    # a new version of this file makes Sphinx rebuild every page, not only changed sources
    version = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8], 16)
    return {"env_version": version, "parallel_read_safe": True, "parallel_write_safe": True}
