"""Readers and writers for AlpacaEval's file formats (pure Python, never imports Django).

* ``model_outputs.json``: a JSON list of ``{"instruction", "output", "generator", "dataset"}``.
* ``annotations.json``: a JSON list of judged pairs ``{"instruction", "output_1",
  "generator_1", "output_2", "generator_2", "preference", ...}`` where ``generator_1`` is the
  baseline and ``preference`` is 1 (baseline preferred) .. 2 (``generator_2`` preferred),
  1.5 or the legacy 0 for a draw, ``null`` when the judge gave no verdict. Other fields
  (``annotator``, ``dataset``, ``raw_completion``, prices, ...) are kept when read.
* the leaderboard CSV: an unnamed first column with the model name, then the metric columns.

JSON files may be gzip-compressed (``.json.gz``). Malformed input raises
:class:`AlpacaFormatError`, whose message names the file and the record.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.metrics import LEADERBOARD_COLUMNS, Judgments, LeaderboardRow

ANNOTATION_FIELDS = ("instruction", "output_1", "generator_1", "output_2", "generator_2")
MODEL_OUTPUT_FIELDS = ("instruction", "output", "generator")


class AlpacaFormatError(ValueError):
    """A file that is not in the expected AlpacaEval format."""


@dataclass(frozen=True)
class Annotation:
    """One judged pair; ``preference`` is NaN when the judge gave no verdict."""

    instruction: str
    output_1: str
    generator_1: str
    output_2: str
    generator_2: str
    preference: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        pref = None if math.isnan(self.preference) else self.preference
        record = {f: getattr(self, f) for f in ANNOTATION_FIELDS}
        return {**record, "preference": pref, **self.extra}


@dataclass(frozen=True)
class ModelOutput:
    instruction: str
    output: str
    generator: str
    dataset: str | None = None

    def as_record(self) -> dict[str, Any]:
        record = {"instruction": self.instruction, "output": self.output}
        if self.dataset is not None:
            record["dataset"] = self.dataset
        record["generator"] = self.generator
        return record


# --------------------------------------------------------------------------- JSON files


def json_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, with each folder replaced by its ``*.json`` and ``*.json.gz`` files
    (sorted by name). A missing path raises ``AlpacaFormatError``."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.name.endswith((".json", ".json.gz"))
            )
            if not found:
                raise AlpacaFormatError(f"{path}: folder holds no .json or .json.gz file")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise AlpacaFormatError(f"{path}: no such file or folder")
    return out


def read_json_list(path: str | Path) -> list[dict[str, Any]]:
    """A JSON list of objects from ``path`` (gzip when it ends in ``.gz``)."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise AlpacaFormatError(f"{path}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise AlpacaFormatError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, list):
        raise AlpacaFormatError(
            f"{path}: expected a JSON list of records, got {type(data).__name__}"
        )
    for k, record in enumerate(data):
        if not isinstance(record, dict):
            raise AlpacaFormatError(f"{path}: record [{k}] is not a JSON object")
    return data


