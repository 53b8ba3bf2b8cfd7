"""Candidate answers come from the project's models through the real `generate` worker."""

import pytest

from annotation import services
from annotation.models import Completion, Item
from tests.annotation.factories import ProjectFactory, PromptFactory
from tests.support.worker import wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_candidates_are_generated_by_the_worker_and_open_a_ranking_item(
    tiny_contestant, tiny_model_dir, celery_worker
):
    from arena.services import contestant_create

    second = contestant_create(
        name="tiny-hot",
        display_name="Tiny hot",
        backend="local",
        model_path=str(tiny_model_dir),
        temperature=1.0,
        max_new_tokens=8,
    )
    project = ProjectFactory(overlap=1, sampling={"max_new_tokens": 6})
    project.contestants.set([tiny_contestant, second])
    prompt = PromptFactory(project=project)
    (item,) = services.candidates_generate(project=project, prompts=[prompt])
    assert not item.is_ready

    def opened():
        services.items_refresh(project=project)
        return Item.objects.get(pk=item.pk).is_ready

    wait_for(opened, timeout=90)
    answers = Completion.objects.filter(items=item)
    assert {c.contestant.name for c in answers} == {"tiny-llama", "tiny-hot"}
    assert all(c.settings["max_new_tokens"] == 6 and c.generation_id for c in answers)
