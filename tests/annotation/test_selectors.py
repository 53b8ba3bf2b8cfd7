"""Reads: rankings become model outcomes and a leaderboard; consensus; the seed command."""

import io
import threading

import pytest
from django.core.management import call_command

from annotation import selectors, services
from annotation.models import Completion, Item, Project
from tests.annotation.factories import ProjectFactory, PromptFactory, ranking_item

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


def test_the_demo_seed_adds_gold_and_demonstration_items_and_leaves_answers_to_the_models(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_annotation_demo", stdout=io.StringIO())
    call_command("seed_annotation_demo", stdout=io.StringIO())  # a second run adds nothing
    project = Project.objects.get(slug="demo-assistant")
    ranking_items = Item.objects.filter(project=project, kind="ranking")
    assert ranking_items.count() == 3 and ranking_items.filter(is_gold=True).count() == 3
    assert project.candidates_per_prompt == 3  # as many as each item shows
    assert Item.objects.filter(project=project, kind="demonstration").count() == (
        project.prompts.count()
    )
    assert Completion.objects.filter(prompt__project=project, source="human").count() == 9
    assert not Completion.objects.filter(prompt__project=project, source="model").exists()


def test_demo_answers_writes_model_answers_here_and_opens_each_item_once(
    db, tiny_model_dir, tiny_contestant, monkeypatch
):
    from arena import services as arena_services
    from core import jobs

    call_command("seed_demo", "--arena-votes=", stdout=io.StringIO())
    project = Project.objects.get(slug="demo-assistant")
    # The demo's SmolLM2 models, played here by tiny local ones.
    project.contestants.set(
        [tiny_contestant]
        + [
            arena_services.contestant_create(
                name=f"tiny-{n}", display_name=f"Tiny {n}", backend="local",
                model_path=str(tiny_model_dir), max_new_tokens=4,
            )
            for n in ("two", "three")
        ]
    )  # fmt: skip
    sent = []
    monkeypatch.setattr(jobs, "publish_on_commit", lambda *a, **k: sent.append(a))
    # A run stopped half-way left one prompt's item waiting: it is taken up, not doubled.
    services.candidates_generate(
        project=project, prompts=[project.prompts.order_by("id")[3]], k=3, enqueue=False
    )
    out = io.StringIO()
    call_command("demo_answers", "--prompts=5", stdout=out)
    assert "2 ranking items opened" in out.getvalue(), out.getvalue()
    assert sent == []  # written here: nothing waits in the arena's queue
    items = Item.objects.filter(project=project, kind="ranking", is_gold=False)
    assert items.count() == 2 and all(item.is_ready for item in items)
    answers = Completion.objects.filter(prompt__project=project, source="model")
    assert answers.count() == 6 and answers.filter(is_ready=True).count() == 6
    assert {a.contestant.name for a in answers} == {"tiny-llama", "tiny-two", "tiny-three"}
    call_command("demo_answers", "--prompts=5", stdout=io.StringIO())  # nothing left to answer
    assert answers.count() == 6


@pytest.mark.django_db(transaction=True)
def test_demo_answers_write_a_prompts_answers_together_in_one_batch(tiny_model_dir):
    from arena import services as arena_services

    project = ProjectFactory(candidates_per_prompt=3)
    prompt = PromptFactory(project=project)
    project.contestants.set(
        [
            arena_services.contestant_create(
                name=f"tiny-{n}", display_name=f"Tiny {n}", backend="local",
                model_path=str(tiny_model_dir), max_new_tokens=40, temperature=0.0,
            )
            for n in ("one", "two", "three")
        ]
    )  # fmt: skip
    model = arena_services._local_models.get(tiny_model_dir)
    real, sizes, lined_up = model.batcher.model, [], threading.Barrier(3, timeout=30)

    def counted(**kwargs):
        sizes.append(int(kwargs["input_ids"].shape[0]))
        return real(**kwargs)

    original_submit = model.batcher.submit

    def submit(request):  # the three answers reach the model together
        lined_up.wait()
        return original_submit(request)

    model.batcher.model, model.batcher.submit = counted, submit
    try:
        assert services.candidates_answer_here(project=project, prompts=[prompt], k=3) == 1
    finally:
        model.batcher.model, model.batcher.submit = real, original_submit
    answers = Completion.objects.filter(prompt=prompt, source="model")
    assert answers.count() == 3 and all(a.is_ready and a.text for a in answers)
    assert max(sizes) == 3  # one forward pass for all three
