"""The fast path of `arena.battle_files`: CSV and JSON Lines parsed by Arrow, in C.

Only the columns a rating needs are read (`model_a`, `model_b`, `winner`, `category`, the 0/1
category flags), as dictionary-encoded columns, so names and labels are looked up once per
distinct value, not once per row. A file this path cannot take as it is returns None and the
row-by-row reader of `arena.battle_files` reads it instead: files with style columns
(conversations or `conv_metadata`, read per row anyway), JSON lists, and any file Arrow refuses
or with a value the checks refuse. That reader then names the line of the first bad row, so
errors read the same on both paths.

Pure Python + NumPy + PyArrow (never imports Django); PyArrow is imported on first use.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from arena import battle_files as bf
from arena.hygiene import model_name_ok
from arena.ratings import WINNER_OUTCOME

USE_THREADS = True  # Arrow parses blocks of the file on its own threads
_BLOCK = 1 << 22  # bytes per parse block


class _Decline(Exception):
    """This file is for the row-by-row reader."""


def read(path: Path, kind: str, checks: bf.Checks, categories: bool = True) -> bf.Battles | None:
    """The battles of a .csv or .jsonl file (optionally .gz), or None when the row-by-row
    reader should read it (see the module's docstring). ``categories=False`` leaves the
    category column and flags unread."""
    import pyarrow as pa

    try:
        table = _csv_table(path, categories) if kind == ".csv" else _jsonl_table(path, categories)
        if table is None:
            return None
        return _battles(table.unify_dictionaries(), checks)
    except (_Decline, pa.ArrowException, OSError, EOFError, UnicodeDecodeError, csv.Error):
        return None


def _header(path: Path) -> list[str]:
    with bf._open_text(path) as handle:
        return next(csv.reader(handle), None) or []


def _wanted(names: list[str], categories: bool) -> list[str] | None:
    """The columns to read, or None when the file holds style columns or lacks a required one."""
    if any(c in bf._STYLE_COLUMNS for c in names) or not set(bf.REQUIRED) <= set(names):
        return None
    if not categories:
        return list(bf.REQUIRED)
    keep = [*bf.REQUIRED, *(["category"] if "category" in names else [])]
    return keep + [c for c in names if bf._is_flag_column(c)]


def _csv_table(path: Path, categories: bool):
    import pyarrow as pa
    from pyarrow import csv as pcsv

    header = _header(path)
    wanted = _wanted(header, categories)
    if wanted is None or len(set(header)) != len(header):
        return None
    text = pa.dictionary(pa.int32(), pa.string())
    return pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(use_threads=USE_THREADS, block_size=_BLOCK),
        convert_options=pcsv.ConvertOptions(
            include_columns=wanted,
            column_types=dict.fromkeys(wanted, text),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _jsonl_table(path: Path, categories: bool):
    """Flat records, with ``category_tag`` groups flattened to ``group.flag`` columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import json as pjson

    raw = pjson.read_json(
        path, read_options=pjson.ReadOptions(use_threads=USE_THREADS, block_size=_BLOCK)
    )
    columns: dict[str, Any] = {}
    for name in raw.column_names:
        column = raw.column(name)
        if name == "category_tag" and pa.types.is_struct(column.type):
            columns.update(_category_tag(column))
        else:
            columns[name] = column
    wanted = _wanted(list(columns), categories)
    if wanted is None:
        return None
    encoded = {}
    for name in wanted:
        column = columns[name]
        if pa.types.is_boolean(column.type) or pa.types.is_integer(column.type):
            column = pc.cast(column, pa.string())
        if not pa.types.is_string(column.type):
            raise _Decline
        encoded[name] = pc.dictionary_encode(column)
    return pa.table(encoded)


def _category_tag(column) -> dict[str, Any]:
    import pyarrow as pa

    flat = {}
    for group in column.type:
        if not pa.types.is_struct(group.type):
            continue
        prefix = group.name.split("_v")[0]
        child = column.combine_chunks().field(group.name)
        for k, field in enumerate(group.type):
            flat[f"{prefix}.{field.name}"] = child.field(k)
    return flat


def _dictionary(table, name: str) -> tuple[list[Any], np.ndarray]:
    """(distinct values, codes (N,)) of a dictionary column; declines on nulls."""
    column = table.column(name)
    if column.null_count:
        raise _Decline
    values = column.chunk(0).dictionary.to_pylist() if column.num_chunks else []
    codes = [_int32(chunk.indices) for chunk in column.chunks]
    return values, (np.concatenate(codes) if codes else np.zeros(0, np.int32))


def _int32(array) -> np.ndarray:
    """An Arrow int32 array without nulls as NumPy, no copy (``to_numpy`` would load pandas)."""
    data = array.buffers()[1]
    if data is None:
        return np.zeros(0, np.int32)
    return np.frombuffer(data, np.int32, len(array), array.offset * 4)


def _mapped(values: list[Any], codes: np.ndarray, table: dict[Any, Any], dtype) -> np.ndarray:
    looked = [table.get(v) for v in values]
    if None in looked:
        raise _Decline
    return np.asarray(looked, dtype=dtype)[codes] if looked else np.zeros(codes.size, dtype)


def _flag(values: list[Any], codes: np.ndarray) -> np.ndarray:
    return _mapped([str(v).strip().lower() for v in values], codes, bf._FLAG_VALUES, bool)


def _battles(table, checks: bf.Checks) -> bf.Battles:
    names_a, codes_a = _dictionary(table, "model_a")
    names_b, codes_b = _dictionary(table, "model_b")
    index = {name: k for k, name in enumerate(dict.fromkeys([*names_a, *names_b]))}
    if "" in index or (checks.names and not all(model_name_ok(n) for n in index)):
        raise _Decline
    model_a = np.asarray([index[n] for n in names_a], np.int64)[codes_a]
    model_b = np.asarray([index[n] for n in names_b], np.int64)[codes_b]
    same = model_a == model_b
    if checks.self_battles == "refuse" and same.any():
        raise _Decline
    labels, winner = _dictionary(table, "winner")
    flags = {}
    for name in table.column_names:
        if bf._is_flag_column(name):
            flags[name] = _flag(*_dictionary(table, name))
    category = None
    if "category" in table.column_names:
        values, codes = _dictionary(table, "category")
        category = np.asarray(values, dtype=str)[codes] if values else np.zeros(0, str)
    both_bad = {**dict.fromkeys(WINNER_OUTCOME, False), **bf._BOTH_BAD}
    battles = bf.Battles(
        models=list(index),
        model_a=model_a,
        model_b=model_b,
        outcome=_mapped(labels, winner, WINNER_OUTCOME, np.float64),
        both_bad=_mapped(labels, winner, both_bad, bool),
        flags=flags,
        category=category,
    )
    if checks.self_battles == "skip" and same.any():
        return battles.select(~same)
    return battles
