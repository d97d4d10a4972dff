"""Seed lists as people type them ("0-15", "1,5,9", "0-3,10"), parsed one way for app and CLI.

A typo must end in one sentence that says what was wrong, and a huge range must be refused
before anything is allocated for it.
"""
from __future__ import annotations

import re

import numpy as np

from clothinggan.errors import InvalidSeedError
from clothinggan.generator import MAX_SEED

MAX_SEEDS = 1024  # a 32x32 grid; more would take minutes on a CPU and flood the page
RANDOM_WORDS = ("random", "r", "?")
_ITEM = re.compile(r"^(\d+)(?:\s*(?:-|\.\.)\s*(\d+))?$")


def parse_seeds(text: str, max_count: int = MAX_SEEDS) -> list[int]:
    """Parse "0-15", "1,5,9", "3" or "0-3,10" into seeds, in order and without repeats.

    Ranges are inclusive (like NVlabs' ``--seeds 0-15``); "a..b" works too. Raises
    InvalidSeedError for empty or malformed text, reversed ranges, seeds outside [0, 2**32) and
    more than ``max_count`` seeds.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidSeedError("no seeds given: write seeds like 0-15, 1,5,9 or 0-3,10")
    seeds: dict[int, None] = {}  # an ordered set
    for raw in text.split(","):
        first, last = _parse_item(raw.strip(), text)
        if last - first + 1 > max_count:  # checked before expanding: "0-4000000000" costs nothing
            raise InvalidSeedError(f"too many seeds in {text.strip()!r}: at most {max_count} at once")
        seeds.update(dict.fromkeys(range(first, last + 1)))
        if len(seeds) > max_count:
            raise InvalidSeedError(f"too many seeds in {text.strip()!r}: at most {max_count} at once")
    return list(seeds)


def seeds_from_text(text: str, max_count: int = MAX_SEEDS, random_count: int = 8,
                    rng: np.random.Generator | None = None) -> list[int]:
    """``parse_seeds``, or ``random_count`` fresh random seeds when the text says "random" (or "r", "?").

    The app's seed box and the CLI's ``--seeds`` both take this, so "random" means the same in both.
    """
    if isinstance(text, str) and text.strip().lower() in RANDOM_WORDS:
        if not 1 <= random_count <= max_count:
            raise InvalidSeedError(f"ask for 1 to {max_count} random seeds, not {random_count}")
        rng = rng or np.random.default_rng()
        return [int(s) for s in rng.integers(0, MAX_SEED + 1, int(random_count))]
    return parse_seeds(text, max_count)


def _parse_item(item: str, text: str) -> tuple[int, int]:
    """One comma-separated piece → an inclusive (first, last) range."""
    if not item:
        raise InvalidSeedError(f"empty item in seeds {text.strip()!r}: write seeds like 0-15, 1,5,9 or 0-3,10")
    if item.startswith("-"):
        raise InvalidSeedError(f"seed {item!r} is negative: seeds go from 0 to {MAX_SEED}")
    match = _ITEM.match(item)
    if not match:
        raise InvalidSeedError(f"cannot read seed {item!r}: write seeds like 0-15, 1,5,9 or 0-3,10")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    for s in (first, last):
        if s > MAX_SEED:
            raise InvalidSeedError(f"seed {s} is out of range: seeds go from 0 to {MAX_SEED}")
    if last < first:
        raise InvalidSeedError(f"seed range {item!r} runs backwards: write {last}-{first}")
    return first, last
