"""Import a public preference dataset into a project (created when it does not exist).

    python manage.py import_dataset --project NAME --format {hh,preference,arena} --input FILE
        [--skip-bad]

hh: Anthropic HH `.jsonl`/`.jsonl.gz` (chosen/rejected transcripts); preference: TRL
prompt/chosen/rejected (JSONL or Parquet, text or messages); arena: a public battle file (CSV or
JSONL, optionally gzipped) stored as battles. Bad rows are reported with their line numbers and
nothing is stored, unless --skip-bad stores the good rows and lists the bad ones.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotation.dataset_imports import (
    IMPORT_FORMATS,
    DatasetImportError,
    dataset_import,
    project_for_import,
)


class Command(BaseCommand):
    help = "Import HH, TRL preference or arena battle files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project name (or slug)")
        parser.add_argument("--format", required=True, choices=IMPORT_FORMATS)
        parser.add_argument("--input", required=True, help="the file to import")
        parser.add_argument(
            "--skip-bad", action="store_true", help="store the good rows and report the bad ones"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # One transaction with the project: a refused file leaves no new empty project.
            with transaction.atomic():
                project = (
                    None
                    if options["format"] == "arena"
                    else project_for_import(name=options["project"])
                )
                report = dataset_import(
                    fmt=options["format"],
                    path=options["input"],
                    project=project,
                    skip_bad=options["skip_bad"],
                )
        except (OSError, DatasetImportError, ValueError) as exc:
            raise CommandError(f"{options['input']}: {exc}") from exc
        if options["format"] == "arena":
            self.stdout.write(f"Imported {report.battles} battles.")
            return
        self.stdout.write(
            f"Imported into {project.name}: {report.prompts} new prompts, "
            f"{report.completions} completions, {report.rankings} judgments."
        )
        for line, reason in report.skipped:
            self.stderr.write(f"skipped line {line}: {reason}")
