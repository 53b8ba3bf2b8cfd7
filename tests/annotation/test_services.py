"""The work queue, submissions and review, through the services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.imports import parse_file
from annotation.models import (
    AssignmentStatus,
    Completion,
    Demonstration,
    Item,
    Ranking,
    RankingOrigin,
    ReviewStatus,
    TaskKind,
)
from annotation.services import TaskError
from tests.annotation.factories import CompletionFactory, PromptFactory, ranking_item

pytestmark = pytest.mark.django_db


def _submit(assignment, user, order=None):
    order = order or " > ".join(assignment.letters)
    return services.ranking_submit(assignment=assignment, user=user, order=order)


def test_task_next_reserves_an_item_with_an_expiry_and_a_stored_display_order(project, annotator):
    item = ranking_item(project, k=3)
    assignment = services.task_next(project=project, user=annotator)
    assert assignment.item == item and assignment.status == AssignmentStatus.ACTIVE
    assert assignment.expires_at > timezone.now() + timedelta(minutes=project.lock_minutes - 1)
    assert sorted(assignment.display_order) == sorted(item.completions.values_list("id", flat=True))
    item.refresh_from_db()
    assert item.taken == 1


def test_task_next_returns_the_same_task_until_it_is_done(project, annotator):
    ranking_item(project)
    ranking_item(project)
    first = services.task_next(project=project, user=annotator)
    assert services.task_next(project=project, user=annotator) == first


def test_no_item_gets_more_reservations_than_its_overlap(project, make_annotator):
    first_item = ranking_item(project)
    second_item = ranking_item(project)
    got = [services.task_next(project=project, user=make_annotator()).item for _ in range(3)]
    assert got == [first_item, first_item, second_item]


def test_an_annotator_never_gets_an_item_twice_or_their_own(project, annotator):
    ranking_item(project, author=annotator)
    other = ranking_item(project)
    assignment = services.task_next(project=project, user=annotator)
    assert assignment.item == other
    _submit(assignment, annotator)
    assert services.task_next(project=project, user=annotator) is None


def test_an_expired_reservation_goes_back_to_the_queue(project, make_annotator):
    project.overlap = 1
    project.save()
    item = ranking_item(project)
    first, second = make_annotator(), make_annotator()
    stale = services.task_next(project=project, user=first)
    assert services.task_next(project=project, user=second) is None
    later = timezone.now() + timedelta(minutes=project.lock_minutes + 1)
    taken = services.task_next(project=project, user=second, now=later)
    assert taken.item == item
    stale.refresh_from_db()
    assert stale.status == AssignmentStatus.EXPIRED
    with pytest.raises(TaskError, match="expired"):
        _submit(stale, first)


def test_skipping_needs_a_reason_and_frees_the_slot(project, annotator):
    item = ranking_item(project)
    assignment = services.task_next(project=project, user=annotator)
    with pytest.raises(TaskError, match="why"):
        services.task_skip(assignment=assignment, user=annotator, reason=" ")
    services.task_skip(assignment=assignment, user=annotator, reason="Not my language")
    item.refresh_from_db()
    assert item.taken == 0
    assert services.task_next(project=project, user=annotator) is None  # not offered again


def test_a_ranking_is_stored_as_completion_ids_in_the_order_given(project, annotator):
    ranking_item(project, k=4)
    assignment = services.task_next(project=project, user=annotator)
    ids = dict(zip(assignment.letters, assignment.display_order))
    ranking = services.ranking_submit(
        assignment=assignment,
        user=annotator,
        order="D > C > A = B",
        labels={"C": {"helpfulness": 4, "pii": True}},
        rationale="D is correct",
        all_bad=False,
    )
    assert ranking.groups == [[ids["D"]], [ids["C"]], [ids["A"], ids["B"]]]
    assert ranking.labels == {str(ids["C"]): {"helpfulness": 4, "pii": True}}
    assert ranking.display_order == assignment.display_order
    assert ranking.guidelines_version == project.guidelines_version
    assert ranking.duration_ms is not None and ranking.rationale == "D is correct"


@pytest.mark.parametrize(
    ("order", "labels", "message"),
    [
        ("A > B", None, "C is missing"),
        ("A > B > C", {"A": {"helpfulness": 9}}, "1-5"),
        ("A > B > C", {"A": {"wit": 3}}, "Unknown label"),
        ("A > B > C", {"Z": {"helpfulness": 3}}, "answer Z"),
    ],
)
def test_a_bad_ranking_is_refused_and_leaves_the_task_open(
    project, annotator, order, labels, message
):
    ranking_item(project, k=3)
    assignment = services.task_next(project=project, user=annotator)
    with pytest.raises(TaskError, match=message) as caught:
        services.ranking_submit(assignment=assignment, user=annotator, order=order, labels=labels)
    assert caught.value.status == 400
    assert not Ranking.objects.exists()
    assignment.refresh_from_db()
    assert assignment.status == AssignmentStatus.ACTIVE


def test_a_task_cannot_be_submitted_twice_or_by_someone_else(project, annotator, reviewer):
    ranking_item(project)
    assignment = services.task_next(project=project, user=annotator)
    with pytest.raises(TaskError) as foreign:
        _submit(assignment, reviewer)
    assert foreign.value.status == 403
    _submit(assignment, annotator)
    assignment.refresh_from_db()
    with pytest.raises(TaskError) as again:
        _submit(assignment, annotator)
    assert again.value.status == 409
    assert Ranking.objects.count() == 1


def test_editing_a_model_answer_stores_a_demonstration_and_an_edited_over_original_pair(
    project, annotator
):
    prompt = PromptFactory(project=project)
    original = CompletionFactory(prompt=prompt, source="model", text="Paris is in Spain.")
    Item.objects.create(project=project, prompt=prompt, kind=TaskKind.DEMONSTRATION)
    assignment = services.task_next(project=project, user=annotator)
    demo = services.demonstration_submit(
        assignment=assignment, user=annotator, text="Paris is in France.", edited_from=original.id
    )
    assert demo.edited_from == original and demo.text == "Paris is in France."
    pair = Ranking.objects.get(origin=RankingOrigin.EDIT)
    edited = Completion.objects.get(pk=pair.groups[0][0])
    assert edited.text == "Paris is in France." and pair.groups[1] == [original.id]


def test_a_demonstration_needs_text(project, annotator):
    Item.objects.create(
        project=project, prompt=PromptFactory(project=project), kind=TaskKind.DEMONSTRATION
    )
    assignment = services.task_next(project=project, user=annotator)
    with pytest.raises(TaskError, match="Write the answer"):
        services.demonstration_submit(assignment=assignment, user=annotator, text="  ")
    assert not Demonstration.objects.exists()


def test_rejected_work_goes_back_to_the_queue_for_someone_else(project, make_annotator, reviewer):
    project.overlap = 1
    project.save()
    ranking_item(project)
    first, second = make_annotator(), make_annotator()
    ranking = _submit(services.task_next(project=project, user=first), first)
    assert services.task_next(project=project, user=second) is None
    with pytest.raises(TaskError, match="why"):
        services.review_decide(work=ranking, reviewer=reviewer, accept=False)
    services.review_decide(work=ranking, reviewer=reviewer, accept=False, comment="Random order")
    assert ranking.review_status == ReviewStatus.REJECTED and ranking.reviewer == reviewer
    assert services.task_next(project=project, user=second) is not None
    with pytest.raises(TaskError) as again:
        services.review_decide(work=ranking, reviewer=reviewer, accept=True)
    assert again.value.status == 409


def test_reviewers_do_not_review_their_own_work(project, reviewer):
    ranking_item(project)
    ranking = _submit(services.task_next(project=project, user=reviewer), reviewer)
    with pytest.raises(TaskError) as caught:
        services.review_decide(work=ranking, reviewer=reviewer, accept=True)
    assert caught.value.status == 403


def test_gold_items_are_mixed_in_scored_and_outside_the_overlap(project, make_annotator):
    project.gold_rate = 1.0
    project.overlap = 1
    project.save()
    gold = ranking_item(project, k=3)
    ids = list(gold.completions.order_by("id").values_list("id", flat=True))
    gold.is_gold, gold.gold_groups = True, [[ids[0]], [ids[1]], [ids[2]]]
    gold.save()
    ranking_item(project)
    scores = []
    for _ in range(2):
        user = make_annotator()
        assignment = services.task_next(project=project, user=user)
        assert assignment.item == gold  # every annotator sees it, whatever the overlap
        letter = {cid: letter for letter, cid in zip(assignment.letters, assignment.display_order)}
        order = " > ".join(letter[c] for c in ids)
        scores.append(services.ranking_submit(assignment=assignment, user=user, order=order))
    assert [r.gold_score for r in scores] == [1.0, 1.0] and all(r.is_gold for r in scores)


def test_new_guidelines_get_a_new_version_that_later_judgments_record(project, annotator):
    project = services.project_create(name="Versioned", slug="versioned", guidelines="v1")
    services.project_guidelines_update(project=project, guidelines="v2: be kind")
    assert project.guidelines_version == 2
    assert list(project.guideline_versions.values_list("version", "text")) == [
        (2, "v2: be kind"),
        (1, "v1"),
    ]
    ranking_item(project)
    assert services.task_next(project=project, user=annotator).guidelines_version == 2


def test_import_skips_duplicates_and_turns_answers_into_demonstrations(project):
    rows = parse_file(
        b'{"prompt": "Hello there"}\n{"prompt": "  hello THERE "}\n'
        b'{"prompt": "Capital of France?", "answer": "Paris."}\n',
        filename="p.jsonl",
    )
    result = services.prompts_import(project=project, rows=rows, source="p.jsonl")
    assert (result.created, result.duplicates, result.demonstrations) == (2, [2], 1)
    again = services.prompts_import(project=project, rows=rows, source="p.jsonl")
    assert again.created == 0 and again.duplicates == [1, 2, 3]
    assert Demonstration.objects.get().text == "Paris."
    assert Item.objects.filter(project=project, kind=TaskKind.DEMONSTRATION).count() == 2


def test_raising_the_overlap_reopens_full_items(project, make_annotator):
    project.overlap = 1
    project.save()
    item = ranking_item(project)
    first = make_annotator()
    _submit(services.task_next(project=project, user=first), first)
    later = make_annotator()
    assert services.task_next(project=project, user=later) is None
    services.project_overlap_update(project=project, overlap=2)
    assert services.task_next(project=project, user=later).item == item
    item.refresh_from_db()
    assert (item.taken, item.is_open) == (2, False)
