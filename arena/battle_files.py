"""Reader for public arena battle files (Chatbot Arena / FastChat / LMArena releases).

Pure Python + NumPy (never imports Django): CSV, JSON Lines or a JSON list, each optionally
gzipped. CSV and JSON Lines files without style columns are parsed by Arrow
(`arena.battle_arrow`); the rest, and any file that path declines, are streamed row by row with
the standard library, which names the line of a bad row.

Columns understood:

* required: ``model_a``, ``model_b``, ``winner`` in ``model_a | model_b | tie | both_bad |
  tie (bothbad)``;
* a ``category`` column (one label per battle), or 0/1 category flags as in the LMArena 2025
  release (``math.math``, ``if.if``, ``creative_writing.creative_writing``, ``criteria.*``;
  JSON records may nest them under ``category_tag`` as ``{"math_v0.1": {"math": true}}``);
  the category ``hard`` is FastChat's rule: at least 6 of the 7 ``criteria.*`` flags;
* style, optional: FastChat's ``conv_metadata`` (token, header, list and bold counts per side),
  else the answers' text from ``conversation_a``/``conversation_b`` (lists of
  ``{"role", "content"}``, JSON-encoded in CSV) or ``response_a``/``response_b``.

Bad rows raise ``ValueError`` naming the line (or record) and the reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from arena import conv_metadata
from arena.hygiene import MODEL_NAME_RULE, model_name_ok
from arena.ratings import STYLE_FEATURES, WINNER_OUTCOME

REQUIRED = ("model_a", "model_b", "winner")
HARD_CRITERIA = (
    "criteria.complexity",
    "criteria.creativity",
    "criteria.domain_knowledge",
    "criteria.problem_solving",
    "criteria.real_world",
    "criteria.specificity",
    "criteria.technical_accuracy",
)
HARD_MIN = 6  # FastChat's "hard_6"
_FLAG_VALUES = {
    "1": True,
    "true": True,
    "yes": True,
    "1.0": True,
    "0": False,
    "false": False,
    "no": False,
    "0.0": False,
    "": False,
    True: True,
    False: False,
}

_BOTH_BAD = {"both_bad": True, "tie (bothbad)": True}

Array = np.ndarray


@dataclass(frozen=True)
class Battles:
    """Battles as arrays; ``model_a``/``model_b`` are codes into ``models``."""

    models: list[str]
    model_a: Array  # (N,) int64
    model_b: Array  # (N,) int64
    outcome: Array  # (N,) float64: 1 A wins, 0 B wins, 0.5 tie
    both_bad: Array  # (N,) bool, a subset of the ties
    flags: dict[str, Array] = field(default_factory=dict)  # name -> (N,) bool
    category: Array | None = None  # (N,) str from a `category` column
    features_a: Array | None = None  # (N, F) style counts of A's answers
    features_b: Array | None = None  # (N, F)
    feature_names: tuple[str, ...] = STYLE_FEATURES
    metadata: list[dict[str, Any]] | None = None  # (N,) conv_metadata, when asked to keep it

    def __len__(self) -> int:
        return int(self.outcome.size)

    def select(self, mask: Array) -> Battles:
        """The battles where ``mask`` (N,) is true; the model list is kept."""
        keep = np.asarray(mask, dtype=bool)
        pick = None if self.features_a is None else (self.features_a[keep], self.features_b[keep])
        return replace(
            self,
            model_a=self.model_a[keep],
            model_b=self.model_b[keep],
            outcome=self.outcome[keep],
            both_bad=self.both_bad[keep],
            flags={k: v[keep] for k, v in self.flags.items()},
            category=None if self.category is None else self.category[keep],
            features_a=None if pick is None else pick[0],
            features_b=None if pick is None else pick[1],
            metadata=None
            if self.metadata is None
            else list(itertools.compress(self.metadata, keep.tolist())),
        )

    def categories(self) -> list[str]:
        """Names accepted by :meth:`category_mask`."""
        names = set(self.flags)
        names |= {k.split(".")[0] for k in self.flags if _is_self_named(k)}
        if all(c in self.flags for c in HARD_CRITERIA):
            names.add("hard")
        if self.category is not None:
            names |= set(np.unique(self.category).tolist())
        return sorted(names)

    def category_mask(self, name: str) -> Array:
        """(N,) bool: a `category` value, a flag column (``math.math``), its short name
        (``math``), or ``hard`` (at least 6 of the 7 ``criteria.*`` flags)."""
        if self.category is not None and name in set(self.category.tolist()):
            return self.category == name
        if name in self.flags:
            return self.flags[name]
        if f"{name}.{name}" in self.flags:
            return self.flags[f"{name}.{name}"]
        if name == "hard" and all(c in self.flags for c in HARD_CRITERIA):
            return np.sum([self.flags[c] for c in HARD_CRITERIA], axis=0) >= HARD_MIN
        raise ValueError(f"unknown category {name!r}; known: {', '.join(self.categories())}")

    def in_category(self, name: str) -> Battles:
        return self.select(self.category_mask(name))


def _is_self_named(column: str) -> bool:
    head, _, tail = column.partition(".")
    return head == tail


def _is_flag_column(column: str) -> bool:
    """Dotted 0/1 columns of the LMArena release; ``*.score`` columns are scores, not flags."""
    return "." in column and not column.endswith(".score")


# --------------------------------------------------------------------------- columns


@dataclass
class _Columns:
    """Raw column values as read; validated in bulk by :func:`_build`."""

    model_a: list[Any] = field(default_factory=list)
    model_b: list[Any] = field(default_factory=list)
    winner: list[Any] = field(default_factory=list)
    flags: dict[str, list[Any]] = field(default_factory=dict)
    category: list[Any] | None = None
    style: list[tuple[list[int], list[int]]] | None = None
    metadata: list[dict[str, Any] | None] | None = None  # kept only when Checks asks


def _first_bad(values: list[Any], ok: Any) -> int | None:
    for k, value in enumerate(values):
        if not ok(value):
            return k
    return None


def _codes(values: list[Any], column: str, index: dict[str, int], line_of: Any) -> Array:
    if set(map(type, values)) - {str} or "" in values:  # the common case costs two C-level scans
        bad = _first_bad(values, lambda v: isinstance(v, str) and v != "")
        if bad is not None:
            raise ValueError(f"line {line_of(bad)}: {column} is empty or missing")
    for name in dict.fromkeys(values):  # unique names in order of appearance, at C speed
        index.setdefault(name, len(index))
    return np.fromiter(map(index.__getitem__, values), np.int64, len(values))


def _lookup(values: list[Any], table: dict[Any, Any]) -> list[Any]:
    """``table.get`` over values; unhashable values (JSON lists, objects) map to None."""
    try:
        return list(map(table.get, values))
    except TypeError:
        return [table.get(v) if isinstance(v, str | bool | int | float) else None for v in values]


def _flag_array(values: list[Any], column: str, line_of: Any) -> Array:
    out = _lookup(values, _FLAG_VALUES)
    if None in out:  # "True", " 1 " and the like: normalise, then look again
        out = [
            _FLAG_VALUES.get(str(v).strip().lower()) if o is None else o
            for v, o in zip(values, out, strict=True)
        ]
        if None in out:
            bad = out.index(None)
            raise ValueError(
                f"line {line_of(bad)}: category flag {column}={values[bad]!r} is not 0/1"
            )
    return np.asarray(out, dtype=bool)


@dataclass(frozen=True)
class Checks:
    """What an import asks of a file beyond its shape: model names a contestant could have
    (`arena.hygiene.model_name_ok`), what to do with a model meeting itself: ``keep``,
    ``skip`` or ``refuse`` (an error naming the line), and whether to keep each battle's
    ``conv_metadata`` (`Battles.metadata`) besides the style totals."""

    names: bool = False
    self_battles: str = "keep"
    keep_metadata: bool = False


STORE_CHECKS = Checks(names=True, self_battles="refuse", keep_metadata=True)


def _check_names(cols: _Columns, index: dict[str, int], line_of: Any) -> None:
    for name in index:
        if not model_name_ok(name):
            column, values = (
                ("model_a", cols.model_a) if name in cols.model_a else ("model_b", cols.model_b)
            )
            raise ValueError(
                f"line {line_of(values.index(name))}: {column} {name!r} is not a model name "
                f"({MODEL_NAME_RULE})"
            )


def _build(cols: _Columns, line_of: Any, checks: Checks = Checks()) -> Battles:
    """Validate the columns in bulk; ``line_of(k)`` gives the source line of row k."""
    index: dict[str, int] = {}
    model_a = _codes(cols.model_a, "model_a", index, line_of)
    model_b = _codes(cols.model_b, "model_b", index, line_of)
    if checks.names:
        _check_names(cols, index, line_of)
    same = np.flatnonzero(model_a == model_b)
    if same.size and checks.self_battles == "refuse":
        name = cols.model_a[int(same[0])]
        raise ValueError(f"line {line_of(int(same[0]))}: {name!r} cannot battle itself")
    outcome = _lookup(cols.winner, WINNER_OUTCOME)
    if None in outcome:
        bad, allowed = outcome.index(None), " | ".join(WINNER_OUTCOME)
        raise ValueError(f"line {line_of(bad)}: winner {cols.winner[bad]!r} is not {allowed}")
    style = np.asarray(cols.style, dtype=np.float64) if cols.style else None  # (N, 2, F)
    battles = Battles(
        models=list(index),
        model_a=model_a,
        model_b=model_b,
        outcome=np.asarray(outcome, dtype=np.float64),
        both_bad=np.asarray(_lookup(cols.winner, _BOTH_BAD), dtype=bool),
        flags={k: _flag_array(v, k, line_of) for k, v in cols.flags.items()},
        category=None if cols.category is None else np.asarray(cols.category, dtype=str),
        features_a=None if style is None else style[:, 0],
        features_b=None if style is None else style[:, 1],
        metadata=cols.metadata if cols.style else None,
    )
    if same.size and checks.self_battles == "skip":
        return battles.select(model_a != model_b)
    return battles


# --------------------------------------------------------------------------- style columns


def _style_pair(line: int, row: dict[str, Any]) -> tuple[list[int], list[int]] | None:
    """Style counts (A, B) in STYLE_FEATURES order, or None when the row has no style source."""
    meta = conv_metadata.from_row(line, row)
    return None if meta is None else conv_metadata.totals(line, meta)


# --------------------------------------------------------------------------- formats


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


_STYLE_COLUMNS = ("conv_metadata", "conversation_a", "conversation_b", "response_a", "response_b")
_CHUNK = 65_536  # rows per block: bounded memory, and per-column list comprehensions run fast


def _csv_line_of(path: Path, simple: bool) -> Any:
    """Row index -> line number. Without multi-line fields that is k + 2; otherwise the file
    is scanned again, which only happens while raising an error."""

    def line_of(k: int) -> int:
        if simple:
            return k + 2
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            next(reader, None)
            start = reader.line_num + 1
            for row_number, _ in enumerate(reader):
                if row_number == k:
                    return start
                start = reader.line_num + 1
        return start

    return line_of


def _csv_block(cols: _Columns, rows: list[list[str]], where: dict[str, Any]) -> None:
    cols.model_a.extend([r[where["model_a"]] for r in rows])
    cols.model_b.extend([r[where["model_b"]] for r in rows])
    cols.winner.extend([r[where["winner"]] for r in rows])
    for name, k in where["flags"].items():
        cols.flags[name].extend([r[k] for r in rows])
    if cols.category is not None:
        cols.category.extend([r[where["category"]] for r in rows])
    if cols.style is not None:
        style = where["style"].items()
        metas = [conv_metadata.from_row(0, {c: r[k] for c, k in style}) for r in rows]
        cols.style.extend(None if m is None else conv_metadata.totals(0, m) for m in metas)
        if cols.metadata is not None:
            cols.metadata.extend(metas)


def _read_csv(path: Path, checks: Checks) -> Battles:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ValueError(f"line 1: missing column(s) {', '.join(missing)}")
        where = {c: header.index(c) for c in (*REQUIRED, "category") if c in header}
        where["flags"] = {c: k for k, c in enumerate(header) if _is_flag_column(c)}
        where["style"] = {c: k for k, c in enumerate(header) if c in _STYLE_COLUMNS}
        cols = _Columns(flags={c: [] for c in where["flags"]})
        cols.category = [] if "category" in where else None
        cols.style = [] if _has_style_source(where["style"]) else None
        cols.metadata = [] if checks.keep_metadata else None
        done = 0
        while rows := [r for r in itertools.islice(reader, _CHUNK) if r]:
            widths = [len(r) != len(header) for r in rows]
            if any(widths):
                bad = widths.index(True)
                line = _csv_line_of(path, reader.line_num == done + len(rows) + 1)(done + bad)
                got = len(rows[bad])
                raise ValueError(f"line {line}: expected {len(header)} fields, got {got}")
            try:
                _csv_block(cols, rows, where)
            except ValueError as exc:  # a style cell; find its row for the message
                raise _locate(exc, path, done, rows, where) from None
            done += len(rows)
        simple = reader.line_num == done + 1
    return _build(cols, _csv_line_of(path, simple), checks)


def _has_style_source(columns: dict[str, int]) -> bool:
    return (
        "conv_metadata" in columns
        or all(f"{kind}_{side}" in columns for kind in ("conversation",) for side in "ab")
        or all(f"response_{side}" in columns for side in "ab")
    )


def _locate(
    exc: ValueError, path: Path, done: int, rows: list[list[str]], where: dict[str, Any]
) -> Exception:
    for k, row in enumerate(rows):
        try:
            _style_pair(0, {c: row[i] for c, i in where["style"].items()})
        except ValueError as inner:
            line = _csv_line_of(path, False)(done + k)
            return ValueError(str(inner).replace("line 0", f"line {line}", 1))
    return exc


def _flatten_category_tag(record: dict[str, Any]) -> dict[str, Any]:
    """``{"category_tag": {"math_v0.1": {"math": true}}}`` -> ``{"math.math": true}``."""
    tags = record.get("category_tag")
    if not isinstance(tags, dict):
        return record
    flat = dict(record)
    for group, values in tags.items():
        if isinstance(values, dict):
            prefix = str(group).split("_v")[0]
            flat.update({f"{prefix}.{k}": v for k, v in values.items()})
    return flat


def _json_lines(handle: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        record = conv_metadata.json_cell(number, "the record", text)
        if not isinstance(record, dict):
            raise ValueError(f"line {number}: a record must be a JSON object")
        yield number, _flatten_category_tag(record)


def _json_list(handle: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    """A JSON list (FastChat's clean_battle files); positions are record numbers."""
    try:
        records = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise ValueError("line 1: a .json battle file must hold a list of records")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ValueError(f"record {number}: a record must be a JSON object")
        yield number, _flatten_category_tag(record)


def _read_json(records: Iterator[tuple[int, dict[str, Any]]], checks: Checks) -> Battles:
    cols, lines = _Columns(), []
    flag_names: list[str] | None = None
    for line, record in records:
        flags = {k: v for k, v in record.items() if _is_flag_column(k)}
        if flag_names is None:  # the first record decides which optional fields the file has
            flag_names = sorted(flags)
            cols.flags = {k: [] for k in flag_names}
            cols.category = [] if "category" in record else None
            cols.style = [] if conv_metadata.from_row(line, record) is not None else None
            cols.metadata = [] if checks.keep_metadata else None
        elif sorted(flags) != flag_names:
            raise ValueError(f"line {line}: category flags differ from the first record's")
        lines.append(line)
        cols.model_a.append(record.get("model_a"))
        cols.model_b.append(record.get("model_b"))
        cols.winner.append(record.get("winner"))
        for key, value in flags.items():
            cols.flags[key].append(value)
        if cols.category is not None:
            cols.category.append(str(record.get("category") or ""))
        if cols.style is not None:
            meta = conv_metadata.from_row(line, record)
            if meta is None:
                raise ValueError(f"line {line}: style fields missing (present in the first record)")
            cols.style.append(conv_metadata.totals(line, meta))
            if cols.metadata is not None:
                cols.metadata.append(meta)
    return _build(cols, lines.__getitem__, checks)


def _format(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    if suffixes and suffixes[-1] in (".csv", ".jsonl", ".ndjson", ".json"):
        return suffixes[-1]
    with _open_text(path) as handle:
        head = handle.read(64).lstrip()[:1]
    return ".json" if head == "[" else ".jsonl" if head == "{" else ".csv"


def read_battles(
    path: str | Path,
    *,
    category: str | None = None,
    checks: Checks = Checks(),
    categories: bool = True,
) -> Battles:
    """Read a battle file (.csv, .jsonl, .json; optionally .gz) into :class:`Battles`.

    ``category`` keeps only that category's battles (see :meth:`Battles.category_mask`).
    ``categories=False`` (with no ``category``) says that the caller needs no category at all:
    the fast path then leaves those columns unread (the result may still carry them).
    By default model names are taken verbatim and rows where a model meets itself are kept
    (public data has a few; the rating fits ignore them); an import that stores the battles
    asks for more with ``checks`` (:data:`STORE_CHECKS`).
    """
    from arena import battle_arrow  # the fast path: Arrow parses; this module checks

    path = Path(path)
    kind = _format(path)
    wanted = categories or category is not None
    fast = battle_arrow.read(path, kind, checks, wanted) if kind in (".csv", ".jsonl") else None
    if fast is not None:
        battles = fast
    elif kind == ".csv":
        battles = _read_csv(path, checks)
    else:
        with _open_text(path) as handle:
            records = _json_list(handle) if kind == ".json" else _json_lines(handle)
            battles = _read_json(records, checks)
    return battles if category is None else battles.in_category(category)
