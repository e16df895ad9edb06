"""Concealed, reproducible permuted-block allocation sequences.

Why this module exists
----------------------
Central stratified permuted-block randomization needs two properties that pull in
opposite directions:

* **Concealment** -- nobody at a site (nor anybody reading the database) may be able to
  predict the next allocation.  Therefore the sequence is *not* stored anywhere; it is
  derived on demand from a secret seed that lives outside the database.
* **Reproducibility** -- the trial statistician must be able to regenerate and verify the
  whole sequence from the same secret, years later.

Every block of every stratum is derived independently from::

    HMAC-SHA256(key=secret, msg=f"{trial_key}|{stratum_key}|{block_index}")

The 32-byte digest, read as a big-endian integer, seeds a ``random.Random`` (Mersenne
Twister) that first draws the block size with ``choice(sorted(block_sizes))`` and then
permutes the block's arms with ``shuffle``.  ``block_index`` counts from 0, slots from 1.
The integer seeding, ``choice`` and ``shuffle`` of CPython's ``random`` module have been
stable since Python 3.2, so a statistician can reproduce the sequence with any modern
CPython (see :func:`listing`).

Design choices worth knowing:

* ``trial_key`` must be non-empty and must not contain ``"|"`` so that the HMAC message is
  unambiguous (the stratum key may contain ``"|"``: the first ``"|"`` ends the trial key
  and the last one starts the block index).
* The order in which block sizes are listed does not matter (they are sorted before the
  draw), so ``(6, 8, 10)`` and ``(10, 8, 6)`` give the same sequence.
* Nothing here logs or prints: allocations are secret until they are made.

This module deliberately imports only the standard library (no Django) so that it can be
unit-tested and benchmarked on its own.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DANISH_DESIGN",
    "DUTCH_DESIGN",
    "Design",
    "DesignError",
    "Slot",
    "StratumSequence",
    "arm_at",
    "imbalance",
    "listing",
    "max_imbalance_bound",
    "simple_arm",
    "stratum_sequence",
]


class DesignError(ValueError):
    """Raised when a :class:`Design` is inconsistent.

    All problems are collected (``problems``) so that whoever configures a trial can fix
    them in one go instead of discovering them one at a time.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid randomization design: " + "; ".join(self.problems))


