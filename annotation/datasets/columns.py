"""Standard preference pairs built column by column: the bulk of large exports.

Per ranking, Python does a handful of C-level calls: it flattens the ranking, picks the chosen
and rejected members by the positions its shape gives (`pairs.pair_positions`, worked out once
per shape) and appends them to id lists. Texts, models, settings and the per-ranking columns are
then gathered per chunk by vectorised Arrow `take`s, so no row dict and no per-pair object is
ever made."""

from __future__ import annotations

import itertools
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from annotation.exports import pairs
from annotation.exports.writers import IDS, NAMES


class AnswerColumns:
    """The answers one chunk refers to, as Arrow columns sorted by id (found by binary search)."""

    def __init__(self, ids: list[int], text: list[str], model: list[str], settings: list[str]):
        order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
        self.ids = np.asarray(ids, dtype=np.int64)[order]
        self.text = pa.array(text, pa.string()).take(order)
        self.model = pa.array(model, pa.string()).take(order)
        self.settings = pa.array(settings, pa.string()).take(order)
        self.model_names = self.model.to_pylist()

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        found = np.searchsorted(self.ids, ids)
        if len(ids) and (found.max() >= len(self.ids) or (self.ids[found] != ids).any()):
            raise KeyError("a ranking names an answer that does not exist")
        return found


class Unit(NamedTuple):
    """What every pair of one ranking (or one item's consensus) shares."""

    prompt: str
    prompt_id: int
    ranking_ids: list[int]
    annotators: list[str]
    guidelines_version: int
    category: str


def _getter(positions: tuple[int, ...]):
    """`itemgetter` that always returns a tuple (it returns a bare item for one position)."""
    if len(positions) == 1:
        only = positions[0]
        return lambda flat: (flat[only],)
    if not positions:
        return lambda flat: ()
    return itemgetter(*positions)


class PairColumns:
    """The standard preference pairs of one chunk of rankings, gathered as id columns."""

    def __init__(self, *, strategy: str, keep_ties: bool, margin: bool):
        self.strategy, self.keep_ties, self.margin = strategy, keep_ties, margin
        self.chosen: list[int] = []
        self.rejected: list[int] = []
        self.tie: list[bool] = []
        self.margins: list[float] = []
        self.counts: list[int] = []  # pairs per unit
        self.units: list[Unit] = []
        self._shapes: dict[tuple[int, ...], tuple] = {}

    def __len__(self) -> int:
        return len(self.chosen)

    def _shape(self, sizes: tuple[int, ...]) -> tuple:
        found = self._shapes.get(sizes)
        if found is None:
            chosen, rejected = pairs.pair_positions(sizes, self.strategy)
            found = self._shapes[sizes] = (_getter(chosen), _getter(rejected), len(chosen))
        return found

    def add(self, groups: list[list[int]], unit: Unit, labels: dict) -> None:
        """The pairs of one ranking (`strategy`), or of one consensus order (`all`)."""
        sizes = tuple(map(len, groups))
        get_chosen, get_rejected, strict = self._shape(sizes)
        flat = list(itertools.chain.from_iterable(groups))
        chosen, rejected = get_chosen(flat), get_rejected(flat)
        tied: list[pairs.Pair] = []
        if self.keep_ties and sizes and max(sizes) > 1:
            # Tie pairs list their members in `str` order, so they are found member by member.
            tied = pairs.tie_pairs(groups[:1] if self.strategy == "best-vs-rest" else groups)
        if not strict and not tied:
            return
        self.chosen.extend(chosen)
        self.rejected.extend(rejected)
        self.tie.extend([False] * strict)
        for pair in tied:
            self.chosen.append(pair.chosen)
            self.rejected.append(pair.rejected)
            self.tie.append(True)
        self.counts.append(strict + len(tied))
        self.units.append(unit)
        if self.margin:
            every = itertools.chain(zip(chosen, rejected, itertools.repeat(False)), tied)
            self.margins.extend(pairs.margin(labels, pairs.Pair(*p)) or 0.0 for p in every)

    def batch(self, answers: AnswerColumns, stats) -> pa.RecordBatch:
        """The chunk as one record batch; counts its tie/strict labels and models into `stats`."""
        chosen_ids = np.asarray(self.chosen, dtype=np.int64)
        rejected_ids = np.asarray(self.rejected, dtype=np.int64)
        chosen, rejected = answers.positions(chosen_ids), answers.positions(rejected_ids)
        unit = pa.array(np.repeat(np.arange(len(self.units)), self.counts))
        per_unit = list(zip(*self.units, strict=True))
        columns = {
            "prompt": pa.array(per_unit[0], pa.string()).take(unit),
            "chosen": answers.text.take(chosen),
            "rejected": answers.text.take(rejected),
            "tie": pa.array(self.tie, pa.bool_()),
            "prompt_id": pa.array(per_unit[1], pa.int64()).take(unit),
            "chosen_id": pa.array(chosen_ids),
            "rejected_id": pa.array(rejected_ids),
            "chosen_model": answers.model.take(chosen),
            "rejected_model": answers.model.take(rejected),
            "chosen_settings": answers.settings.take(chosen),
            "rejected_settings": answers.settings.take(rejected),
            "ranking_ids": pa.array(per_unit[2], IDS).take(unit),
            "annotators": pa.array(per_unit[3], NAMES).take(unit),
            "guidelines_version": pa.array(per_unit[4], pa.int64()).take(unit),
            "category": pa.array(per_unit[5], pa.string()).take(unit),
        }
        if self.margin:
            columns["margin"] = pa.array(self.margins, pa.float64())
        ties = sum(self.tie)
        stats.labels["tie"] += ties
        stats.labels["strict"] += len(self.tie) - ties
        # A pair counts once for each model in it (once when both answers share a model).
        same = answers.model.take(chosen).to_numpy(zero_copy_only=False) == answers.model.take(
            rejected
        ).to_numpy(zero_copy_only=False)
        counts = np.bincount(chosen, minlength=len(answers)) + np.bincount(
            rejected[~same], minlength=len(answers)
        )
        for k in np.flatnonzero(counts).tolist():
            stats.models[answers.model_names[k] or "(human)"] += int(counts[k])
        return pa.RecordBatch.from_pydict(columns)
