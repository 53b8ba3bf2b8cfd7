"""Suites: content hash, immutability once used, uploads with clear errors, snapshot prompts."""

import json

import pytest

from evaluation import suites
from evaluation.models import Suite
from evaluation.services import evaluation_run_create
from evaluation.suites import PromptRow, SuiteRefused

pytestmark = pytest.mark.django_db


def test_a_suite_stores_its_prompts_in_order_without_duplicates(suite):
    rows = [PromptRow("b"), PromptRow("a"), PromptRow("  B ")]
    other = suites.suite_create(name="dups", baseline=suite.baseline, prompts=rows)
    assert list(other.prompts.values_list("instruction", flat=True)) == ["b", "a"]
    assert other.generation_settings == {"temperature": 0.0, "seed": 0}


def test_the_content_hash_changes_with_the_prompts_and_the_baseline(suite, tiny_contestant):
    same = suites.suite_create(
        name="same",
        baseline=suite.baseline,
        prompts=[PromptRow(p.instruction) for p in suite.prompts.all()],
    )
    fewer = suites.suite_create(
        name="fewer", baseline=suite.baseline, prompts=[PromptRow("two plus two")]
    )
    other_base = suites.suite_create(
        name="other-base",
        baseline=tiny_contestant,
        prompts=[PromptRow(p.instruction) for p in suite.prompts.all()],
    )
    assert same.content_hash == suite.content_hash
    assert len({suite.content_hash, fewer.content_hash, other_base.content_hash}) == 3


def test_a_suite_used_by_an_evaluation_refuses_changes(suite, tiny_contestant, judge):
    suites.suite_update(suite=suite, baseline=tiny_contestant)  # not used yet: allowed
    assert Suite.objects.get(pk=suite.pk).baseline == tiny_contestant
    other = suites.suite_create(name="used", baseline=suite.baseline, prompts=[PromptRow("hi")])
    evaluation_run_create(suite=other, contestants=[tiny_contestant], judge=judge)
    with pytest.raises(SuiteRefused, match="used by an evaluation"):
        suites.suite_update(suite=other, baseline=tiny_contestant)
    suites.suite_update(suite=other, description="still fine")
    assert Suite.objects.get(pk=other.pk).baseline == suite.baseline


def test_an_alpaca_eval_upload_reads_instruction_and_dataset(baseline):
    data = json.dumps([
        {"instruction": "Say hi", "dataset": "helpful_base", "output": "hi", "generator": "x"},
        {"instruction": "Count to three", "dataset": "koala"},
    ]).encode()  # fmt: skip
    suite = suites.suite_create_from_upload(
        name="alpaca", baseline=baseline, data=data, filename="alpaca_eval.json"
    )
    assert list(suite.prompts.values_list("instruction", "dataset")) == [
        ("Say hi", "helpful_base"),
        ("Count to three", "koala"),
    ]
    assert suite.source == "upload" and suite.source_ref == "alpaca_eval.json"


CONVERSATION = json.dumps({
    "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
}).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b'[{"instruction": "ok"}, {"dataset": "x"}]', "eval.json", "Entry 2 has no `instruction`"),
        (b"[{", "eval.json", "not valid JSON"),
        (CONVERSATION, "p.jsonl", "single user turns"),
        (b"", "p.jsonl", "no rows"),
        (b"x", "p.txt", "Unknown file type"),
    ],
)
def test_a_bad_upload_is_refused_with_a_clear_message(baseline, data, filename, message):
    with pytest.raises(SuiteRefused, match=message):
        suites.suite_create_from_upload(name="bad", baseline=baseline, data=data, filename=filename)
    assert not Suite.objects.filter(name="bad").exists()


def test_platform_prompt_files_become_suites(baseline):
    data = b'{"prompt": "name a colour", "category": "easy"}\n{"prompt": "name a fruit"}\n'
    suite = suites.suite_create_from_upload(
        name="jsonl", baseline=baseline, data=data, filename="p.jsonl"
    )
    assert list(suite.prompts.values_list("instruction", "dataset")) == [
        ("name a colour", "easy"),
        ("name a fruit", ""),
    ]


def test_a_second_suite_with_the_same_name_is_refused(suite):
    with pytest.raises(SuiteRefused, match="already exists"):
        suites.suite_create(name="mini", baseline=suite.baseline, prompts=[PromptRow("x")])


def test_snapshot_suites_keep_only_held_out_prompts_not_excluded(monkeypatch, baseline):
    texts = [f"question number {i}" for i in range(60)]
    monkeypatch.setattr(suites, "snapshot_prompts", lambda snapshot: texts)
    heldout = [t for t in texts if suites.is_heldout(suites.prompt_hash(t))]
    assert 0 < len(heldout) < len(texts)

    class Snap:
        pk = 7

    excluded = {suites.prompt_hash(heldout[0])}
    suite = suites.suite_create_from_snapshot(
        name="held", baseline=baseline, snapshot=Snap(), exclude_prompt_hashes=excluded
    )
    assert list(suite.prompts.values_list("instruction", flat=True)) == heldout[1:]
    assert suite.source_ref == "snapshot:7"


def test_the_prompt_hash_ignores_case_and_spacing():
    assert suites.prompt_hash("Hello  World") == suites.prompt_hash(" hello world ")
    assert suites.prompt_hash("hello") != suites.prompt_hash("hello world")


def test_a_project_suite_takes_its_single_turn_prompts(baseline):
    from tests.annotation.factories import ProjectFactory, PromptFactory

    project = ProjectFactory()
    PromptFactory(project=project, messages=[{"role": "user", "content": "first question"}])
    PromptFactory(
        project=project,
        messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
    )
    suite = suites.suite_create_from_project(name="proj", baseline=baseline, project=project)
    assert list(suite.prompts.values_list("instruction", flat=True)) == ["first question"]
    assert suite.source == "project"


def test_an_unbuilt_snapshot_is_refused(baseline):
    class Snap:
        pk, status = 3, "building"

    with pytest.raises(SuiteRefused, match="not built yet"):
        suites.suite_create_from_snapshot(name="early", baseline=baseline, snapshot=Snap())


def test_a_snapshot_suite_reads_the_snapshots_file(baseline):
    from tests.training.test_runs import _snapshot

    texts = [f"prompt {i}" for i in range(40)]
    rows = [{"prompt": t, "chosen": "a", "rejected": "b"} for t in texts]
    rows += [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "x"}]}
             for t in texts[:3]]  # fmt: skip
    snapshot = _snapshot("preference", rows)
    assert suites.snapshot_prompts(snapshot) == texts
    suite = suites.suite_create_from_snapshot(
        name="snap", baseline=baseline, snapshot=snapshot, heldout_only=False
    )
    assert suite.prompts.count() == 40 and suite.source == "snapshot"