def _is_positive_int(value: object) -> bool:
    # bool is a subclass of int, but True is never a meaningful ratio or block size.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class Design:
    """Allocation design of a trial: arms, allocation ratio and permitted block sizes.

    ``ratio[i]`` belongs to ``arms[i]``.  A block of size ``s`` holds exactly
    ``s * ratio[i] / sum(ratio)`` participants of arm ``i``, which is why every block size
    must be a multiple of ``sum(ratio)``.  The design is validated on construction so an
    invalid design can never reach the allocation code.  Lists are accepted and stored as
    tuples so that a design is hashable (it is part of a cache key).
    """

    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    block_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("arms", "ratio", "block_sizes"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`DesignError` listing every problem with this design."""
        problems: list[str] = []
        arms, ratio, block_sizes = self.arms, self.ratio, self.block_sizes

        arms_ok = isinstance(arms, tuple)
        if not arms_ok:
            problems.append(f"arms must be a tuple of strings, got {type(arms).__name__}")
        else:
            if len(arms) < 2:
                problems.append(f"at least 2 arms are required, got {len(arms)}")
            for arm in arms:
                if not isinstance(arm, str) or not arm:
                    problems.append(f"arm names must be non-empty strings, got {arm!r}")
            seen: list[object] = []
            duplicates: list[object] = []
            for arm in arms:
                if arm in seen and arm not in duplicates:
                    duplicates.append(arm)
                seen.append(arm)
            if duplicates:
                names = ", ".join(repr(d) for d in duplicates)
                problems.append(f"arm names must be unique, duplicated: {names}")

        ratio_ok = isinstance(ratio, tuple)
        if not ratio_ok:
            problems.append(f"ratio must be a tuple of integers, got {type(ratio).__name__}")
        else:
            bad = [r for r in ratio if not _is_positive_int(r)]
            if bad:
                problems.append(f"ratio entries must be positive integers, got {bad!r}")
                ratio_ok = False
        if arms_ok and isinstance(ratio, tuple) and len(arms) != len(ratio):
            problems.append(
                f"arms and ratio must have the same length, got {len(arms)} arms "
                f"and {len(ratio)} ratio entries"
            )

        if not isinstance(block_sizes, tuple):
            problems.append(
                f"block_sizes must be a tuple of integers, got {type(block_sizes).__name__}"
            )
        elif not block_sizes:
            problems.append("at least one block size is required")
        else:
            total = sum(ratio) if ratio_ok and ratio else None
            for size in block_sizes:
                if not _is_positive_int(size):
                    problems.append(f"block size {size!r} is not a positive integer")
                elif total is not None and size % total:
                    problems.append(
                        f"block size {size} is not a multiple of the ratio sum {total} "
                        f"(ratio {':'.join(map(str, ratio))})"
                    )
            if len(set(block_sizes)) != len(block_sizes):
                problems.append(f"block sizes must be unique, got {block_sizes!r}")

        if problems:
            raise DesignError(problems)

    @property
    def ratio_sum(self) -> int:
        """Sum of the ratio entries (``R``); every block size is a multiple of it."""
        return sum(self.ratio)


#: Danish trial: IMR vs treatment as usual, 1:1, random block sizes 6, 8 or 10.
DANISH_DESIGN = Design(arms=("imr", "tau"), ratio=(1, 1), block_sizes=(6, 8, 10))
#: Dutch trial: IMR vs care as usual, 3:2, fixed blocks of 5.
DUTCH_DESIGN = Design(arms=("imr", "cau"), ratio=(3, 2), block_sizes=(5,))


@dataclass(frozen=True)
class Slot:
    """One allocation as shown to the statistician by :func:`listing`.

    ``slot`` counts participants in the stratum from 1; ``block_index`` and
    ``position_in_block`` are 0-based indices (``block_index`` is the value used in the
    HMAC message).
    """

    slot: int
    block_index: int
    block_size: int
    position_in_block: int
    arm: str


def _check_keys(secret: str | bytes, trial_key: str, stratum_key: str) -> bytes:
    if isinstance(secret, str):
        secret_bytes = secret.encode("utf-8")
    elif isinstance(secret, bytes):
        secret_bytes = secret
    else:
        raise TypeError(f"secret must be str or bytes, got {type(secret).__name__}")
    if not secret_bytes:
        raise ValueError("secret must not be empty: the sequence would be predictable")
    if not isinstance(trial_key, str) or not trial_key:
        raise ValueError("trial_key must be a non-empty string")
    if "|" in trial_key:
        raise ValueError(f"trial_key must not contain '|', got {trial_key!r}")
    if not isinstance(stratum_key, str):
        raise TypeError(f"stratum_key must be a str, got {type(stratum_key).__name__}")
    return secret_bytes


def _check_slot(slot: int) -> None:
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 1:
        raise ValueError(f"slot numbers start at 1, got {slot!r}")


def _seeded_rng(secret: bytes, message: str) -> random.Random:
    digest = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()
    return random.Random(int.from_bytes(digest, "big"))


class StratumSequence:
    """The allocation sequence of one stratum, generated lazily block by block.

    Why a class: a web process allocates slot ``n``, then ``n + 1``, ... in the same
    stratum; memoizing the blocks already generated makes each sequential request
    amortized O(1) instead of regenerating all earlier blocks (block sizes vary, so slot
    ``n`` cannot be located without knowing every earlier block).  Extension is guarded by
    a lock so a shared (cached) instance is safe under threaded servers.
    """

    def __init__(
        self, design: Design, secret: str | bytes, trial_key: str, stratum_key: str
    ) -> None:
        self.design = design
        self.trial_key = trial_key
        self.stratum_key = stratum_key
        self._secret = _check_keys(secret, trial_key, stratum_key)
        self._sizes = tuple(sorted(design.block_sizes))
        self._arms: list[str] = []  # flat sequence, index = slot - 1
        self._block_starts: list[int] = []  # flat index of each block's first slot
        self._block_sizes: list[int] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never include the secret or the allocations
        return (
            f"StratumSequence(trial_key={self.trial_key!r}, "
            f"stratum_key={self.stratum_key!r}, blocks_generated={self.blocks_generated})"
        )

    @property
    def blocks_generated(self) -> int:
        """How many blocks have been generated so far (exposed to verify memoization)."""
        return len(self._block_sizes)

    def _generate_block(self, block_index: int) -> list[str]:
        rng = _seeded_rng(self._secret, f"{self.trial_key}|{self.stratum_key}|{block_index}")
        size = rng.choice(self._sizes)
        per_unit = size // self.design.ratio_sum
        block = [
            arm
            for arm, share in zip(self.design.arms, self.design.ratio, strict=True)
            for _ in range(share * per_unit)
        ]
        rng.shuffle(block)
        return block

    def _ensure(self, n_slots: int) -> None:
        if len(self._arms) >= n_slots:
            return
        with self._lock:
            while len(self._arms) < n_slots:
                block = self._generate_block(len(self._block_sizes))
                self._block_starts.append(len(self._arms))
                self._block_sizes.append(len(block))
                self._arms.extend(block)

    def arm_at(self, slot: int) -> str:
        """Arm of the ``slot``-th participant of this stratum (slots count from 1)."""
        _check_slot(slot)
        self._ensure(slot)
        return self._arms[slot - 1]

    def slot_info(self, slot: int) -> Slot:
        """Full provenance of one slot (block index, size and position) for verification."""
        _check_slot(slot)
        self._ensure(slot)
        index = slot - 1
        block_index = bisect.bisect_right(self._block_starts, index) - 1
        return Slot(
            slot=slot,
            block_index=block_index,
            block_size=self._block_sizes[block_index],
            position_in_block=index - self._block_starts[block_index],
            arm=self._arms[index],
        )


@functools.lru_cache(maxsize=512)
def stratum_sequence(
    design: Design, secret: str | bytes, trial_key: str, stratum_key: str
) -> StratumSequence:
    """Shared, memoized :class:`StratumSequence` for one stratum of one trial.

    Bounded so a long-running process with many strata cannot grow without limit; an
    evicted stratum is simply regenerated (deterministically) on its next use.
    """
    return StratumSequence(design, secret, trial_key, stratum_key)


def arm_at(design: Design, secret: str | bytes, trial_key: str, stratum_key: str, slot: int) -> str:
    """Arm allocated to the ``slot``-th participant (from 1) of a stratum."""
    return stratum_sequence(design, secret, trial_key, stratum_key).arm_at(slot)


def listing(
    design: Design, secret: str | bytes, trial_key: str, stratum_key: str, n: int
) -> list[Slot]:
    """First ``n`` slots of a stratum with their provenance, for the statistician.

    Uses a fresh (uncached) sequence so that verification is independent of whatever the
    web process has memoized.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    sequence = StratumSequence(design, secret, trial_key, stratum_key)
    return [sequence.slot_info(slot) for slot in range(1, n + 1)]


def simple_arm(
    design: Design, secret: str | bytes, trial_key: str, stratum_key: str, slot: int
) -> str:
    """Simple (unrestricted) randomization: each slot independently, weighted by ratio.

    Only a comparison baseline for the benchmark.  The HMAC message starts with ``"|"``,
    which no block message can (trial keys are non-empty), so the two streams never share
    a seed.
    """
    secret_bytes = _check_keys(secret, trial_key, stratum_key)
    _check_slot(slot)
    rng = _seeded_rng(secret_bytes, f"|simple|{trial_key}|{stratum_key}|{slot}")
    draw = rng.randrange(design.ratio_sum)
    for arm, share in zip(design.arms, design.ratio, strict=True):
        if draw < share:
            return arm
        draw -= share
    raise AssertionError("unreachable: draw is below the ratio sum")  # pragma: no cover


def imbalance(counts: Mapping[str, int], design: Design) -> int:
    """Imbalance of allocation counts relative to the design's ratio.

    Definition: with ``N`` participants in total, ``R = sum(ratio)`` and ``n_i`` of arm
    ``i``, the imbalance is ``max_i |R * n_i - r_i * N|``, i.e. ``R`` times the largest
    deviation of any arm's count from its expected share ``N * r_i / R``.  Scaling by
    ``R`` keeps it an integer.  For two arms it equals ``|n_1 * r_2 - n_2 * r_1|``; for
    1:1 it is simply ``|n_1 - n_2|``.  Arms missing from ``counts`` count as 0.
    """
    unknown = set(counts) - set(design.arms)
    if unknown:
        raise ValueError(f"counts contain arms not in the design: {sorted(unknown)!r}")
    total = sum(counts.values())
    big_r = design.ratio_sum
    return max(
        abs(big_r * counts.get(arm, 0) - share * total)
        for arm, share in zip(design.arms, design.ratio, strict=True)
    )


def max_imbalance_bound(design: Design) -> int:
    """Largest :func:`imbalance` any prefix of a permuted-block sequence can reach.

    Every completed block restores exact balance, so only a prefix of one block matters.
    In a block of size ``s`` arm ``i`` has ``c_i = s * r_i / R`` slots; its deviation
    ``R * n_i - r_i * m`` after ``m`` slots is largest when its ``c_i`` slots come first
    (``c_i * (R - r_i)``) and most negative when all other arms come first
    (``-r_i * (s - c_i)``).  Both equal ``s * r_i * (R - r_i) / R``, so the bound is its
    maximum over block sizes and arms.  It is tight: such an ordering is a possible block.
    For 1:1 with blocks up to 10 it is 5 (``|n_1 - n_2| <= 5``); for 3:2 in blocks of 5
    it is 6 (``|2 * n_1 - 3 * n_2| <= 6``).
    """
    big_r = design.ratio_sum
    return max(
        (size // big_r) * share * (big_r - share)
        for size in design.block_sizes
        for share in design.ratio
    )
