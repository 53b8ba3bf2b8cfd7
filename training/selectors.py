"""Reads of training: run lists, the run page's charts, the model tree, judges and their
agreement with people, a run's arena rating."""

from __future__ import annotations

from django.db.models import Avg, Count

from arena.models import Contestant
from training.models import JudgeJobKind, JudgeScore, RewardModel, TrainingRun

# Metrics drawn on the run page, in this order, when the trainer reports them.
CHART_METRICS = (
    "loss",
    "accuracy",
    "eval_accuracy",
    "margins",
    "rewards/margins",
    "kl",
    "learning_rate",
    "lr",
)


def run_list(*, status: str = "", kind: str = ""):
    qs = TrainingRun.objects.select_related("base_model", "snapshot", "result_contestant")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def run_charts(run: TrainingRun) -> list[dict]:
    """One chart per reported metric with at least two points: its steps and values (drawn by
    static/js/run-charts.js) and its first, last, lowest and highest value."""
    charts = []
    for name in CHART_METRICS:
        points = [
            (m["step"], m[name])
            for m in run.metrics
            if isinstance(m.get(name), int | float) and "step" in m
        ]
        if len(points) < 2:
            continue
        ys = [p[1] for p in points]
        charts.append(
            {
                "name": name,
                "steps": [p[0] for p in points],
                "values": ys,
                "first": ys[0],
                "last": ys[-1],
                "min": min(ys),
                "max": max(ys),
            }
        )
    return charts


def run_settings(run: TrainingRun) -> list[dict]:
    """The run's hyper-parameters as rows (name, value, whether it is the kind's default), the
    ones chosen for this run first, then the defaults it ran with."""
    from training.services import DEFAULTS

    defaults = DEFAULTS.get(run.kind, {})
    chosen = run.hyperparameters or {}
    rows = [{"name": k, "value": v, "default": False} for k, v in sorted(chosen.items())]
    rows += [
        {"name": k, "value": v, "default": True}
        for k, v in sorted(defaults.items())
        if k not in chosen
    ]
    return rows


def model_tree() -> list[dict]:
    """Contestants with local weights as a lineage tree: roots first, children under parents,
    each with the run that produced it (if any)."""
    nodes = list(Contestant.objects.exclude(backend="external").select_related("source_run"))
    children: dict[int | None, list[Contestant]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node)

    def build(parent_id: int | None, depth: int) -> list[dict]:
        out = []
        for node in sorted(children.get(parent_id, []), key=lambda c: c.display_name):
            run = getattr(node, "source_run", None)
            out.append({"contestant": node, "run": run, "depth": depth})
            out.extend(build(node.pk, depth + 1))
        return out

    return build(None, 0)


def judge_list():
    return RewardModel.objects.select_related("run", "base_model")


def judge_agreement(*, judge: RewardModel) -> dict:
    """How often the judge prefers the side people voted for, over voted battles with a
    winner (ties and "both bad" say nothing about a preference and are counted apart). A
    battle where the judge scores both sides the same counts half."""
    rows = JudgeScore.objects.filter(judge=judge, battle__winner__in=("model_a", "model_b"))
    sides: dict[int, dict] = {}
    for battle_id, side, score, winner in rows.values_list(
        "battle_id", "side", "score", "battle__winner"
    ).iterator(chunk_size=5000):
        sides.setdefault(battle_id, {"winner": winner})[side] = score
    agree = 0.0
    compared = 0
    for entry in sides.values():
        if "a" not in entry or "b" not in entry:
            continue
        compared += 1
        if entry["a"] == entry["b"]:
            agree += 0.5
        elif (entry["a"] > entry["b"]) == (entry["winner"] == "model_a"):
            agree += 1
    scored = JudgeScore.objects.filter(judge=judge, side="a").count()
    no_preference = JudgeScore.objects.filter(
        judge=judge, side="a", battle__winner__in=("tie", "both_bad")
    ).count()
    return {
        "battles_scored": scored,
        "compared": compared,
        "agreement": agree / compared if compared else None,
        "ties_or_both_bad": no_preference,
        "unvoted": JudgeScore.objects.filter(judge=judge, side="a", battle__winner="").count(),
    }


def judge_summary(*, judge: RewardModel) -> dict:
    """What the judge page shows: agreement with votes, scored candidates per project, recent
    jobs and flags."""
    candidates = (
        JudgeScore.objects.filter(judge=judge, completion__isnull=False)
        .values("completion__prompt__project__slug", "completion__prompt__project__name")
        .annotate(n=Count("id"), mean=Avg("score"))
        .order_by("completion__prompt__project__name")
    )
    jobs = list(judge_jobs(judge=judge)[:20])
    return {
        "agreement": judge_agreement(judge=judge),
        "candidates": [
            {
                "slug": c["completion__prompt__project__slug"],
                "name": c["completion__prompt__project__name"],
                "n": c["n"],
                "mean": c["mean"],
            }
            for c in candidates
        ],
        "jobs": jobs,
        "active": any(job.is_active for job in jobs),
        "flags": list(judge.flags.select_related("ranking__project", "ranking__annotator")[:50]),
        "flag_count": judge.flags.count(),
    }


def run_arena(run: TrainingRun) -> dict | None:
    """The run's policy and its parent on the newest overall leaderboard snapshot (read live:
    ratings move with every vote). None for runs with no policy in the arena."""
    from arena.selectors import leaderboard_latest

    if run.result_contestant_id is None:
        return None
    snapshot = leaderboard_latest()
    rows = {r["model"]: r for r in snapshot.rows} if snapshot else {}
    return {
        "computed_at": snapshot.computed_at if snapshot else None,
        "battles": snapshot.battles if snapshot else 0,
        "policy": rows.get(run.result_contestant.name),
        "parent": rows.get(run.base_model.name),
    }


def judge_jobs(*, judge: RewardModel):
    """Everything asked of `judge`, with the project or policy each job read."""
    return judge.jobs.select_related("project", "contestant")


def best_of_n_jobs(*, judge: RewardModel):
    """The best-of-n requests made of `judge`."""
    return judge_jobs(judge=judge).filter(kind=JudgeJobKind.BEST_OF_N)
