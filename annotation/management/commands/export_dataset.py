"""Export a project's data (or the arena's votes) to one JSONL, JSON array or Parquet file,
streamed (the JSON array is what FastChat's leaderboard code reads for arena votes).

    python manage.py export_dataset --project NAME --format {preference,kto,sft,hh,arena}
        [--pairs {all,best-vs-rest,consensus}] [--ties {drop,keep}]
        [--style {standard,conversational}] [--source {rankings,demonstrations}]
        [--accepted-only] [--since DATE] [--until DATE] [--min-agreement X] [--gold-min X]
        [--category C ...] [--guidelines-version N ...] --output FILE.jsonl|FILE.json|FILE.parquet

This writes a file, not a snapshot: for data a training run points at, create a snapshot
(web page or API), which is immutable and hashed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.datasets import DatasetError, Filters, Spec, export_to_files
from annotation.models import PairStrategy, Project, SnapshotStyle, TiesPolicy

FORMATS = ("preference", "kto", "sft", "hh", "arena")


class Command(BaseCommand):
    help = "Export preference, KTO, SFT, HH or arena data to JSONL or Parquet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="project name or slug (not needed for arena)")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--pairs", default="all", choices=PairStrategy.values)
        parser.add_argument("--ties", default="drop", choices=TiesPolicy.values)
        parser.add_argument("--style", default="standard", choices=SnapshotStyle.values)
        parser.add_argument(
            "--source",
            choices=("rankings", "demonstrations"),
            help="for sft: demonstrations (default) or each ranking's best",
        )
        parser.add_argument("--accepted-only", action="store_true")
        parser.add_argument("--since", help="first day, YYYY-MM-DD")
        parser.add_argument("--until", help="last day, YYYY-MM-DD (inclusive)")
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--gold-min", type=float, help="annotators' least mean gold score")
        parser.add_argument("--category", action="append", default=[])
        parser.add_argument("--guidelines-version", type=int, action="append", default=[])
        parser.add_argument("--output", required=True, help="FILE.jsonl, FILE.json or FILE.parquet")

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(options["output"])
        kind = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}.get(output.suffix)
        if kind is None:
            raise CommandError("--output must end in .jsonl, .json (one JSON array) or .parquet")
        fmt = options["format"]
        source = (
            "arena"
            if fmt == "arena"
            else (options["source"] or ("demonstrations" if fmt == "sft" else "rankings"))
        )
        project = None
        if source != "arena":
            name = options["project"] or ""
            project = (
                Project.objects.filter(name=name).first()
                or Project.objects.filter(slug=name).first()
            )
            if project is None:
                raise CommandError(f"No project called {name!r}.")
        try:
            filters = Filters.parse(
                {
                    "date_from": options["since"],
                    "date_to": options["until"],
                    "accepted_only": options["accepted_only"],
                    "min_agreement": options["min_agreement"],
                    "gold_min": options["gold_min"],
                    "categories": options["category"],
                    "guidelines_versions": options["guidelines_version"],
                }
            )
            spec = Spec(
                source=source,
                format=fmt,
                project=project,
                style=options["style"],
                pairs=options["pairs"],
                ties=options["ties"],
                filters=filters,
            )
            output.parent.mkdir(parents=True, exist_ok=True)
            stats = export_to_files(spec=spec, paths={kind: output})
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Wrote {stats.rows} rows to {output}.")
