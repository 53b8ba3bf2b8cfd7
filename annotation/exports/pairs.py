"""Rankings with ties -> preference pairs.

A ranking is a list of tie groups, best first (`[[d], [c], [a, b]]` is `D > C > A = B`). The
strategies a researcher chooses from:

* ``all``: every strictly ordered pair, InstructGPT's K-choose-2 (ties excepted): 5 pairs above;
* ``best-vs-rest``: each member of the best group against every member of a lower group: 3 above;
* ``consensus``: the rankings of one item by several annotators are merged first (Bradley-Terry,
  `annotation.quality.consensus`), then every strictly ordered pair of the consensus order.

Ties are dropped, or kept as rows flagged ``tie=True`` (chosen/rejected then in id order). A
margin comes from the per-completion labels: the mean of the numeric scale labels of the chosen
answer minus the rejected one's, when both have one.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

from annotation import quality

STRATEGIES = ("all", "best-vs-rest", "consensus")
TIES = ("drop", "keep")

Groups = Sequence[Sequence[Hashable]]


class Pair(NamedTuple):
    """A NamedTuple rather than a dataclass: a million of them are made per large export."""

    chosen: Hashable
    rejected: Hashable
    tie: bool = False


def strict_pairs(groups: Groups) -> list[Pair]:
    """Every (better, worse) pair across different groups, best first."""
    out = []
    for i, upper in enumerate(groups):
        for lower in groups[i + 1 :]:
            out.extend(Pair(a, b) for a in upper for b in lower)
    return out


def best_vs_rest(groups: Groups) -> list[Pair]:
    if len(groups) < 2:
        return []
    return [Pair(a, b) for a in groups[0] for lower in groups[1:] for b in lower]


def tie_pairs(groups: Groups) -> list[Pair]:
    out = []
    for group in groups:
        ordered = sorted(group, key=str)
        out.extend(Pair(a, b, tie=True) for a, b in itertools.combinations(ordered, 2))
    return out


def ranking_pairs(groups: Groups, *, strategy: str = "all", ties: str = "drop") -> list[Pair]:
    """Pairs of one ranking (for ``all`` and ``best-vs-rest``)."""
    if strategy == "best-vs-rest":
        pairs = best_vs_rest(groups)
        # Only ties among the best answers say anything under this strategy.
        tied = tie_pairs(groups[:1]) if ties == "keep" else []
    elif strategy == "all":
        pairs = strict_pairs(groups)
        tied = tie_pairs(groups) if ties == "keep" else []
    else:
        raise ValueError(f"unknown pair strategy {strategy!r}; expected one of {STRATEGIES}")
    return pairs + tied


@functools.lru_cache(maxsize=4096)
def pair_positions(sizes: tuple[int, ...], strategy: str = "all") -> tuple[tuple, tuple]:
    """The strictly ordered pairs of a ranking whose tie groups have `sizes`, as positions in
    the ranking flattened best first: (chosen positions, rejected positions), in the order of
    `ranking_pairs(..., ties="drop")`. Rankings of one shape share them, so a large export
    works each shape out once and then only picks members by position."""
    starts = list(itertools.accumulate((0, *sizes)))
    groups = [range(a, b) for a, b in itertools.pairwise(starts)]
    if strategy == "best-vs-rest":
        found = best_vs_rest(groups)
    elif strategy == "all":
        found = strict_pairs(groups)
    else:
        raise ValueError(f"unknown pair strategy {strategy!r}; expected one of {STRATEGIES}")
    return tuple(p.chosen for p in found), tuple(p.rejected for p in found)


def consensus_groups(rankings: Sequence[Groups], *, tolerance: float = 1e-6) -> list[list]:
    """Merge several rankings of one item into tie groups: answers whose Bradley-Terry strengths
    are equal (within `tolerance`) share a group."""
    groups: list[list] = []
    last = None
    for member, strength in quality.consensus(rankings):
        if last is not None and abs(strength - last) <= tolerance:
            groups[-1].append(member)
        else:
            groups.append([member])
        last = strength
    return groups


def consensus_pairs(rankings: Sequence[Groups], *, ties: str = "drop") -> list[Pair]:
    groups = consensus_groups(rankings)
    return strict_pairs(groups) + (tie_pairs(groups) if ties == "keep" else [])


def label_score(labels: Mapping | None) -> float | None:
    """The mean of a completion's numeric scale labels (flags, being booleans, are left out)."""
    if not labels:
        return None
    values = [
        float(v) for v in labels.values() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return sum(values) / len(values) if values else None


def margin(labels: Mapping, pair: Pair) -> float | None:
    """Score of the chosen answer minus the rejected one's; labels are keyed by completion id
    (as a string, the way JSON stores them)."""
    chosen = label_score(labels.get(str(pair.chosen)))
    rejected = label_score(labels.get(str(pair.rejected)))
    if chosen is None or rejected is None:
        return None
    return chosen - rejected
