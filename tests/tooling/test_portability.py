"""The portability check's variants: only the kernel levels this processor really runs."""

from stlearn.tooling import portability


def test_a_level_the_processor_lacks_is_never_a_variant(monkeypatch):
    # torch 2.13 takes ATEN_CPU_CAPABILITY=avx512 on a processor without AVX-512 and then dies of an illegal
    # instruction in a chapter's kernel: the processor's flags decide first
    monkeypatch.setattr(portability, "cpu_flags", set)  # no flags at all
    assert portability.supported_capabilities() == ["default"]


def test_the_processors_flags_are_read_where_linux_gives_them():
    flags = portability.cpu_flags()
    assert flags is None or not flags or "sse2" in flags  # every x86-64 processor has SSE2 (others: no "flags")
