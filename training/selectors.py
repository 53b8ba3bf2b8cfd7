"""Reads of training: run lists, the run page's charts, the model tree."""

from __future__ import annotations

from arena.models import Contestant
from training.models import TrainingRun

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


def run_charts(run: TrainingRun, *, width: int = 360, height: int = 120) -> list[dict]:
    """One small SVG line chart per reported metric: polyline points in pixels plus ranges."""
    charts = []
    for name in CHART_METRICS:
        points = [
            (m["step"], m[name])
            for m in run.metrics
            if isinstance(m.get(name), int | float) and "step" in m
        ]
        if len(points) < 2:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = min(xs), max(xs) or 1
        y0, y1 = min(ys), max(ys)
        span_x, span_y = (x1 - x0) or 1, (y1 - y0) or 1
        inner_w, inner_h = width - 16, height - 16
        pixels = " ".join(
            f"{8 + (x - x0) / span_x * inner_w:.1f},{height - 8 - (y - y0) / span_y * inner_h:.1f}"
            for x, y in points
        )
        charts.append(
            {
                "name": name,
                "points": pixels,
                "first": ys[0],
                "last": ys[-1],
                "min": y0,
                "max": y1,
                "width": width,
                "height": height,
            }
        )
    return charts


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
