"""The numbers behind annotation quality, as pure functions (no Django): parsing a ranking,
expanding it into pairwise outcomes, agreement between annotators (pairwise rate and
Krippendorff's alpha on ordinal ranks), a consensus ranking per item (Bradley-Terry), position
bias from the stored display orders, and scoring against gold answers.

A ranking is a list of tie groups, best first: `[["D"], ["C"], ["A", "B"]]` is `D > C > A = B`.
The members are any hashable keys (display letters in a form, completion ids in storage).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Groups = Sequence[Sequence[Hashable]]
_ORDER_TOKEN = re.compile(r"\s*([A-Za-z])\s*([>=]|$)")


def parse_order(text: str, letters: Sequence[str]) -> list[list[str]]:
    """Parse `D > C > A = B` into tie groups of letters. Every letter must appear exactly once;
    the message of the ValueError says what is wrong, for the annotator to read."""
    text = (text or "").strip().upper()
    if not text:
        raise ValueError("Order the answers before submitting.")
    groups: list[list[str]] = [[]]
    pos = 0
    while pos < len(text):
        match = _ORDER_TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"Cannot read the order {text!r}: write it like 'B > A = C'.")
        letter, sep = match.groups()
        groups[-1].append(letter)
        if sep == ">":
            groups.append([])
        pos = match.end()
    if not groups[-1]:
        raise ValueError("The order ends with '>': an answer is missing after it.")
    seen = [x for g in groups for x in g]
    expected = [x.upper() for x in letters]
    unknown = sorted(set(seen) - set(expected))
    if unknown:
        raise ValueError(f"There is no answer {', '.join(unknown)} in this task.")
    repeated = sorted({x for x in seen if seen.count(x) > 1})
    if repeated:
        raise ValueError(f"Answer {', '.join(repeated)} appears more than once.")
    missing = [x for x in expected if x not in seen]
    if missing:
        raise ValueError(f"Place every answer: {', '.join(missing)} is missing.")
    return groups


def format_order(groups: Groups) -> str:
    return " > ".join(" = ".join(str(x) for x in group) for group in groups)


def mid_ranks(groups: Groups) -> dict[Hashable, float]:
    """1-based rank of every member; tied members share the mean of the places they cover."""
    ranks: dict[Hashable, float] = {}
    place = 1
    for group in groups:
        shared = place + (len(group) - 1) / 2
        for member in group:
            ranks[member] = shared
        place += len(group)
    return ranks


def preferences(groups: Groups) -> dict[tuple[Hashable, Hashable], int]:
    """For every unordered pair (a, b) with a < b: +1 when a is ranked above b, -1 when below,
    0 for a tie."""
    rank = mid_ranks(groups)
    out = {}
    for a, b in itertools.combinations(sorted(rank, key=str), 2):
        out[(a, b)] = int(np.sign(rank[b] - rank[a]))
    return out


def model_outcomes(
    groups: Groups, owner: Mapping[Hashable, str | None]
) -> list[tuple[str, str, float]]:
    """Expand one ranking into arena outcomes (model_a, model_b, outcome) with outcome 1.0 when
    model_a's answer is ranked higher, 0.5 for a tie. Answers without a model (human-written)
    and pairs of one model with itself say nothing about models and are left out."""
    out = []
    for (a, b), sign in preferences(groups).items():
        model_a, model_b = owner.get(a), owner.get(b)
        if not model_a or not model_b or model_a == model_b:
            continue
        out.append((model_a, model_b, {1: 1.0, 0: 0.5, -1: 0.0}[sign]))
    return out


@dataclass
class Agreement:
    """Pairwise agreement: over every pair of annotators who judged the same item and every pair
    of its answers, how often they order the two answers the same way (ties included)."""

    rate: float | None
    comparisons: int
    per_annotator: dict[Hashable, tuple[float, int]] = field(default_factory=dict)


def pairwise_agreement(items: Mapping[Hashable, Mapping[Hashable, Groups]]) -> Agreement:
    """`items`: {item: {annotator: groups}}."""
    agree_total = count_total = 0
    per: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for judgments in items.values():
        prefs = {who: preferences(g) for who, g in judgments.items()}
        for u, v in itertools.combinations(sorted(prefs, key=str), 2):
            shared = prefs[u].keys() & prefs[v].keys()
            agree = sum(prefs[u][p] == prefs[v][p] for p in shared)
            agree_total += agree
            count_total += len(shared)
            for who in (u, v):
                per[who][0] += agree
                per[who][1] += len(shared)
    return Agreement(
        rate=agree_total / count_total if count_total else None,
        comparisons=count_total,
        per_annotator={w: (a / n if n else math.nan, n) for w, (a, n) in per.items()},
    )


def krippendorff_alpha_ordinal(units: Iterable[Mapping[Hashable, float]]) -> float | None:
    """Krippendorff's alpha with the ordinal difference function.

    `units`: one mapping {coder: value} per unit (here: one unit per answer of an item, the
    value its mid-rank in that coder's ranking). Units with fewer than two values are not
    pairable and are left out. Returns None when nothing can be compared, 1.0 for perfect
    agreement, about 0 for chance, below 0 for systematic disagreement."""
    units = [list(u.values()) for u in units if len(u) >= 2]
    if not units:
        return None
    values = sorted({v for u in units for v in u})
    index = {v: k for k, v in enumerate(values)}
    size = len(values)
    coincidence = np.zeros((size, size))  # (V, V)
    for unit in units:
        counts = np.bincount([index[v] for v in unit], minlength=size).astype(float)
        pairs = np.outer(counts, counts) - np.diag(counts)  # ordered pairs of different coders
        coincidence += pairs / (len(unit) - 1)
    n_c = coincidence.sum(axis=1)  # (V,)
    n = n_c.sum()
    if size == 1:
        return 1.0
    cumulative = np.concatenate([[0.0], np.cumsum(n_c)])  # cumulative[k] = sum n_g for g < k
    lo, hi = (
        np.minimum.outer(np.arange(size), np.arange(size)),
        np.maximum.outer(np.arange(size), np.arange(size)),
    )
    # delta(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2) ** 2
    span = cumulative[hi + 1] - cumulative[lo]
    delta = (span - (n_c[lo] + n_c[hi]) / 2) ** 2
    observed = (coincidence * delta).sum()
    expected = (np.outer(n_c, n_c) * delta).sum() / (n - 1)
    if expected == 0:
        return 1.0
    return float(1.0 - observed / expected)


def rank_units(items: Mapping[Hashable, Mapping[Hashable, Groups]]) -> list[dict]:
    """Turn {item: {annotator: groups}} into alpha's units: one per (item, answer)."""
    units: dict[tuple, dict] = defaultdict(dict)
    for item, judgments in items.items():
        for who, groups in judgments.items():
            for member, rank in mid_ranks(groups).items():
                units[(item, member)][who] = rank
    return list(units.values())


def consensus(rankings: Sequence[Groups], *, iterations: int = 200) -> list[tuple[Hashable, float]]:
    """A consensus order over the answers of one item from all its rankings: a Bradley-Terry
    fit (Hunter's MM algorithm) on the pairwise outcomes, ties as half a win and half a point of
    pseudo-count per pair so that an unbeaten answer keeps a finite strength. Returns
    (member, strength) best first; strengths sum to 1."""
    members = sorted({m for g in rankings for grp in g for m in grp}, key=str)
    if not members:
        return []
    k = {m: i for i, m in enumerate(members)}
    size = len(members)
    wins = np.full((size, size), 0.25)  # wins[i, j]: i over j; 0.25 + 0.25 = half a game prior
    np.fill_diagonal(wins, 0.0)
    for groups in rankings:
        for (a, b), sign in preferences(groups).items():
            i, j = k[a], k[b]
            wins[i, j] += {1: 1.0, 0: 0.5, -1: 0.0}[sign]
            wins[j, i] += {1: 0.0, 0: 0.5, -1: 1.0}[sign]
    games = wins + wins.T  # (M, M)
    p = np.full(size, 1.0 / size)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = wins.sum(axis=1) / denom
        new /= new.sum()
        if np.abs(new - p).max() < 1e-10:
            p = new
            break
        p = new
    order = np.argsort(-p, kind="stable")
    return [(members[i], float(p[i])) for i in order]


@dataclass
class PositionBias:
    """How the place an answer was shown in relates to how it was ranked. Without bias every
    position has a mean normalised rank near 0.5 and the earlier-shown answer of a decisive pair
    wins about half of the time."""

    positions: list[dict]
    first_shown_win_rate: float | None
    decisive_pairs: int
    z: float | None


def position_bias(records: Iterable[tuple[Sequence[Hashable], Groups]]) -> PositionBias:
    """`records`: (display order, groups) per ranking."""
    rank_sum: dict[int, float] = defaultdict(float)
    top: dict[int, int] = defaultdict(int)
    shown: dict[int, int] = defaultdict(int)
    earlier_wins = decisive = 0
    for order, groups in records:
        if len(order) < 2:
            continue
        rank = mid_ranks(groups)
        k = len(order)
        for pos, member in enumerate(order):
            if member not in rank:
                continue
            shown[pos] += 1
            rank_sum[pos] += (rank[member] - 1) / (k - 1)
            top[pos] += member in groups[0]
        for i, j in itertools.combinations(range(k), 2):
            a, b = order[i], order[j]
            if a in rank and b in rank and rank[a] != rank[b]:
                decisive += 1
                earlier_wins += rank[a] < rank[b]
    positions = [
        {
            "position": pos + 1,
            "shown": shown[pos],
            "mean_rank": rank_sum[pos] / shown[pos],
            "top_rate": top[pos] / shown[pos],
        }
        for pos in sorted(shown)
    ]
    rate = earlier_wins / decisive if decisive else None
    z = (earlier_wins - decisive / 2) / math.sqrt(decisive / 4) if decisive else None
    return PositionBias(positions, rate, decisive, z)


def gold_score(groups: Groups, gold: Groups) -> float:
    """The share of the gold answer's pairwise preferences (ties included) that a ranking
    reproduces: 1.0 is a perfect match."""
    want = preferences(gold)
    got = preferences(groups)
    if not want:
        return 1.0
    return sum(got.get(pair) == sign for pair, sign in want.items()) / len(want)
