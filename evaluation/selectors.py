"""Reads of evaluation: suites, the evaluation leaderboard of a suite and judge (with its
win-rate-vs-length scatter as SVG geometry, judge agreement and the rank correlation with the
arena), and the per-prompt drill-down."""

from __future__ import annotations

import math

from evaluation.metrics.agreement import judge_agreement, rank_correlation
from evaluation.metrics.leaderboard import LeaderboardRow
from evaluation.metrics_store import per_prompt
from evaluation.models import Evaluation, EvaluationRun, Judgment, Suite


def suite_list():
    return Suite.objects.select_related("baseline").order_by("-created_at")


def suite_judge_labels(*, suite: Suite) -> list[str]:
    return sorted(set(suite.evaluations.values_list("judge_label", flat=True)))


def evaluation_rows(*, suite: Suite, judge_label: str) -> list[Evaluation]:
    """Evaluations of a suite under one judge, best length-controlled win rate first."""
    rows = list(
        Evaluation.objects.filter(suite=suite, judge_label=judge_label).select_related(
            "contestant", "run"
        )
    )
    return sorted(rows, key=lambda e: (-(e.lc_win_rate or -1), -(e.win_rate or -1)))


def leaderboard_rows(*, suite: Suite, judge_label: str) -> list[LeaderboardRow]:
    """AlpacaEval's leaderboard rows (for the CSV export)."""

    def num(value):
        return math.nan if value is None else value

    return [
        LeaderboardRow(
            model=e.generator,
            win_rate=num(e.win_rate),
            standard_error=num(e.standard_error),
            n_wins=e.n_wins,
            n_wins_base=e.n_wins_base,
            n_draws=e.n_draws,
            n_total=e.n_total,
            discrete_win_rate=num(e.discrete_win_rate),
            avg_length=e.avg_length,
            length_controlled_winrate=num(e.lc_win_rate),
            lc_standard_error=num(e.lc_standard_error),
        )
        for e in evaluation_rows(suite=suite, judge_label=judge_label)
        if e.computed_at is not None
    ]


def scatter_chart(rows: list[Evaluation], width: int = 640, height: int = 320) -> dict | None:
    """Win rate (raw and length-controlled) against average answer length, as SVG geometry."""
    points = [e for e in rows if e.win_rate is not None and e.avg_length is not None]
    if not points:
        return None
    left, right, top, bottom = 60, 20, 20, 40
    max_len = max(max(e.avg_length for e in points), 1)

    def x(v: float) -> float:
        return round(left + v / max_len * (width - left - right), 1)

    def y(v: float) -> float:
        return round(top + (100 - v) / 100 * (height - top - bottom), 1)

    return {
        "width": width,
        "height": height,
        "axis_y": height - bottom,
        "left": left,
        "points": [
            {
                "label": e.generator,
                "x": x(e.avg_length),
                "y": y(e.win_rate),
                "lc_y": y(e.lc_win_rate) if e.lc_win_rate is not None else None,
                "win_rate": round(e.win_rate, 1),
                "lc": None if e.lc_win_rate is None else round(e.lc_win_rate, 1),
                "length": e.avg_length,
            }
            for e in points
        ],
        "x_ticks": [{"x": x(max_len * f), "v": round(max_len * f)} for f in (0, 0.5, 1)],
        "y_ticks": [{"y": y(v), "v": v} for v in (0, 25, 50, 75, 100)],
    }


def judges_agreement(*, suite: Suite) -> list[dict]:
    """For every two judges that judged the same contestant on this suite: the agreement and
    Cohen's kappa of their verdicts on the prompts both judged."""
    by_judge: dict[str, dict[str, Evaluation]] = {}
    for e in suite.evaluations.all():
        by_judge.setdefault(e.judge_label, {})[e.generator] = e
    labels = sorted(by_judge)
    out = []
    for i, first in enumerate(labels):
        for second in labels[i + 1 :]:
            a, b = [], []
            for generator in set(by_judge[first]) & set(by_judge[second]):
                pa = per_prompt(by_judge[first][generator])
                pb = per_prompt(by_judge[second][generator])
                for index in sorted(set(pa) & set(pb)):
                    a.append(_mean(pa[index]["orders"].values()))
                    b.append(_mean(pb[index]["orders"].values()))
            if a:
                found = judge_agreement(a, b)
                out.append(
                    {
                        "judges": (first, second),
                        "agreement": found.agreement,
                        "kappa": None if math.isnan(found.kappa) else found.kappa,
                        "n": found.n,
                    }
                )
    return out


def _mean(values) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else math.nan


def arena_correlation(rows: list[Evaluation]) -> dict | None:
    """Spearman correlation between this board's LC win rates and the newest overall arena
    ratings, over the contestants in both."""
    from arena.selectors import leaderboard_latest

    snapshot = leaderboard_latest()
    if snapshot is None:
        return None
    ratings = {r["model"]: r["rating"] for r in snapshot.rows}
    both = [e for e in rows if e.generator in ratings and e.lc_win_rate is not None]
    if len(both) < 2:
        return {"n": len(both), "spearman": None}
    rho = rank_correlation([e.lc_win_rate for e in both], [ratings[e.generator] for e in both])
    return {"n": len(both), "spearman": None if math.isnan(rho) else rho}


def leaderboard_view(*, suite: Suite | None, judge_label: str = "") -> dict:
    suites = list(suite_list())
    if suite is None:
        return {"suites": suites, "suite": None}
    labels = suite_judge_labels(suite=suite)
    judge_label = judge_label if judge_label in labels else (labels[0] if labels else "")
    rows = evaluation_rows(suite=suite, judge_label=judge_label) if judge_label else []
    return {
        "suites": suites,
        "suite": suite,
        "judge_labels": labels,
        "judge_label": judge_label,
        "rows": rows,
        "scatter": scatter_chart(rows),
        "agreement": judges_agreement(suite=suite),
        "arena": arena_correlation(rows),
        "runs": EvaluationRun.objects.filter(suite=suite).select_related(
            "reward_model", "judge_contestant"
        )[:10],
    }


def evaluation_judgments(*, evaluation: Evaluation):
    """The evaluation's judgments with both answers, in prompt order."""
    return Judgment.objects.filter(evaluation=evaluation).select_related(
        "prompt", "model_answer__generation", "baseline_answer__generation"
    )
