"""The book's tooling, kept apart from the science: chapter discovery and parameters (:mod:`.chapters`),
the cached build (:mod:`.build`), regression references (:mod:`.regression`), sweeps on Dask
(:mod:`.sweep`), the ``stlearn`` command (:mod:`.cli`), lint (:mod:`.lint`), and the two modules a
chapter's kernel imports: notebook helpers (:mod:`.notebook`) and the scheme figure of the setting chapter
(:mod:`.scheme`). Nothing in :mod:`stlearn` outside this subpackage imports it.
"""