def write_json_list(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write records as an indented JSON list, like AlpacaEval (gzip when ``.gz``)."""
    path = Path(path)
    text = json.dumps(list(records), indent=2, ensure_ascii=False)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _text_fields(path: Path, k: int, record: dict[str, Any], names: Sequence[str]) -> list[str]:
    missing = [n for n in names if n not in record]
    if missing:
        raise AlpacaFormatError(f"{path}: record [{k}] lacks field(s) {', '.join(missing)}")
    bad = [n for n in names if not isinstance(record[n], str)]
    if bad:
        raise AlpacaFormatError(f"{path}: record [{k}]: field(s) {', '.join(bad)} must be text")
    return [record[n] for n in names]


def _preference(path: Path, k: int, record: dict[str, Any]) -> float:
    if "preference" not in record:
        raise AlpacaFormatError(f"{path}: record [{k}] lacks field preference")
    value = record["preference"]
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AlpacaFormatError(f"{path}: record [{k}]: preference {value!r} is not a number")
    value = float(value)
    if math.isnan(value) or value == 0.0:  # no verdict, or AlpacaEval's legacy draw
        return value
    if not 1.0 <= value <= 2.0:
        raise AlpacaFormatError(
            f"{path}: record [{k}]: preference {value!r} is out of range "
            "(1 = baseline preferred .. 2 = model preferred, 1.5 or 0 = draw, null = none)"
        )
    return value


# --------------------------------------------------------------------------- annotations


def read_annotations(path: str | Path) -> list[Annotation]:
    """Judged pairs from an AlpacaEval ``annotations.json`` (or ``.json.gz``)."""
    path = Path(path)
    out = []
    for k, record in enumerate(read_json_list(path)):
        texts = _text_fields(path, k, record, ANNOTATION_FIELDS)
        pref = _preference(path, k, record)
        extra = {
            n: v for n, v in record.items() if n not in ANNOTATION_FIELDS and n != "preference"
        }
        out.append(Annotation(*texts, preference=pref, extra=extra))
    return out


def read_annotation_files(paths: Iterable[str | Path]) -> list[Annotation]:
    """Judged pairs from several files or folders (see :func:`json_paths`), in order.

    A contestant judged twice on the same instruction (the same file given twice, or two runs
    of one model) would count twice, so it is refused, naming both places."""
    seen: dict[tuple[str, str], str] = {}
    out: list[Annotation] = []
    for path in json_paths(paths):
        for k, a in enumerate(read_annotations(path)):
            here = f"{path}: record [{k}]"
            key = (a.generator_2, a.instruction)
            if key in seen:
                raise AlpacaFormatError(
                    f"{here}: {a.generator_2} is judged again on an instruction already judged "
                    f"in {seen[key]}"
                )
            seen[key] = here
            out.append(a)
    return out


def write_annotations(path: str | Path, annotations: Iterable[Annotation]) -> None:
    write_json_list(path, (a.as_record() for a in annotations))


def annotations_to_judgments(
    annotations: Sequence[Annotation],
) -> tuple[list[Judgments], str, list[str]]:
    """Group judged pairs by contestant (``generator_2``, in order of first appearance).

    Returns the judgments, the baseline's name and the instructions (the judgments' instruction
    indices point into it; an instruction's text identifies it across files). Every pair must
    share one baseline (``generator_1``), as a leaderboard compares against one model."""
    baselines = sorted({a.generator_1 for a in annotations})
    if len(baselines) != 1:
        found = ", ".join(baselines) if baselines else "none"
        raise AlpacaFormatError(f"expected one baseline (generator_1), found: {found}")
    index: dict[str, int] = {}
    groups: dict[str, list[Annotation]] = {}
    for a in annotations:
        index.setdefault(a.instruction, len(index))
        groups.setdefault(a.generator_2, []).append(a)
    judgments = [
        Judgments(
            model=model,
            instruction=np.array([index[a.instruction] for a in rows], dtype=np.int64),
            preference=np.array([a.preference for a in rows], dtype=float),
            length=np.array([len(a.output_2) for a in rows], dtype=float),
            baseline_length=np.array([len(a.output_1) for a in rows], dtype=float),
        )
        for model, rows in groups.items()
    ]
    return judgments, baselines[0], list(index)


# --------------------------------------------------------------------------- model outputs


def read_model_outputs(path: str | Path) -> list[ModelOutput]:
    """Answers from an AlpacaEval ``model_outputs.json``; ``dataset`` is optional."""
    path = Path(path)
    out = []
    for k, record in enumerate(read_json_list(path)):
        instruction, output, generator = _text_fields(path, k, record, MODEL_OUTPUT_FIELDS)
        dataset = record.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            raise AlpacaFormatError(f"{path}: record [{k}]: field dataset must be text")
        out.append(ModelOutput(instruction, output, generator, dataset))
    return out


def write_model_outputs(path: str | Path, outputs: Iterable[ModelOutput]) -> None:
    write_json_list(path, (o.as_record() for o in outputs))


# --------------------------------------------------------------------------- leaderboard CSV


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def leaderboard_csv(rows: Iterable[LeaderboardRow]) -> str:
    """AlpacaEval's leaderboard CSV: an unnamed model column, full-precision floats, empty
    cells for unknown values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *LEADERBOARD_COLUMNS[1:]])
    for row in rows:
        writer.writerow([_cell(v) for v in row.as_tuple()])
    return buffer.getvalue()


def write_leaderboard_csv(path: str | Path, rows: Iterable[LeaderboardRow]) -> None:
    Path(path).write_text(leaderboard_csv(rows), encoding="utf-8")


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def read_leaderboard_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a leaderboard CSV as dicts; the first (unnamed) column becomes ``model``, numbers
    become int or float, empty cells None. Any other columns (e.g. ``mode``) are kept."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise AlpacaFormatError(f"{path}: empty leaderboard file")
        names = ["model", *header[1:]]
        rows = []
        for k, cells in enumerate(reader, start=2):
            if len(cells) != len(names):
                raise AlpacaFormatError(
                    f"{path}: line {k} has {len(cells)} cells, the header {len(names)}"
                )
            rows.append(
                {
                    n: (c if n == "model" else _parse_cell(c))
                    for n, c in zip(names, cells, strict=True)
                }
            )
    return rows
