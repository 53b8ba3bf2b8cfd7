"""An edited answer's preference pair belongs to its demonstration by a foreign key."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotation import services
from annotation.models import Item, Ranking, RankingOrigin, ReviewStatus, TaskKind
from tests.annotation.factories import CompletionFactory, PromptFactory

BEFORE = [("annotation", "0005_snapshot_builds_are_jobs")]
AFTER = [("annotation", "0006_ranking_demonstration_of_edit_pair")]


def _edited_demonstration(project, annotator):
    prompt = PromptFactory(project=project)
    original = CompletionFactory(prompt=prompt, source="model", text="Paris is in Spain.")
    Item.objects.create(project=project, prompt=prompt, kind=TaskKind.DEMONSTRATION)
    assignment = services.task_next(project=project, user=annotator)
    return services.demonstration_submit(
        assignment=assignment, user=annotator, text="Paris is in France.", edited_from=original.id
    )


@pytest.mark.django_db
def test_the_edit_pair_points_at_the_demonstration_it_came_from(project, annotator):
    demo = _edited_demonstration(project, annotator)
    pair = Ranking.objects.get(origin=RankingOrigin.EDIT)
    assert pair.demonstration == demo
    assert list(demo.edit_rankings.all()) == [pair]


@pytest.mark.django_db
def test_rejecting_a_demonstration_rejects_its_own_pair_and_no_other(project, annotator, reviewer):
    demo = _edited_demonstration(project, annotator)
    own = Ranking.objects.get(origin=RankingOrigin.EDIT)
    # Another pair by the same annotator on the same prompt at the very same instant, but not
    # made from this demonstration: a timestamp match is no proof of belonging.
    stranger = Ranking.objects.create(
        project=project,
        prompt=demo.prompt,
        annotator=annotator,
        origin=RankingOrigin.EDIT,
        groups=own.groups,
        created_at=demo.created_at,
    )
    services.review_decide(work=demo, reviewer=reviewer, accept=False, comment="Wrong city")
    own.refresh_from_db()
    stranger.refresh_from_db()
    assert own.review_status == ReviewStatus.REJECTED and own.review_comment == "Wrong city"
    assert stranger.review_status == ReviewStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_the_migration_links_existing_pairs_to_their_demonstration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="writer")
    project = old.get_model("annotation", "Project").objects.create(name="P", slug="p")
    prompt = old.get_model("annotation", "Prompt").objects.create(
        project=project, messages=[{"role": "user", "content": "Capital of France?"}]
    )
    original = old.get_model("annotation", "Completion").objects.create(
        prompt=prompt, source="model", text="Spain"
    )
    Demonstration = old.get_model("annotation", "Demonstration")
    Ranking = old.get_model("annotation", "Ranking")
    demo = Demonstration.objects.create(
        project=project, prompt=prompt, annotator=user, text="Paris", edited_from=original
    )
    pair = Ranking.objects.create(
        project=project,
        prompt=prompt,
        annotator=user,
        origin="edit",
        groups=[[original.id + 1], [original.id]],
        created_at=demo.created_at,
    )
    task = Ranking.objects.create(
        project=project,
        prompt=prompt,
        annotator=user,
        groups=[[1], [2]],
        created_at=demo.created_at,
    )

    executor = MigrationExecutor(connection)
    try:
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps.get_model("annotation", "Ranking")
        assert new.objects.get(pk=pair.pk).demonstration_id == demo.pk
        assert new.objects.get(pk=task.pk).demonstration_id is None
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
