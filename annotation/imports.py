"""Reading prompt files (JSONL, CSV, Parquet) into checked rows, and filling instruction
templates (FLAN style) from the rows of a table. Nothing here writes to the database: a file is
read and checked completely first, so that a malformed one is refused before anything is stored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

ROLES = {"system", "user", "assistant"}
TEXT_COLUMNS = ("prompt", "text", "instruction", "question")
ANSWER_COLUMNS = ("answer", "completion", "response", "output")
FORMATS = ("jsonl", "csv", "parquet")
_SLOT = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
MAX_ROWS = 200_000


class ImportRefused(ValueError):
    """The file cannot be imported; `line` is 1-based (the header is line 1 in a CSV file)."""

    def __init__(self, line: int | None, reason: str):
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}" if line else reason)


class UploadTooLarge(ImportRefused):
    """The file is over PROMPT_IMPORT_MAX_BYTES; refused before a byte of it is read."""


def upload_read(upload) -> bytes:
    """The bytes of an uploaded file, refused by its size before it is read into memory."""
    from django.conf import settings

    limit = settings.PROMPT_IMPORT_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise UploadTooLarge(
            None, f"the file has {upload.size} bytes; at most {limit} are accepted (split it)."
        )
    return upload.read()


@dataclass
class Row:
    line: int
    messages: list[dict]
    category: str = ""
    tags: list[str] = field(default_factory=list)
    answer: str = ""

    @property
    def content_hash(self) -> str:
        return messages_hash(self.messages)


def messages_hash(messages: list[dict]) -> str:
    """Duplicates are the same conversation up to surrounding whitespace and letter case."""
    canonical = [
        {"role": m["role"], "content": " ".join(m["content"].split()).lower()} for m in messages
    ]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def detect_format(filename: str, declared: str = "") -> str:
    fmt = (declared or filename.rsplit(".", 1)[-1]).lower()
    fmt = {"json": "jsonl", "ndjson": "jsonl", "pq": "parquet"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ImportRefused(None, f"Unknown file type {fmt!r}: use JSONL, CSV or Parquet.")
    return fmt


def read_records(data: bytes, fmt: str) -> list[tuple[int, dict]]:
    """(line number, raw record) for every row of the file."""
    if fmt == "jsonl":
        return _read_jsonl(data)
    if fmt == "csv":
        return _read_csv(data)
    return _read_parquet(data)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRefused(line, "the file is not UTF-8 text.") from None


def _read_jsonl(data: bytes) -> list[tuple[int, dict]]:
    out = []
    for number, line in enumerate(_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportRefused(number, f"not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise ImportRefused(number, "each line must be a JSON object.")
        out.append((number, record))
    return out


def _read_csv(data: bytes) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(_text(data)))
    if not reader.fieldnames:
        raise ImportRefused(1, "the CSV file has no header row.")
    out = []
    try:
        for record in reader:
            if None in record:
                raise ImportRefused(reader.line_num, "the row has more cells than the header.")
            out.append((reader.line_num, record))
    except csv.Error as exc:
        raise ImportRefused(reader.line_num, f"malformed CSV ({exc}).") from None
    return out


def _read_parquet(data: bytes) -> list[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise ImportRefused(None, f"not a readable Parquet file ({exc}).") from None
    return [(n, record) for n, record in enumerate(table.to_pylist(), start=1)]


def _messages(value: Any, line: int) -> list[dict]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ImportRefused(line, "`messages` is not a JSON list.") from None
    if not isinstance(value, list) or not value:
        raise ImportRefused(line, "`messages` must be a non-empty list of {role, content}.")
    clean = []
    for k, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise ImportRefused(line, f"message {k} is not an object with role and content.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ImportRefused(line, f"message {k} has role {role!r}; use {sorted(ROLES)}.")
        if not isinstance(content, str) or not content.strip():
            raise ImportRefused(line, f"message {k} has no text content.")
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "user":
        raise ImportRefused(line, "the conversation must end with a user turn to be answered.")
    return clean


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",") if not value.startswith("[") else json.loads(value)
    return [str(t).strip() for t in value if str(t).strip()]


def row_from_record(line: int, record: dict) -> Row:
    """A checked Row from a record holding `messages` or plain text (`prompt`, `text`, ...)."""
    if record.get("messages") not in (None, ""):
        messages = _messages(record["messages"], line)
    else:
        text = next((record[c] for c in TEXT_COLUMNS if record.get(c) not in (None, "")), None)
        if not isinstance(text, str) or not text.strip():
            raise ImportRefused(
                line, f"no prompt: give `messages` or one of {', '.join(TEXT_COLUMNS)}."
            )
        messages = [{"role": "user", "content": text}]
    answer = next((record[c] for c in ANSWER_COLUMNS if record.get(c) not in (None, "")), "")
    category = str(record.get("category") or "")[:50]
    try:
        tags = _tags(record.get("tags"))
    except (json.JSONDecodeError, TypeError):
        raise ImportRefused(line, "`tags` must be a list or a comma-separated text.") from None
    return Row(line, messages, category, tags, str(answer))


def template_slots(template: str) -> list[str]:
    return _SLOT.findall(template)


def fill_template(template: str, record: dict, line: int) -> str:
    def slot(match: re.Match) -> str:
        name = match.group(1)
        if name not in record or record[name] is None:
            raise ImportRefused(line, f"the template needs the field {name!r}, which is missing.")
        return str(record[name])

    return _SLOT.sub(slot, template)


def rows_from_template(
    records: list[tuple[int, dict]],
    *,
    instruction: str,
    answer: str = "",
    category: str = "",
) -> list[Row]:
    """Turn an existing dataset into prompts: `{{field}}` slots of the instruction (and of the
    answer template, when the table has answers) are filled from each record."""
    if not template_slots(instruction):
        raise ImportRefused(None, "The instruction template has no {{field}} slot.")
    rows = []
    for line, record in records:
        text = fill_template(instruction, record, line)
        reply = fill_template(answer, record, line) if answer else ""
        rows.append(Row(line, [{"role": "user", "content": text}], category, [], reply))
    return rows


def parse_file(
    data: bytes,
    *,
    filename: str,
    declared_format: str = "",
    instruction: str = "",
    answer: str = "",
    category: str = "",
) -> list[Row]:
    """Read and check a whole file; raises ImportRefused naming the first bad line."""
    records = read_records(data, detect_format(filename, declared_format))
    if not records:
        raise ImportRefused(None, "The file holds no rows.")
    if len(records) > MAX_ROWS:
        raise ImportRefused(None, f"The file holds more than {MAX_ROWS} rows; split it.")
    if instruction:
        return rows_from_template(
            records, instruction=instruction, answer=answer, category=category
        )
    rows = [row_from_record(line, record) for line, record in records]
    if category:
        for row in rows:
            row.category = row.category or category
    return rows
