"""From stored judgments to the figures stored on each `Evaluation`: the arrays
`evaluation.metrics` takes, built per suite and judge."""

from __future__ import annotations

import math

import numpy as np

from evaluation.metrics.agreement import position_bias
from evaluation.metrics.leaderboard import leaderboard
from evaluation.metrics.length_controlled import Judgments
from evaluation.models import Evaluation, Judgment, Order

FIELDS = (
    "win_rate",
    "standard_error",
    "n_wins",
    "n_wins_base",
    "n_draws",
    "n_total",
    "discrete_win_rate",
    "avg_length",
)


def _number(value):
    if value is None:
        return None
    return None if isinstance(value, float) and math.isnan(value) else value


def per_prompt(evaluation: Evaluation) -> dict[int, dict]:
    """{prompt index: {"orders": {order: preference}, "length", "baseline_length"}}."""
    out: dict[int, dict] = {}
    judgments = Judgment.objects.filter(evaluation=evaluation).select_related(
        "prompt", "model_answer__generation", "baseline_answer__generation"
    )
    for j in judgments:
        row = out.setdefault(
            j.prompt.index,
            {
                "orders": {},
                "length": len(j.model_answer.text),
                "baseline_length": len(j.baseline_text),
            },
        )
        row["orders"][j.order] = j.preference
    return out


def _mean(prefs) -> float:
    values = [p for p in prefs if p is not None]
    return float(np.mean(values)) if values else math.nan


def judgments_of(evaluation: Evaluation, rows: dict[int, dict]) -> Judgments:
    """A contestant's arrays; with both orders judged, a prompt's preference is their mean, so
    that the judge's position bias cancels."""
    index = sorted(rows)
    return Judgments(
        model=evaluation.generator,
        instruction=np.asarray(index, dtype=int),
        preference=np.asarray([_mean(rows[i]["orders"].values()) for i in index], dtype=float),
        length=np.asarray([rows[i]["length"] for i in index], dtype=float),
        baseline_length=np.asarray([rows[i]["baseline_length"] for i in index], dtype=float),
    )


def bias_of(rows: dict[int, dict]) -> float | None:
    """Share of prompts judged in both orders whose verdict changed with the order."""
    both = [r["orders"] for r in rows.values() if len(r["orders"]) == 2]
    if not both:
        return None
    # (A, B) = (baseline, model): baseline-first is the plain order, model-first the swapped
    # one, whose preference in shown terms is 3 - the model's preference.
    plain = [o[Order.BASELINE_FIRST] for o in both]
    swapped = [None if o[Order.MODEL_FIRST] is None else 3 - o[Order.MODEL_FIRST] for o in both]
    return _number(position_bias(plain, swapped).rate)


def evaluations_metrics(*, suite, evaluations: list[Evaluation]) -> dict[int, dict]:
    """{evaluation id: fields} for every evaluation that has judgments."""
    rows = {e.pk: per_prompt(e) for e in evaluations}
    judged = [e for e in evaluations if rows[e.pk]]
    if not judged:
        return {}
    arrays = [judgments_of(e, rows[e.pk]) for e in judged]
    board = {r.model: r for r in leaderboard(arrays, n_instructions=suite.prompts.count() or None)}
    out = {}
    for evaluation in judged:
        row = board[evaluation.generator]
        fields = {name: _number(getattr(row, name)) for name in FIELDS}
        fields["lc_win_rate"] = _number(row.length_controlled_winrate)
        fields["lc_standard_error"] = _number(row.lc_standard_error)
        fields["position_bias"] = bias_of(rows[evaluation.pk])
        out[evaluation.pk] = fields
    return out
