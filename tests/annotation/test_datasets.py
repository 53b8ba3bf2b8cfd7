"""Dataset snapshots: build, formats with provenance, filters, immutability and hash."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import datasets
from annotation.datasets import DatasetError, Filters, Spec
from annotation.models import (
    DatasetSnapshot,
    Ranking,
    ReviewStatus,
    SnapshotStatus,
)
from tests.annotation.factories import CompletionFactory, PromptFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def rank(project, annotator, answers, order: str, **fields) -> Ranking:
    """`order` in letters over `answers` (A = answers[0]): 'D > C > A = B'."""
    ids = {chr(ord("A") + i): a.pk for i, a in enumerate(answers)}
    groups = [[ids[x.strip()] for x in group.split("=")] for group in order.split(">")]
    return Ranking.objects.create(
        project=project, prompt=answers[0].prompt, annotator=annotator, groups=groups, **fields
    )


@pytest.fixture
def answered(project, contestants):
    """One prompt with four model answers (A, B by alpha; C, D by beta)."""
    prompt = PromptFactory(
        project=project, category="math", messages=[{"role": "user", "content": "two plus two"}]
    )
    return [
        CompletionFactory(
            prompt=prompt,
            contestant=contestants[i // 2],
            text=f"answer {x}",
            settings={"temperature": 0.7},
            source="model",
        )
        for i, x in enumerate("ABCD")
    ]


def build(project, user=None, name="ds", **spec) -> DatasetSnapshot:
    spec.setdefault("source", "rankings")
    spec.setdefault("format", "preference")
    spec["filters"] = Filters.parse(spec.get("filters"))
    snapshot = datasets.snapshot_create(name=name, spec=Spec(project=project, **spec), user=user)
    return datasets.snapshot_build(snapshot_id=snapshot.pk)


def rows_of(snapshot) -> list[dict]:
    path = datasets.snapshot_file(snapshot=snapshot, kind="jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_snapshot_create_queues_the_build_after_commit(
    project, researcher, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        snapshot = datasets.snapshot_create(
            name="x",
            spec=Spec(source="rankings", format="preference", project=project),
            user=researcher,
        )
    assert snapshot.status == SnapshotStatus.PENDING
    assert len(callbacks) == 1


def test_a_snapshot_of_one_ranking_with_a_tie_holds_its_five_pairs_with_provenance(
    project, annotator, answered
):
    rank(project, annotator, answered, "D > C > A = B", labels={})
    snapshot = build(project, annotator)
    assert snapshot.status == SnapshotStatus.READY, snapshot.error
    rows = rows_of(snapshot)
    assert snapshot.row_count == len(rows) == 5
    first = rows[0]
    assert {"prompt", "chosen", "rejected"} <= set(first)
    assert first["prompt"] == "two plus two"
    assert first["annotators"] == ["ann"]
    assert first["chosen_model"] in ("alpha-model", "beta-model")
    assert json.loads(first["chosen_settings"]) == {"temperature": 0.7}
    assert "margin" not in first and "tie" not in first
    card = snapshot.card
    assert card["rows"] == 5 and card["annotators"] == 1 and card["prompts"] == 1
    assert set(card["models"]) == {"alpha-model", "beta-model"}
    assert card["guidelines_versions"] == [1]
    assert len(snapshot.content_hash) == 64
    readme = datasets.snapshot_file(snapshot=snapshot, kind="card").read_text()
    assert f"data_files: {snapshot.name}-{snapshot.pk}.parquet" in readme


def test_ties_kept_and_margin_from_labels(project, annotator, answered):
    labels = {
        str(a.pk): {"helpfulness": score} for a, score in zip(answered, [2, 2, 4, 5], strict=True)
    }
    rank(project, annotator, answered, "D > C > A = B", labels=labels)
    rows = rows_of(build(project, ties="keep"))
    assert len(rows) == 6
    assert sum(r["tie"] for r in rows) == 1
    top = next(r for r in rows if r["chosen"] == "answer D" and r["rejected"] == "answer A")
    assert top["margin"] == pytest.approx(3.0)


def test_best_vs_rest_and_consensus_pairs(project, annotator, reviewer, answered):
    rank(project, annotator, answered, "D > C > A = B")
    rank(project, reviewer, answered, "D > C > B > A")
    assert build(project, pairs="best-vs-rest").row_count == 6
    consensus = build(project, pairs="consensus")
    rows = rows_of(consensus)
    # The consensus orders B over A (one vote to a tie): all 6 pairs, each from both rankings.
    assert len(rows) == 6
    assert all(sorted(r["annotators"]) == ["ann", "rev"] for r in rows)
    assert consensus.card["agreement"]["comparisons"] == 6


def test_kto_sft_and_hh_rows(project, annotator, answered):
    rank(project, annotator, answered, "D > C > A = B")
    kto = rows_of(build(project, format="kto"))
    assert sorted((r["completion"], r["label"]) for r in kto) == [
        ("answer A", False),
        ("answer B", False),
        ("answer D", True),
    ]
    sft = rows_of(build(project, format="sft", style="conversational"))
    assert sft[0]["messages"][-1] == {"role": "assistant", "content": "answer D"}
    hh = rows_of(build(project, format="hh"))
    assert hh[0]["chosen"].startswith("\n\nHuman: two plus two\n\nAssistant: answer")


def test_demonstrations_become_sft_rows(project, annotator):
    from annotation.models import Demonstration

    prompt = PromptFactory(project=project)
    Demonstration.objects.create(project=project, prompt=prompt, annotator=annotator, text="hi")
    rows = rows_of(build(project, source="demonstrations", format="sft"))
    assert rows[0]["completion"] == "hi" and rows[0]["annotators"] == ["ann"]


def test_filters_choose_the_judgments(project, annotator, reviewer, answered, make_annotator):
    old = rank(project, annotator, answered, "D > C > B > A", review_status=ReviewStatus.ACCEPTED)
    Ranking.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    rank(project, reviewer, answered, "A > B > C > D", guidelines_version=2)
    assert build(project, filters={"accepted_only": True}).row_count == 6
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert rows_of(build(project, filters={"date_from": since}))[0]["annotators"] == ["rev"]
    assert build(project, filters={"guidelines_versions": [2]}).row_count == 6
    assert build(project, filters={"categories": ["math"]}).row_count == 12
    # The two annotators disagree on every pair: no item reaches 0.5 agreement.
    failed = build(project, filters={"min_agreement": 0.5})
    assert failed.status == SnapshotStatus.FAILED and "No rows" in failed.error
    assert build(project, filters={"min_agreement": 0.0}).row_count == 12


def test_gold_filter_keeps_annotators_who_pass_gold(project, annotator, reviewer, answered):
    rank(project, annotator, answered, "D > C > B > A")
    rank(project, reviewer, answered, "A > B > C > D")
    rank(project, annotator, answered, "D > C > B > A", is_gold=True, gold_score=0.9)
    rank(project, reviewer, answered, "A > B > C > D", is_gold=True, gold_score=0.2)
    rows = rows_of(build(project, filters={"gold_min": 0.7}))
    assert {a for r in rows for a in r["annotators"]} == {"ann"}


def test_bad_requests_are_refused():
    with pytest.raises(DatasetError, match="can be written as"):
        Spec(source="demonstrations", format="preference", project=None).check()
    with pytest.raises(DatasetError, match="Unknown filters"):
        Filters.parse({"colour": "red"})
    with pytest.raises(DatasetError, match="0..1"):
        Filters.parse({"min_agreement": 2})


def test_snapshots_are_immutable_and_their_hash_is_stable(project, annotator, answered):
    rank(project, annotator, answered, "D > C > A = B")
    first = build(project, name="one")
    again = datasets.snapshot_build(snapshot_id=first.pk)  # a redelivered task: no rebuild
    assert again.built_at == first.built_at and again.content_hash == first.content_hash
    rank(project, annotator, answered, "A > B > C > D")  # new data after the snapshot
    assert rows_of(first) == rows_of(DatasetSnapshot.objects.get(pk=first.pk))[:5]
    assert len(rows_of(first)) == 5
    second = build(
        project,
        name="two",
        filters={"date_to": first.created_at.date().isoformat(), "guidelines_versions": [1]},
    )
    assert second.row_count == 11
    same = build(project, name="three")
    assert same.content_hash == build(project, name="four").content_hash
    assert same.content_hash != first.content_hash


def test_a_failed_build_says_why_and_leaves_no_files(project, media):
    snapshot = build(project)
    assert snapshot.status == SnapshotStatus.FAILED
    assert snapshot.error == "No rows match these filters."
    assert not (media / "datasets" / str(snapshot.pk)).exists()
    with pytest.raises(DatasetError):
        datasets.snapshot_file(snapshot=snapshot, kind="jsonl")
