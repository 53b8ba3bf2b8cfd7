"""The pure export code: rankings with ties -> pairs, row shapes, HH transcripts, writers."""

from __future__ import annotations

import hashlib

import pytest
from datasets import load_dataset

from annotation.exports import formats, pairs
from annotation.exports.writers import DatasetWriter, schema_for

# D > C > A = B
RANKING = [["d"], ["c"], ["a", "b"]]


def _as_tuples(found):
    return sorted((p.chosen, p.rejected, p.tie) for p in found)


def test_all_pairs_of_a_ranking_with_a_tie_are_its_five_strict_pairs():
    found = pairs.ranking_pairs(RANKING, strategy="all", ties="drop")
    assert _as_tuples(found) == sorted(
        [
            ("d", "c", False),
            ("d", "a", False),
            ("d", "b", False),
            ("c", "a", False),
            ("c", "b", False),
        ]
    )


def test_keeping_ties_adds_the_tied_pair_with_a_tie_label():
    found = pairs.ranking_pairs(RANKING, strategy="all", ties="keep")
    assert len(found) == 6
    assert [p for p in found if p.tie] == [pairs.Pair("a", "b", tie=True)]


def test_best_vs_rest_pairs_the_best_answer_with_every_other():
    found = pairs.ranking_pairs(RANKING, strategy="best-vs-rest")
    assert _as_tuples(found) == [("d", "a", False), ("d", "b", False), ("d", "c", False)]


def test_a_ranking_that_is_one_tie_gives_no_strict_pairs():
    assert pairs.ranking_pairs([["a", "b", "c"]], strategy="all") == []
    assert len(pairs.ranking_pairs([["a", "b", "c"]], strategy="all", ties="keep")) == 3


def test_consensus_merges_annotators_before_pairing():
    # Two say a > b > c, one says c > b > a: the consensus is a > b > c.
    groups = pairs.consensus_groups([[["a"], ["b"], ["c"]]] * 2 + [[["c"], ["b"], ["a"]]])
    assert groups == [["a"], ["b"], ["c"]]
    assert _as_tuples(pairs.consensus_pairs([[["a"], ["b"]], [["a", "b"]]])) == [("a", "b", False)]


def test_consensus_of_opposite_votes_is_a_tie():
    groups = pairs.consensus_groups([[["a"], ["b"]], [["b"], ["a"]]])
    assert groups == [["a", "b"]]


def test_margin_is_the_difference_of_mean_scale_labels_ignoring_flags():
    labels = {"1": {"helpfulness": 5, "honesty": 3, "pii": True}, "2": {"helpfulness": 2}}
    assert pairs.margin(labels, pairs.Pair(1, 2)) == pytest.approx(2.0)
    assert pairs.margin(labels, pairs.Pair(1, 3)) is None


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown pair strategy"):
        pairs.ranking_pairs(RANKING, strategy="random")


@pytest.mark.parametrize("strategy", ["all", "best-vs-rest"])
@pytest.mark.parametrize(
    "groups",
    [
        [],
        [[1]],
        [[1, 2]],
        [[4], [3], [1, 2]],
        [[9, 10], [2], [31, 4, 5]],
        [[1], [2], [3], [4]],
    ],
)
def test_pair_positions_pick_the_same_pairs_as_ranking_pairs(groups, strategy):
    chosen, rejected = pairs.pair_positions(tuple(map(len, groups)), strategy)
    flat = [m for g in groups for m in g]
    picked = [(flat[c], flat[r]) for c, r in zip(chosen, rejected, strict=True)]
    assert picked == [
        (p.chosen, p.rejected) for p in pairs.ranking_pairs(groups, strategy=strategy, ties="drop")
    ]


def test_a_multi_turn_or_system_prompt_is_not_taken_for_a_single_question():
    assert formats.messages_text([{"role": "user", "content": "hi"}]) == "hi"
    assert (
        formats.messages_text(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        )
        == "be brief\n\nhi"
    )


PROMPT = [{"role": "user", "content": "What is 2+2?"}]


def test_preference_rows_in_standard_and_conversational_style():
    text = formats.preference_row(PROMPT, "4", "5", style="standard")
    assert text == {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}
    chat = formats.preference_row(PROMPT, "4", "5", style="conversational")
    assert chat["prompt"] == PROMPT
    assert chat["chosen"] == [{"role": "assistant", "content": "4"}]


def test_kto_and_sft_rows_have_trl_columns():
    assert set(formats.kto_row(PROMPT, "4", True, style="standard")) == {
        "prompt",
        "completion",
        "label",
    }
    assert formats.sft_row(PROMPT, "4", style="conversational") == {
        "messages": PROMPT + [{"role": "assistant", "content": "4"}]
    }
    assert formats.sft_row(PROMPT, "4", style="standard") == {
        "prompt": "What is 2+2?",
        "completion": "4",
    }


def test_multi_turn_prompts_become_transcripts_in_text_style():
    turns = PROMPT + [{"role": "assistant", "content": "4"}, {"role": "user", "content": "x2?"}]
    assert formats.messages_text(turns) == (
        "\n\nHuman: What is 2+2?\n\nAssistant: 4\n\nHuman: x2?\n\nAssistant:"
    )


def test_hh_render_and_split_are_inverse():
    row = formats.hh_row(PROMPT, "Four.", "Five.")
    assert row["chosen"] == "\n\nHuman: What is 2+2?\n\nAssistant: Four."
    prompt, chosen, rejected = formats.hh_split(row["chosen"], row["rejected"])
    assert (prompt, chosen, rejected) == (PROMPT, "Four.", "Five.")


def test_hh_split_refuses_pairs_that_differ_before_the_last_answer():
    with pytest.raises(ValueError, match="differ before"):
        formats.hh_split("\n\nHuman: a\n\nAssistant: b", "\n\nHuman: z\n\nAssistant: b")
    with pytest.raises(ValueError, match="starts with"):
        formats.hh_parse("Human: no leading blank line")


@pytest.mark.parametrize("style", ["standard", "conversational"])
@pytest.mark.parametrize("fmt", ["preference", "kto", "sft", "hh"])
def test_written_files_load_back_with_datasets(tmp_path, fmt, style):
    schema = schema_for(fmt, style, tie=True, margin=fmt == "preference")
    builders = {
        "preference": lambda: formats.preference_row(PROMPT, "4", "5", style=style),
        "kto": lambda: formats.kto_row(PROMPT, "4", True, style=style),
        "sft": lambda: formats.sft_row(PROMPT, "4", style=style),
        "hh": lambda: formats.hh_row(PROMPT, "4", "5"),
    }
    rows = [
        {
            **builders[fmt](),
            "prompt_id": n,
            "ranking_ids": [n],
            "annotators": ["x"],
            "tie": False,
            "margin": 1.5,
            "category": "math",
        }
        for n in range(5)
    ]
    paths = {"jsonl": tmp_path / "d.jsonl", "parquet": tmp_path / "d.parquet"}
    with DatasetWriter(paths, schema, batch_size=2) as writer:
        writer.write_all(rows)
    assert writer.rows == 5
    for kind, loader in (("jsonl", "json"), ("parquet", "parquet")):
        ds = load_dataset(
            loader,
            data_files=str(paths[kind]),
            split="train",
            cache_dir=str(tmp_path / f"cache-{kind}"),
        )
        assert ds.num_rows == 5
        assert set(schema.names) <= set(ds.column_names)
        assert ds[3]["prompt_id"] == 3
    assert writer.jsonl_sha256 == hashlib.sha256(paths["jsonl"].read_bytes()).hexdigest()
