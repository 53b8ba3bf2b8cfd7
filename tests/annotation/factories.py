"""factory_boy factories for annotation rows."""

from __future__ import annotations

import factory

from annotation import services
from annotation.imports import messages_hash
from annotation.models import Completion, CompletionSource, Project, Prompt


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    guidelines = "Prefer **correct**, helpful answers."
    overlap = 2
    gold_rate = 0.0
    fast_seconds = 5


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"Question number {n}?"}])
    content_hash = factory.LazyAttribute(lambda o: messages_hash(o.messages))


class CompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Completion

    prompt = factory.SubFactory(PromptFactory)
    source = CompletionSource.HUMAN
    text = factory.Sequence(lambda n: f"Answer {n}")


def ranking_item(project, *, k: int = 3, contestants=None, **kwargs):
    """A ready ranking item with K human (or, given contestants, model-labelled) answers."""
    prompt = PromptFactory(project=project)
    completions = [
        CompletionFactory(
            prompt=prompt,
            contestant=contestants[i] if contestants else None,
            source=CompletionSource.MODEL if contestants else CompletionSource.HUMAN,
        )
        for i in range(k)
    ]
    return services.ranking_item_create(prompt=prompt, completions=completions, **kwargs)
