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
    # after sphinx-book-theme has laid out its header buttons (priority 501)
    app.connect("html-page-context", add_source_button, priority=600)
    app.connect("html-page-context", drop_duplicate_assets, priority=600)
    app.connect("build-finished", copy_sources)
    # a new version of this file makes Sphinx rebuild every page, not only changed sources
    version = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8], 16)
    return {"env_version": version, "parallel_read_safe": True, "parallel_write_safe": True}
