"""Random streams: one independent stream for each role a random draw plays.

A chapter has one integer ``seed``. Every random draw in it comes from a
:class:`Stream` below the root ``Stream(seed)``, named by the path of roles
and indices that leads to it::

    rng = Stream(seed)
    rng.child("teacher_data", k)    # the training inputs of teacher k
    rng.child("student_data", k)    # the training inputs of student k
    rng.child("test", k)            # the test inputs of run k

Derivation. The generator of a stream is seeded with the first 64-bit word of
NumPy's ``SeedSequence(entropy=seed, spawn_key=key)``, where ``key`` lists,
for each ``(role, index)`` on the path, ``crc32(role)``, the number of
indices and the indices. The encoding is injective, so distinct paths give
distinct spawn keys, and ``SeedSequence`` mixes entropy and spawn key through
a hash designed so that distinct keys give independent streams (the method
NumPy documents for parallel streams). No stream is an arithmetic offset of
another: ``Stream(2).child("test")`` and ``Stream(1).child("test", 1)`` share
nothing, whatever the integers.

Audit. While :func:`audit` is on, every set of inputs the library draws is
recorded (a 64-bit fingerprint per input), and :func:`assert_disjoint` checks
that no input belongs to two different sets: a teacher's training set, a
student's, a validation or a test set never overlap. The same set drawn twice
(paired runs that share their data) counts once.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .validation import ParameterError, check_int

Tensor = torch.Tensor

# Every role a draw can play. A new role is added here (its name, not its position, keys its stream).
ROLES = {
    "task": "the input subspace of a task",
    "target": "the target function",
    "teacher_data": "a teacher's training inputs",
    "teacher_init": "a teacher's initial weights",
    "student_data": "a student's training inputs",
    "student_init": "a student's initial weights",
    "validation": "a validation set",
    "test": "a test set",
    "reference": "a reference set (fitting or measuring a map, not a run's data)",
    "split": "a partition of a fixed dataset",
    "noise": "input noise",
    "inputs": "the inputs of a sample set",
    "label_noise": "label noise",
    "member": "one member of an ensemble",
    "layer": "one layer's weights",
    "batch": "minibatch order",
    "rotation": "a rotation or mixing of features",
    "direction": "random directions (widening or tilting a teacher)",
}


@dataclass(frozen=True)
class Stream:
    """An independent random stream: the root ``Stream(seed)`` or a named child of one."""

    seed: int
    path: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __post_init__(self):
        check_int("seed", self.seed, low=0)

    def child(self, role: str, *index: int) -> Stream:
        """The stream of ``role`` (one of :data:`ROLES`) with integer indices ``index`` below this one."""
        if role not in ROLES:
            raise ParameterError(f"role must be one of {sorted(ROLES)}; got {role!r}")
        index = tuple(check_int(f"{role} index", i, low=0) for i in index)
        return Stream(self.seed, (*self.path, (role, index)))

    def children(self, role: str, n: int) -> list[Stream]:
        """``[child(role, 0), ..., child(role, n - 1)]``."""
        return [self.child(role, k) for k in range(check_int("n", n, low=0))]

    @property
    def name(self) -> str:
        """A readable name, e.g. ``seed 0 / teacher_data[3] / inputs``."""
        parts = [f"{r}[{', '.join(map(str, i))}]" if i else r for r, i in self.path]
        return " / ".join([f"seed {self.seed}", *parts])

    def spawn_key(self) -> tuple[int, ...]:
        key: list[int] = []
        for role, index in self.path:
            key += [zlib.crc32(role.encode()), len(index), *index]
        return tuple(key)

    def seed_sequence(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=self.spawn_key())

    def generator(self) -> torch.Generator:
        """A fresh CPU generator at the start of this stream (float64 draws give the same data on any device)."""
        word = int(self.seed_sequence().generate_state(1, np.uint64)[0])
        return torch.Generator().manual_seed(word)

    def numpy_seed(self) -> int:
        """A 32-bit integer for APIs that take one (scikit-learn's ``random_state``)."""
        return int(self.seed_sequence().generate_state(1, np.uint32)[0])


def as_stream(rng: Stream | int, name: str = "rng") -> Stream:
    """``rng`` itself, or the root stream of an integer seed."""
    if isinstance(rng, Stream):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return Stream(int(rng))
    raise ParameterError(f"{name} must be a Stream or an integer seed >= 0; got {rng!r}")


def as_streams(rng: Stream | int | list, members: int | None, name: str = "seed") -> list[Stream]:
    """One stream per member: a list as given (one per member), or the children ``member[e]`` of one stream.

    For a single network (``members=None``) the stream itself.
    """
    if isinstance(rng, (list, tuple)):
        if members is None or len(rng) != members:
            raise ParameterError(f"{name} must be one stream or a list of {members} (one per member); "
                                 f"got a list of {len(rng)}")
        return [as_stream(r, name) for r in rng]
    root = as_stream(rng, name)
    return [root] if members is None else root.children("member", members)


def member_normals(generators: Sequence[torch.Generator], shape: Sequence[int]) -> Tensor:
    """One standard normal draw of ``shape`` per member, each from its own generator: ``(E, *shape)`` float64 on
    the CPU. A member's draws then depend on its own stream alone, never on which members share its ensemble."""
    return torch.stack([torch.randn(tuple(shape), generator=g, dtype=torch.float64) for g in generators])


# --------------------------------------------------------------------------- audit of drawn sets
class DrawLog:
    """The sets of inputs drawn while an audit is on, as 64-bit fingerprints per input."""

    _MULT = np.random.SeedSequence(0).generate_state(4096, np.uint64) | np.uint64(1)  # odd multipliers

    def __init__(self):
        self.sets: dict[bytes, tuple[str, np.ndarray]] = {}

    def fingerprints(self, x: torch.Tensor, space: str = "") -> np.ndarray:
        """One exact 64-bit hash per row of ``x`` (equal rows, equal hashes; wrapping integer arithmetic)."""
        bits = np.ascontiguousarray(x.detach().to("cpu", torch.float64).reshape(x.shape[0], -1).numpy())
        bits = bits.view(np.uint64)
        mult = np.resize(self._MULT, bits.shape[1])
        with np.errstate(over="ignore"):
            h = (bits * mult).sum(axis=1, dtype=np.uint64) ^ np.uint64(zlib.crc32(space.encode()))
        return h

    def record(self, name: str, x: torch.Tensor | np.ndarray, space: str = "") -> None:
        """Record one drawn set: the rows of ``x`` (samples x features), or integer ids in a fixed dataset."""
        if isinstance(x, np.ndarray):  # indices into a fixed dataset ``space``
            ids = x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(zlib.crc32(space.encode()))
        else:
            ids = self.fingerprints(x, space)
        ids = np.unique(ids)
        self.sets.setdefault(ids.tobytes(), (name, ids))

    def overlaps(self) -> list[tuple[str, str, int]]:
        """``(set a, set b, shared inputs)`` for every two different sets that share an input."""
        if not self.sets:
            return []
        names = [n for n, _ in self.sets.values()]
        ids = np.concatenate([v for _, v in self.sets.values()])
        owner = np.repeat(np.arange(len(names)), [len(v) for _, v in self.sets.values()])
        order = np.argsort(ids, kind="stable")
        ids, owner = ids[order], owner[order]
        dup = np.flatnonzero(ids[1:] == ids[:-1])
        pairs: dict[tuple[int, int], int] = {}
        for i in dup:
            a, b = sorted((int(owner[i]), int(owner[i + 1])))
            pairs[a, b] = pairs.get((a, b), 0) + 1
        return [(names[a], names[b], n) for (a, b), n in sorted(pairs.items())]


_LOG: DrawLog | None = None


def audit() -> DrawLog:
    """Start recording every drawn set (a fresh log); returns the log."""
    global _LOG  # noqa: PLW0603 -- one audit per chapter kernel
    _LOG = DrawLog()
    return _LOG


def record(name: str, x, space: str = "") -> None:
    """Record a drawn set in the current audit, if one is on."""
    if _LOG is not None:
        _LOG.record(name, x, space)


def assert_disjoint() -> int:
    """Raise unless every two different sets drawn since :func:`audit` are disjoint; returns the number of sets."""
    if _LOG is None:
        raise RuntimeError("no audit is on: call stlearn.streams.audit() before drawing")
    bad = _LOG.overlaps()
    if bad:
        listing = "; ".join(f"{a} and {b} share {n} inputs" for a, b, n in bad[:5])
        raise AssertionError(f"sample sets overlap: {listing}")
    return len(_LOG.sets)
