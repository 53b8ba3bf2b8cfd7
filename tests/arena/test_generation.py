"""Generation requests: stored, queued after commit, executed by a real worker, errors kept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from arena import services
from arena.models import Generation, GenerationStatus
from core.jobs import job_kind_of, jobs_reap
from tests.support.worker import wait_for

pytestmark = pytest.mark.django_db


def test_generation_request_queues_one_task_after_commit(
    tiny_contestant, annotator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        generation = services.generation_request(
            contestant=tiny_contestant,
            messages=[{"role": "user", "content": "hi"}],
            user=annotator,
        )
    assert len(callbacks) == 1
    assert generation.status == GenerationStatus.QUEUED
    assert generation.settings["max_new_tokens"] == 8


def test_generation_request_refuses_a_malformed_conversation(tiny_contestant):
    with pytest.raises(ValueError, match="last message"):
        services.generation_request(
            contestant=tiny_contestant, messages=[{"role": "assistant", "content": "hi"}]
        )
    assert Generation.objects.count() == 0


def test_generation_execute_stores_the_answer(tiny_contestant):
    generation = Generation.objects.create(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "two plus two"}],
        settings=tiny_contestant.generation_settings(),
    )
    services.generation_execute(generation_id=generation.id)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.SUCCEEDED
    assert generation.completion_tokens >= 1
    assert generation.attempts == 1
    assert generation.latency_s is not None and generation.latency_s >= 0


def test_generation_execute_does_not_rerun_a_finished_generation(tiny_contestant):
    generation = Generation.objects.create(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "x"}],
        status=GenerationStatus.SUCCEEDED,
        output="kept",
    )
    services.generation_execute(generation_id=generation.id)
    generation.refresh_from_db()
    assert generation.output == "kept" and generation.attempts == 0


def test_generation_failure_is_stored_on_the_row():
    contestant = services.contestant_create(
        name="down",
        display_name="Down",
        backend="openai",
        endpoint_url="http://127.0.0.1:9/v1",
        endpoint_model="x",
        max_retries=0,
        request_timeout_s=1,
    )
    generation = Generation.objects.create(
        contestant=contestant,
        messages=[{"role": "user", "content": "x"}],
        settings=contestant.generation_settings(),
    )
    services.generation_execute(generation_id=generation.id)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED
    assert "could not connect" in generation.error


def test_stale_generations_are_failed_with_a_reason(tiny_contestant):
    stale = Generation.objects.create(
        contestant=tiny_contestant, messages=[], status=GenerationStatus.RUNNING
    )
    fresh = Generation.objects.create(
        contestant=tiny_contestant, messages=[], status=GenerationStatus.RUNNING
    )
    Generation.objects.filter(pk__in=[stale.pk, fresh.pk]).update(heartbeat_at=timezone.now())
    Generation.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap(kind=job_kind_of(Generation)) == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == GenerationStatus.FAILED and "worker stopped" in stale.error
    assert fresh.status == GenerationStatus.RUNNING


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_answers_a_queued_generation(celery_worker, tiny_contestant, annotator):
    generation = services.generation_request(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "what is the capital of france"}],
        user=annotator,
    )

    def finished():
        generation.refresh_from_db()
        return generation.is_finished

    try:
        wait_for(finished, timeout=90)
    except TimeoutError:
        pytest.fail("The worker did not answer. Worker log:\n" + celery_worker.log())
    assert generation.status == GenerationStatus.SUCCEEDED, generation.error
    assert generation.completion_tokens >= 1
    assert "arena.tasks.generation_run" in celery_worker.log()
