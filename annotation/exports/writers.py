"""Streaming writers: rows go out in record batches, so memory stays flat however many rows a
dataset has. One fixed Arrow schema per format keeps every Parquet row group alike and is what
`datasets.load_dataset("parquet", ...)` reads back; the JSONL file holds the same rows, one JSON
object a line (`load_dataset("json", ...)`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
IDS = pa.list_(pa.int64())
NAMES = pa.list_(pa.string())

# Provenance: which prompt, answers, judgments, people, guideline version and models a row is
# from. Settings are JSON text: generation settings vary in shape from model to model.
PAIR_PROVENANCE = [
    ("prompt_id", pa.int64()),
    ("chosen_id", pa.int64()),
    ("rejected_id", pa.int64()),
    ("chosen_model", pa.string()),
    ("rejected_model", pa.string()),
    ("chosen_settings", pa.string()),
    ("rejected_settings", pa.string()),
    ("ranking_ids", IDS),
    ("annotators", NAMES),
    ("guidelines_version", pa.int64()),
    ("category", pa.string()),
]
SINGLE_PROVENANCE = [
    ("prompt_id", pa.int64()),
    ("completion_id", pa.int64()),
    ("demonstration_id", pa.int64()),
    ("model", pa.string()),
    ("settings", pa.string()),
    ("ranking_ids", IDS),
    ("annotators", NAMES),
    ("guidelines_version", pa.int64()),
    ("category", pa.string()),
]
_COUNTS = {
    "header_count": [f"h{k}" for k in range(1, 7)],
    "list_count": ["ordered", "unordered"],
    "bold_count": ["**", "__"],
}
# The public arena files' conv_metadata (see arena.conv_metadata).
CONV_METADATA = pa.struct(
    [
        (name, pa.int64())
        for name in (
            "sum_user_tokens",
            "sum_assistant_a_tokens",
            "sum_assistant_b_tokens",
            "context_a_tokens",
            "context_b_tokens",
            "turns",
        )
    ]
    + [
        (f"{group}_{side}", pa.struct([(key, pa.int64()) for key in keys]))
        for side in "ab"
        for group, keys in _COUNTS.items()
    ]
)
ARENA = [
    ("question_id", pa.string()),
    ("model_a", pa.string()),
    ("model_b", pa.string()),
    ("winner", pa.string()),
    ("anony", pa.bool_()),
    ("category", pa.string()),
    ("categories", NAMES),
    ("tstamp", pa.float64()),
    ("conversation_a", MESSAGES),
    ("conversation_b", MESSAGES),
    ("conv_metadata", CONV_METADATA),
    ("counted", pa.bool_()),
    ("excluded_reason", pa.string()),
]


def schema_for(
    fmt: str, style: str = "standard", *, tie: bool = False, margin: bool = False
) -> pa.Schema:
    """The Arrow schema of a format: its TRL columns first, then provenance."""
    text = MESSAGES if style == "conversational" else pa.string()
    answer = MESSAGES if style == "conversational" else pa.string()
    if fmt == "preference":
        fields = [("prompt", text), ("chosen", answer), ("rejected", answer)]
        fields += [("tie", pa.bool_())] if tie else []
        fields += [("margin", pa.float64())] if margin else []
        return pa.schema(fields + PAIR_PROVENANCE)
    if fmt == "hh":
        fields = [("chosen", pa.string()), ("rejected", pa.string())]
        fields += [("tie", pa.bool_())] if tie else []
        return pa.schema(fields + PAIR_PROVENANCE)
    if fmt == "kto":
        return pa.schema(
            [("prompt", text), ("completion", answer), ("label", pa.bool_())] + SINGLE_PROVENANCE
        )
    if fmt == "sft":
        head = (
            [("messages", MESSAGES)]
            if style == "conversational"
            else [("prompt", pa.string()), ("completion", pa.string())]
        )
        return pa.schema(head + SINGLE_PROVENANCE)
    if fmt == "arena":
        return pa.schema(ARENA)
    raise ValueError(f"unknown format {fmt!r}")


class DatasetWriter:
    """Write the same rows to JSONL, one JSON array and/or Parquet in one pass.

    `paths` maps "jsonl"/"json"/"parquet" to files. Rows are buffered `batch_size` at a time and
    turned into one Arrow record batch (column by column, which is far quicker than row by row). The
    JSONL bytes are hashed as they are written (`jsonl_sha256` once closed), so a large file is
    never read back to be hashed. `progress(rows written)` is called after every batch."""

    def __init__(
        self,
        paths: dict[str, Path],
        schema: pa.Schema,
        *,
        batch_size: int = 20_000,
        progress: Callable[[int], None] | None = None,
    ):
        self.schema, self.batch_size, self.rows = schema, batch_size, 0
        self.names = schema.names
        self.progress = progress
        self.jsonl_sha256: str | None = None
        self._buffer: list[dict] = []
        self._jsonl: IO[bytes] | None = None
        self._array: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._parquet: pq.ParquetWriter | None = None
        if "jsonl" in paths:
            self._jsonl = open(paths["jsonl"], "wb")  # noqa: SIM115
        if "json" in paths:
            self._array = open(paths["json"], "wb")  # noqa: SIM115
            self._array.write(b"[")
        if "parquet" in paths:
            # Min/max statistics only for ids, numbers and flags: on long texts they cost a
            # good share of the write and no reader filters on them.
            stats = [
                f.name
                for f in schema
                if not (pa.types.is_string(f.type) or pa.types.is_nested(f.type))
            ]
            self._parquet = pq.ParquetWriter(
                paths["parquet"], schema, compression="zstd", write_statistics=stats or False
            )

    def write(self, row: dict) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def write_all(self, rows: Iterable[dict | pa.RecordBatch]) -> None:
        """Rows as dicts, or already columnar as Arrow record batches (in any column order)."""
        for row in rows:
            if isinstance(row, pa.RecordBatch):
                self.write_batch(row)
            else:
                self.write(row)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.flush()  # keep the order of rows written before
        batch = pa.RecordBatch.from_arrays(
            [batch.column(name).cast(self.schema.field(name).type) for name in self.names],
            schema=self.schema,
        )
        self.rows += batch.num_rows
        if self._jsonl is not None or self._array is not None:
            # Column by column, then zipped: quicker than `to_pylist()`'s per-row conversion.
            names, dumps = self.names, json.dumps
            columns = [column.to_pylist() for column in batch.columns]
            self._write_jsonl(
                "".join(
                    dumps(dict(zip(names, values, strict=True)), ensure_ascii=False) + "\n"
                    for values in zip(*columns, strict=True)
                )
            )
        if self._parquet is not None:
            self._parquet.write_batch(batch)
        if self.progress is not None:
            self.progress(self.rows)

    def flush(self) -> None:
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        self.rows += len(rows)
        if self._jsonl is not None or self._array is not None:
            dumps = json.dumps
            self._write_jsonl(
                "".join(
                    dumps({n: r.get(n) for n in self.names}, ensure_ascii=False) + "\n"
                    for r in rows
                )
            )
        if self._parquet is not None:
            columns = {n: [r.get(n) for r in rows] for n in self.names}
            self._parquet.write_batch(pa.RecordBatch.from_pydict(columns, schema=self.schema))
        if self.progress is not None:
            self.progress(self.rows)

    def _write_jsonl(self, text: str) -> None:
        """Records a line; into the JSON array too (separated by commas), when asked for."""
        data = text.encode("utf-8")
        if self._jsonl is not None:
            self._digest.update(data)
            self._jsonl.write(data)
        if self._array is not None and data:
            lead = b"\n" if self._array.tell() == 1 else b",\n"
            self._array.write(lead + data.rstrip(b"\n").replace(b"\n", b",\n"))

    def close(self) -> int:
        self.flush()
        if self._jsonl is not None:
            self._jsonl.close()
            self.jsonl_sha256 = self._digest.hexdigest()
        if self._array is not None:
            self._array.write(b"\n]\n")
            self._array.close()
        if self._parquet is not None:
            self._parquet.close()
        return self.rows

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
