"""The book builds and reads offline: the build never touches the network, and the guard that checks it works."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_building_the_book_does_not_touch_the_network(ci_site):
    if ci_site.guard is None:
        pytest.skip("the site was built outside the tests (STLEARN_SITE_SET), without the guard")
    """The ci build ran with an audit hook in every Python process that refuses non-loopback access."""
    assert ci_site.guard.guarded_processes(), "the network guard was not active during the build"
    assert len(ci_site.guard.guarded_processes()) >= 2, "the guard must reach the build's subprocesses (jupyter-book)"
    assert not ci_site.guard.blocked(), f"the build tried to reach the network: {ci_site.guard.blocked()}"
    html = "\n".join(p.read_text() for p in ci_site.path.rglob("*.html"))
    remote = set(re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html))
    assert not remote, f"the site loads resources from the network: {sorted(remote)}"


def test_the_network_guard_refuses_and_records(network_guard):
    """The guard itself: a non-loopback connection is refused and logged (the audit event is raised by hand,
    so no packet could leave even if the guard were broken)."""
    probe = textwrap.dedent("""
        import sys
        try:
            sys.audit("socket.connect", None, ("203.0.113.5", 80))
        except OSError as err:
            print("refused:", err)
        sys.audit("socket.connect", None, ("127.0.0.1", 8000))
        print("loopback allowed")
    """)
    result = subprocess.run([sys.executable, "-c", probe], env=network_guard.env, capture_output=True, text=True,
                            check=False)
    assert "refused: network access is not allowed" in result.stdout and "loopback allowed" in result.stdout, result
    assert len(network_guard.blocked()) == 1 and "203.0.113.5" in network_guard.blocked()[0]
