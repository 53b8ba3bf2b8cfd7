"""Reads: rankings become model outcomes and a leaderboard; consensus; the seed command."""

import io

import pytest
from django.core.management import call_command

from annotation import selectors, services
from annotation.models import Completion, Item, Project
from tests.annotation.factories import ranking_item

pytestmark = pytest.mark.django_db


def _rank(project, user, best_first_ids):
    assignment = services.task_next(project=project, user=user)
    letter = dict(zip(assignment.display_order, assignment.letters))
    order = " > ".join(letter[c] for c in best_first_ids(assignment))
    return services.ranking_submit(assignment=assignment, user=user, order=order)


def test_rankings_of_model_answers_become_outcomes_and_a_leaderboard_with_intervals(
    project, make_annotator, contestants
):
    alpha, beta = contestants
    for _ in range(6):
        ranking_item(project, k=2, contestants=contestants)
    for _ in range(2):
        user = make_annotator()
        for _ in range(6):
            _rank(
                project,
                user,
                lambda a: list(
                    a.item.completions.order_by("contestant__name").values_list("id", flat=True)
                ),
            )
    outcomes = selectors.model_outcomes(project=project)
    assert len(outcomes) == 12
    assert all(
        o in {("alpha-model", "beta-model", 1.0), ("beta-model", "alpha-model", 0.0)}
        for o in outcomes
    )
    board = selectors.project_leaderboard(project=project)
    assert [row["model"] for row in board] == ["alpha-model", "beta-model"]
    assert board[0]["ci_lower"] < board[0]["rating"] < board[0]["ci_upper"]


def test_rejected_rankings_leave_the_outcomes(project, annotator, reviewer, contestants):
    ranking_item(project, k=2, contestants=contestants)
    ranking = _rank(project, annotator, lambda a: a.display_order)
    services.review_decide(work=ranking, reviewer=reviewer, accept=False, comment="spam")
    assert selectors.model_outcomes(project=project) == []


def test_item_consensus_follows_the_majority(project, make_annotator):
    project.overlap = 3
    project.save()
    item = ranking_item(project, k=3)
    ids = list(item.completions.order_by("id").values_list("id", flat=True))
    orders = [ids, ids, [ids[1], ids[0], ids[2]]]
    for order in orders:
        _rank(project, make_annotator(), lambda a, order=order: order)
    consensus = selectors.item_consensus(item=item)
    assert [member for member, _ in consensus] == ids


def test_the_demo_seed_adds_candidates_gold_and_demonstration_items(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_annotation_demo", stdout=io.StringIO())
    call_command("seed_annotation_demo", stdout=io.StringIO())  # a second run adds nothing
    project = Project.objects.get(slug="demo-assistant")
    ranking_items = Item.objects.filter(project=project, kind="ranking")
    assert ranking_items.count() == 20 and ranking_items.filter(is_gold=True).count() == 3
    assert Item.objects.filter(project=project, kind="demonstration").count() == (
        project.prompts.count()
    )
    assert Completion.objects.filter(prompt__project=project).count() == 60
