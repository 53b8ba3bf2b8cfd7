"""Compute AlpacaEval-style win rates from judge annotation files, with no database.

    python manage.py compute_winrate --input PATH [PATH ...] --output leaderboard.csv

Each PATH is an AlpacaEval ``annotations.json`` (or ``.json.gz``), or a folder of them; all
share one baseline (``generator_1``), and no contestant may be judged twice on one instruction.
Writes AlpacaEval's leaderboard CSV, one row per ``generator_2``, best length-controlled win
rate first: an unnamed model column, win_rate, standard_error, n_wins, n_wins_base, n_draws,
n_total, discrete_win_rate, avg_length, length_controlled_winrate, lc_standard_error. See
docs/evaluation.md.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation import alpaca_formats
from evaluation.metrics import leaderboard


class Command(BaseCommand):
    help = "Raw and length-controlled win rates from AlpacaEval annotation files (no database)."
    requires_system_checks: list[str] = []  # nothing here touches the database or the apps

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--input",
            nargs="+",
            required=True,
            metavar="PATH",
            help="annotations .json/.json.gz files, or folders of them",
        )
        parser.add_argument("--output", required=True, help="where to write the leaderboard CSV")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            annotations = alpaca_formats.read_annotation_files(options["input"])
            if not annotations:
                raise CommandError("the input holds no annotations")
            judgments, baseline, instructions = alpaca_formats.annotations_to_judgments(annotations)
        except alpaca_formats.AlpacaFormatError as exc:
            raise CommandError(str(exc)) from None
        rows = leaderboard(judgments, baseline=baseline, n_instructions=len(instructions))
        try:
            alpaca_formats.write_leaderboard_csv(options["output"], rows)
        except OSError as exc:
            raise CommandError(f"{options['output']}: cannot write ({exc})") from None
        self.stdout.write(
            f"{len(rows)} models against {baseline} on {len(instructions)} instructions "
            f"-> {options['output']}"
        )
