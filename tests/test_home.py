"""The home page shows each role its own cards, each saying what is waiting for them."""

import pytest

from annotation import services
from annotation.models import DatasetSnapshot, SnapshotStatus
from core.jobs import JobStatus
from tests.annotation.factories import ProjectFactory, ranking_item
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def shift(annotator, reviewer):
    """A project with three ranking items; the reviewer ranked one that awaits review."""
    project = ProjectFactory(name="Shift", slug="shift", overlap=2)
    for _ in range(3):
        ranking_item(project, k=2)
    assignment = services.task_next(project=project, user=reviewer)
    services.ranking_submit(assignment=assignment, user=reviewer, order="A > B")
    return project


def test_an_annotator_sees_the_tasks_waiting_and_no_training_card(annotator_client, shift):
    html = annotator_client.get("/").content.decode()
    assert "Your tasks" in html and "<strong>3</strong> tasks waiting for you" in html
    assert 'href="/annotation/projects/shift/">Shift</a>: 3 waiting' in html
    assert 'href="/annotation/my-work/"' in html
    assert 'href="/training/"' not in html and "Reviews" not in html


def test_a_reviewer_sees_the_work_waiting_for_review_but_not_their_own(annotator, reviewer, shift):
    from django.test import Client

    rev = Client()
    rev.force_login(reviewer)
    assert "No work waiting for review." in rev.get("/").content.decode()
    assignment = services.task_next(project=shift, user=annotator)
    services.ranking_submit(assignment=assignment, user=annotator, order="B > A")
    html = rev.get("/").content.decode()
    assert "<strong>1</strong> piece of work waiting for review" in html
    assert (
        'href="/annotation/projects/shift/review/">Shift</a>: 1 ranking, 0 demonstrations' in html
    )


def test_a_researcher_sees_runs_with_their_results_and_snapshots_being_built(
    researcher_client, tiny_contestant
):
    building = DatasetSnapshot.objects.create(
        name="prefs", source="rankings", format="preference", status=SnapshotStatus.BUILDING
    )
    ready = DatasetSnapshot.objects.create(
        name="done", source="rankings", format="preference", status=SnapshotStatus.READY
    )
    running = TrainingRun.objects.create(
        kind="dpo", base_model=tiny_contestant, snapshot=ready, status=JobStatus.RUNNING
    )
    failed = TrainingRun.objects.create(
        kind="sft",
        base_model=tiny_contestant,
        snapshot=ready,
        status=JobStatus.FAILED,
        error="Out of memory",
    )
    html = researcher_client.get("/").content.decode()
    assert "<strong>1</strong> snapshot being built" in html
    assert f'href="/annotation/datasets/{building.id}/">prefs</a>: building' in html
    assert "<strong>1</strong> run queued or running" in html
    assert f'href="/training/runs/{running.id}/">' in html
    assert f'href="/training/runs/{failed.id}/">' in html and "Out of memory" in html
    assert "Your tasks" not in html  # researchers take no tasks
