"""Reading prompt files: formats, checks, templates; nothing touches the database here."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotation.imports import ImportRefused, parse_file


def _jsonl(*records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def test_jsonl_reads_plain_text_and_multi_turn_messages_with_category_and_tags():
    data = _jsonl(
        {"prompt": "What is 2+2?", "category": "math", "tags": ["easy"]},
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Tell me a joke"},
            ],
            "tags": "fun, short",
        },
    )
    rows = parse_file(data, filename="p.jsonl")
    assert rows[0].messages == [{"role": "user", "content": "What is 2+2?"}]
    assert rows[0].category == "math" and rows[0].tags == ["easy"]
    assert len(rows[1].messages) == 3 and rows[1].tags == ["fun", "short"]


def test_csv_with_messages_as_json_text_and_an_answer_column():
    data = b'prompt,answer,category\n"Name a colour",Blue,trivia\n'
    (row,) = parse_file(data, filename="p.csv")
    assert row.messages[0]["content"] == "Name a colour" and row.answer == "Blue"


def test_parquet_files_are_read():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"prompt": ["one?", "two?"], "category": ["a", "b"]}), buffer)
    rows = parse_file(buffer.getvalue(), filename="p.parquet")
    assert [r.messages[0]["content"] for r in rows] == ["one?", "two?"]


@pytest.mark.parametrize(
    ("data", "filename", "line", "reason"),
    [
        (b'{"prompt": "ok"}\n{"prompt": \n', "p.jsonl", 2, "not valid JSON"),
        (_jsonl({"prompt": "ok"}, {"nothing": 1}), "p.jsonl", 2, "no prompt"),
        (_jsonl({"messages": [{"role": "bot", "content": "x"}]}), "p.jsonl", 1, "role 'bot'"),
        (
            _jsonl(
                {
                    "messages": [
                        {"role": "user", "content": "q"},
                        {"role": "assistant", "content": "a"},
                    ]
                }
            ),
            "p.jsonl",
            1,
            "end with",
        ),
        (b"prompt\nfine\nalso,too many\n", "p.csv", 3, "more cells"),
    ],
)
def test_a_malformed_file_is_refused_with_the_line_and_reason(data, filename, line, reason):
    with pytest.raises(ImportRefused, match=reason) as caught:
        parse_file(data, filename=filename)
    assert caught.value.line == line


def test_unknown_file_types_are_refused():
    with pytest.raises(ImportRefused, match="Unknown file type"):
        parse_file(b"x", filename="p.xlsx")


def test_an_instruction_template_turns_a_table_into_prompts_and_demonstrations():
    data = b"sentence,translation\nGood morning,Bonjour\nThank you,Merci\n"
    rows = parse_file(
        data,
        filename="t.csv",
        instruction="Translate to French: {{sentence}}",
        answer="{{ translation }}",
        category="translation",
    )
    assert rows[1].messages == [{"role": "user", "content": "Translate to French: Thank you"}]
    assert rows[1].answer == "Merci" and rows[1].category == "translation"


def test_a_template_slot_missing_from_a_row_names_the_line():
    with pytest.raises(ImportRefused, match="'sentence'") as caught:
        parse_file(b"text\nhello\n", filename="t.csv", instruction="Say {{sentence}}")
    assert caught.value.line == 2
