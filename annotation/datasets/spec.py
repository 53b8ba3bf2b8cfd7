"""What a dataset is asked to be (`Filters`, `Spec`), what the export learns about its rows
while they stream (`Stats`), and the dataset card made of both."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from annotation.models import (
    DatasetSnapshot,
    PairStrategy,
    Project,
    SnapshotSource,
    SnapshotStyle,
    TiesPolicy,
)

FORMATS_OF = {
    SnapshotSource.RANKINGS: {"preference", "kto", "sft", "hh"},
    SnapshotSource.DEMONSTRATIONS: {"sft"},
    SnapshotSource.ARENA: {"arena"},
}
IMPORTED = "(imported)"  # the annotator name of judgments imported from a public dataset


class DatasetError(ValueError):
    """A request that cannot become a dataset; the message is for the researcher."""


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    accepted_only: bool = False
    min_agreement: float | None = None  # per-item pairwise agreement, items with 2+ annotators
    gold_min: float | None = None  # annotators whose mean gold score reaches this
    categories: tuple[str, ...] = ()
    guidelines_versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, raw: dict | None) -> Filters:
        """Filters from a request, strictly typed: a wrong type is refused, never coerced
        (a string "false" is not true; a string of categories is not a list of letters)."""
        if raw is not None and not isinstance(raw, dict):
            raise DatasetError("filters must be an object of name: value.")
        raw = dict(raw or {})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise DatasetError(f"Unknown filters: {', '.join(sorted(unknown))}.")
        try:
            out = cls(
                date_from=_date(raw.get("date_from")),
                date_to=_date(raw.get("date_to")),
                accepted_only=_flag(raw.get("accepted_only", False), "accepted_only"),
                min_agreement=_share(raw.get("min_agreement"), "min_agreement"),
                gold_min=_share(raw.get("gold_min"), "gold_min"),
                categories=tuple(sorted(_strings(raw.get("categories"), "categories"))),
                guidelines_versions=tuple(sorted(_versions(raw.get("guidelines_versions")))),
            )
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"Bad filter: {exc}") from None
        if out.date_from and out.date_to and out.date_from > out.date_to:
            raise DatasetError("date_from is after date_to.")
        return out

    def as_json(self) -> dict:
        """Only the filters that are set, in a stable form (stored on the snapshot)."""
        out: dict = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, False, ()):
                continue
            out[name] = (
                value.isoformat()
                if isinstance(value, date)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out


def _date(value) -> date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _share(value, name: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number in 0..1; got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        raise ValueError(f"{name} must lie in 0..1")
    return number


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{name} must be true or false; got {value!r}")


def _strings(value, name: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of names; got {value!r}")
    return [v for v in value if v]


# Guideline versions are small positive counters (a PositiveIntegerField).
VERSION_MAX = 2**31 - 1


def _versions(value) -> list[int]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"guidelines_versions must be a list of numbers; got {value!r}")
    out = []
    for v in value:
        integral = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
        if isinstance(v, bool) or not integral or not 1 <= v <= VERSION_MAX:
            raise ValueError(
                f"guidelines_versions must be whole numbers from 1 to {VERSION_MAX}; got {v!r}"
            )
        out.append(int(v))
    return out


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Spec:
    """What to export: everything a snapshot stores about its request."""

    source: str
    format: str
    project: Project | None = None
    style: str = SnapshotStyle.STANDARD
    pairs: str = PairStrategy.ALL
    ties: str = TiesPolicy.DROP
    filters: Filters = field(default_factory=Filters)

    def check(self) -> None:
        if self.source not in SnapshotSource.values:
            raise DatasetError(f"Unknown source {self.source!r}.")
        if self.format not in FORMATS_OF[self.source]:
            allowed = ", ".join(sorted(FORMATS_OF[self.source]))
            raise DatasetError(f"A {self.source} dataset can be written as: {allowed}.")
        if self.source != SnapshotSource.ARENA and self.project is None:
            raise DatasetError("Choose a project.")
        if self.style not in SnapshotStyle.values:
            raise DatasetError(f"Unknown style {self.style!r}.")
        if self.pairs not in PairStrategy.values:
            raise DatasetError(f"Unknown pair strategy {self.pairs!r}.")
        if self.ties not in TiesPolicy.values:
            raise DatasetError(f"Unknown ties policy {self.ties!r}.")

    @classmethod
    def of(cls, snapshot: DatasetSnapshot) -> Spec:
        return cls(
            source=snapshot.source,
            format=snapshot.format,
            project=snapshot.project,
            style=snapshot.style,
            pairs=snapshot.pairs,
            ties=snapshot.ties,
            filters=Filters.parse(snapshot.filters),
        )


# --------------------------------------------------------------------------- what the rows say


@dataclass
class Stats:
    """What the card says about the rows, gathered while they stream (constant memory)."""

    rows: int = 0
    judgments: int = 0
    prompts: int = 0
    annotators: Counter = field(default_factory=Counter)
    guidelines_versions: set = field(default_factory=set)
    models: Counter = field(default_factory=Counter)
    categories: Counter = field(default_factory=Counter)
    agree: int = 0
    compared: int = 0
    items_shared: int = 0
    labels: Counter = field(default_factory=Counter)  # label/tie/winner -> rows
    content_hash: str | None = None  # sha256 of the JSONL file, once written

    def card(self) -> dict:
        return {
            "rows": self.rows,
            "judgments": self.judgments,
            "prompts": self.prompts,
            "annotators": len(self.annotators),
            "judgments_per_annotator": dict(self.annotators.most_common(100)),
            "agreement": {
                "pairwise_rate": self.agree / self.compared if self.compared else None,
                "comparisons": self.compared,
                "items_with_several_annotators": self.items_shared,
            },
            "guidelines_versions": sorted(self.guidelines_versions),
            "models": dict(self.models.most_common()),
            "categories": dict(self.categories.most_common()),
            "row_labels": dict(self.labels),
        }


# --------------------------------------------------------------------------- the card


def card_build(
    *, snapshot: DatasetSnapshot, spec: Spec, stats: Stats, files: dict[str, dict]
) -> dict:
    """The card of a built snapshot; `files` maps each kind to its name, bytes and sha256."""
    pairwise = spec.format in ("preference", "hh")
    return {
        "name": snapshot.name,
        "snapshot_id": snapshot.pk,
        "source": spec.source,
        "project": spec.project.name if spec.project else None,
        "format": spec.format,
        "style": spec.style,
        "pairs": spec.pairs if pairwise else None,
        "ties": spec.ties if pairwise else None,
        "filters": spec.filters.as_json(),
        "created_by": snapshot.created_by.get_username() if snapshot.created_by else None,
        "created_at": snapshot.created_at.isoformat(),
        "content_hash": files["jsonl"]["sha256"],
        "files": files,
        **stats.card(),
    }


def card_markdown(card: dict) -> str:
    """A Hugging Face style dataset card: YAML front matter naming the data files, then prose."""
    files = card["files"]
    agreement = card["agreement"]["pairwise_rate"]
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        f"  data_files: {files['parquet']['name']}",
        "---",
        "",
        f"# {card['name']}",
        "",
        f"{card['rows']} rows of **{card['format']}** data ({card['style']}) from "
        f"{card['source']}"
        + (f" of project *{card['project']}*" if card["project"] else "")
        + f", snapshot #{card['snapshot_id']}, content hash `{card['content_hash']}`.",
        "",
        f"- judgments: {card['judgments']}; prompts: {card['prompts']}; "
        f"annotators: {card['annotators']}",
        f"- pairwise agreement: {'n/a' if agreement is None else f'{agreement:.3f}'} "
        f"over {card['agreement']['comparisons']} comparisons",
        f"- guideline versions: {', '.join(map(str, card['guidelines_versions'])) or 'n/a'}",
        f"- models: {', '.join(card['models']) or 'none'}",
        f"- pairs: {card['pairs'] or 'n/a'}; ties: {card['ties'] or 'n/a'}",
        f"- filters: `{json.dumps(card['filters'], sort_keys=True)}`",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("parquet", data_files="{files["parquet"]["name"]}", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)
