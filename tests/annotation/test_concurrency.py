"""Many annotators at once: no item goes past its overlap, nobody judges an item twice.
Threads need row locks that SQLite does not have, so this runs on PostgreSQL only."""

import threading
from collections import Counter

import pytest
from django.db import connection

from annotation import services
from annotation.models import Ranking
from tests.annotation.factories import ProjectFactory, ranking_item


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_push_an_item_past_its_overlap(make_annotator):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    project = ProjectFactory(overlap=3)
    for _ in range(12):
        ranking_item(project, k=2)
    users = [make_annotator() for _ in range(8)]
    errors = []
    start = threading.Barrier(len(users))

    def shift(user):
        from django.db import connections

        try:
            start.wait()
            while (assignment := services.task_next(project=project, user=user)) is not None:
                services.ranking_submit(assignment=assignment, user=user, order="A > B")
        except Exception as exc:  # collected and reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=shift, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    per_item = Counter(Ranking.objects.values_list("item_id", flat=True))
    assert set(per_item.values()) == {3} and len(per_item) == 12  # all done, none beyond 3
    pairs = list(Ranking.objects.values_list("item_id", "annotator_id"))
    assert len(pairs) == len(set(pairs))
