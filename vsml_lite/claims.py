"""The paper's claims, each judged at a stated horizon, from a record.

A claim the paper makes about a figure ("improves learning speed in the beginning", "similar
performance later on", "does not worsen performance") is only checked when it is checked where
the paper looks: early claims in the first steps, later claims at the end of the run. A
:class:`Verdict` carries the statement, the horizon it is judged at, the numbers that decide it
and whether it holds; :func:`headline` counts the claims that hold at each horizon, so a
chapter's first sentence about its results cannot report the early window alone.

Chapters 5 and 6 build their verdicts here from the curves in their records
(:func:`vsml_lite.metalearn.check_claims`, :func:`vsml_lite.improve.check_claims`) and store
them in new records as :meth:`Verdict.to_dict`.

Example:
    >>> v = [Verdict("A is faster early.", "the first 50 steps", "0.9 vs 1.1", True),
    ...      Verdict("A ends where B ends.", "all 500 steps", "19% vs 56%", False)]
    >>> headline(v)
    '1 of 1 claims hold over the first 50 steps; 0 of 1 hold over all 500 steps'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Sequence

#: Accuracy points within which two learners count as "similar" (and "not worse"): the paper
#: gives curves, not a tolerance; two points is the margin the book uses to call a
#: reproduction close to the paper's number.
SIMILAR_POINTS = 2.0


@dataclass(frozen=True)
class Verdict:
    """One claim judged at one horizon.

    Attributes:
        claim: the paper's statement, as the chapter checks it.
        horizon: where it is judged, in words (``"first 50 steps"``, ``"all 2,000 steps"``).
        measured: the numbers that decide it.
        holds: whether the numbers bear the claim out.
    """

    claim: str
    horizon: str
    measured: str
    holds: bool

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def from_dicts(rows: Iterable[Dict[str, object]]) -> List[Verdict]:
    """Verdicts from a record's ``claims`` list (:meth:`Verdict.to_dict`)."""
    return [Verdict(**r) for r in rows]


def horizons(verdicts: Sequence[Verdict]) -> List[str]:
    """The horizons, in the order they first appear."""
    return list(dict.fromkeys(v.horizon for v in verdicts))


def headline(verdicts: Sequence[Verdict]) -> str:
    """How many claims hold at each horizon: ``"2 of 2 claims hold over the first 50 steps;
    0 of 2 hold over all 500 steps"``."""
    parts = []
    for i, h in enumerate(horizons(verdicts)):
        at = [v for v in verdicts if v.horizon == h]
        parts.append(f"{sum(v.holds for v in at)} of {len(at)} {'claims ' if i == 0 else ''}hold over {h}")
    return "; ".join(parts)


def summary(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as Markdown for a reader: per horizon, how many claims hold, then each
    claim with its verdict and the numbers that decide it.

    Example:
        >>> print(summary([Verdict("A is faster.", "the first 50 steps", "A 0.9, B 1.1", True)]))
        Over the first 50 steps, 1 of 1 claims holds:
        <BLANKLINE>
        - **holds**: A is faster (A 0.9, B 1.1).
    """
    blocks = []
    for h in horizons(verdicts):
        at = [v for v in verdicts if v.horizon == h]
        held = sum(v.holds for v in at)
        lines = [f"Over {h}, {held} of {len(at)} claims {'holds' if held == 1 else 'hold'}:", ""]
        lines += [f"- **{'holds' if v.holds else 'does not hold'}**: {v.claim.rstrip('.')} ({v.measured})."
                  for v in at]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def table(verdicts: Sequence[Verdict], figure: str) -> List[Dict[str, str]]:
    """Rows for a Markdown table: the claim, its horizon, the numbers and the verdict."""
    return [{f"the paper's claim ({figure})": v.claim, "judged over": v.horizon, "measured here": v.measured,
             "holds here": "yes" if v.holds else "**no**"} for v in verdicts]


def similar(a: float, b: float, spread: float = 0.0) -> bool:
    """Two accuracies (fractions) within :data:`SIMILAR_POINTS` points, or within ``spread``
    (e.g. the seeds' standard deviation) where that is larger."""
    return abs(a - b) <= max(SIMILAR_POINTS / 100, spread)


def not_worse(a: float, b: float, spread: float = 0.0) -> bool:
    """Accuracy ``a`` is not below ``b`` by more than :data:`SIMILAR_POINTS` points (or
    ``spread``, where larger)."""
    return a >= b - max(SIMILAR_POINTS / 100, spread)
