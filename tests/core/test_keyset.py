"""Keyset chunks read every row once, in order, across ties in the leading key."""

import pytest

from annotation.models import Prompt
from core.keyset import keyset_chunks
from tests.annotation.factories import ProjectFactory, PromptFactory


@pytest.mark.django_db
def test_keyset_chunks_read_every_row_once_in_order_across_ties():
    project = ProjectFactory()
    for i in range(23):
        PromptFactory(project=project, category=f"c{i % 3}")
    rows = Prompt.objects.values_list("id", "category")
    chunks = list(
        keyset_chunks(rows, keys=("category", "id"), key_of=lambda r: (r[1], r[0]), size=4)
    )
    expected = list(rows.order_by("category", "id"))
    assert [row for chunk in chunks for row in chunk] == expected
    assert [len(chunk) for chunk in chunks] == [4, 4, 4, 4, 4, 3]
