"""Compute a leaderboard from a public arena battle file, with no database.

    python manage.py compute_leaderboard --input battles.csv.gz --output leaderboard.json \
        [--bootstrap N] [--category C] [--style-control] [--min-votes N] [--anchor MODEL=RATING]

Writes a JSON list, one object per model, best first: model, rating, ci_lower, ci_upper, votes,
rank_ub, rank_spread, elo, wins, ties, losses, ci_method.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena import battle_files, ratings


def _anchor(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        rating = float(value)
        if not math.isfinite(rating):
            raise ValueError
    except ValueError:
        raise CommandError(f"--anchor must look like MODEL=RATING, got {text!r}") from None
    return name, rating


class Command(BaseCommand):
    help = "Bradley-Terry leaderboard with confidence intervals from a battle file (no database)."
    # No database and no URLs: the system checks would import every view (DRF, the schema
    # generator) for nothing; a leaderboard of a file runs without them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--input", required=True, help="battle file: .csv/.jsonl/.json[.gz]")
        parser.add_argument("--output", required=True, help="where to write the JSON list")
        parser.add_argument(
            "--bootstrap",
            type=int,
            default=None,
            metavar="N",
            help="bootstrap rounds for the intervals (default 1000; 0 = sandwich intervals; "
            "with --style-control the default is sandwich, as each round refits all battles)",
        )
        parser.add_argument("--category", help="e.g. math, hard, creative_writing, if")
        parser.add_argument("--style-control", action="store_true", help="control for style")
        parser.add_argument("--min-votes", type=int, default=1, help="hide models below this")
        parser.add_argument("--anchor", help="fix one model's rating, e.g. gpt-4-0613=1000")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            battles = battle_files.read_battles(
                options["input"], category=options["category"], categories=False
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"{options['input']}: {exc}") from exc
        if len(battles) == 0:
            raise CommandError("no battles to rate")
        style = options["style_control"]
        if style and battles.features_a is None:
            raise CommandError("--style-control needs conversation or conv_metadata columns")
        rounds = options["bootstrap"]
        if rounds is None:
            rounds = 0 if style else 1000
        if rounds < 0:
            raise CommandError("--bootstrap must be 0 or more")
        try:
            report = ratings.rate(
                battles.model_a,
                battles.model_b,
                battles.outcome,
                models=battles.models,
                ci="bootstrap" if rounds else "sandwich",
                rounds=rounds,
                seed=options["seed"],
                anchor=_anchor(options["anchor"]) if options["anchor"] else None,
                features_a=battles.features_a if style else None,
                features_b=battles.features_b if style else None,
                feature_names=battles.feature_names,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        rows = ratings.leaderboard_rows(report, min_votes=options["min_votes"])
        for row in rows:
            row["ci_method"] = report.ci.method
        Path(options["output"]).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(f"{len(rows)} models from {len(battles)} battles -> {options['output']}")
        if report.style_coefficients:
            coefficients = ", ".join(f"{k} {v:+.1f}" for k, v in report.style_coefficients.items())
            self.stdout.write(f"style coefficients (rating points per SD): {coefficients}")
