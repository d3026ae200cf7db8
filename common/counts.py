"""Merging nested counts: the one combiner behind the jobs' summaries.

A count is a dict whose values are numbers (added), lists of numbers (added element by
element: histograms, per-class counts), nested dicts (merged the same way) or anything
else (kept from the first part that has it, e.g. a file's digest). Merging is associative,
so Beam may combine partial results in any order:

    beam.CombineGlobally(merge_counts)
"""

from __future__ import annotations

from collections.abc import Iterable


def merge_counts(parts: Iterable[dict]) -> dict:
    """The element-wise sum of `parts` (see the module docstring); {} for no parts."""
    total: dict = {}
    for part in parts:
        _add(total, part)
    return total


def _add(total: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, list):
            previous = total.get(key)
            total[key] = (
                list(value)
                if previous is None
                else [a + b for a, b in zip(previous, value, strict=True)]
            )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total.setdefault(key, value)
