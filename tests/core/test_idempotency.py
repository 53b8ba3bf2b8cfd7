"""Replaying a create request with the same Idempotency-Key creates one row."""

import pytest

from arena import services
from arena.models import Battle, Contestant, Generation

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client_(api_client, annotator):
    api_client.force_authenticate(annotator)
    return api_client


def test_replayed_generation_request_creates_one_row(client_, tiny_contestant):
    payload = {"contestant": "tiny-llama", "messages": MESSAGES}
    first = client_.post("/api/generations/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client_.post("/api/generations/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Generation.objects.count() == 1
    client_.post("/api/generations/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert Generation.objects.count() == 2


def test_replayed_battle_and_vote_create_one_battle_and_one_vote(
    client_, tiny_contestant, tiny_model_dir
):
    services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    first = client_.post(
        "/api/battles/", {"prompt": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="b1"
    )
    client_.post("/api/battles/", {"prompt": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="b1")
    assert Battle.objects.count() == 1
    Generation.objects.update(status="succeeded", output="ok")
    url = f"/api/battles/{first.json()['id']}/vote/"
    vote = client_.post(url, {"winner": "tie"}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    replay = client_.post(url, {"winner": "tie"}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    assert vote.status_code == replay.status_code == 200
    assert replay.json() == vote.json()
    assert sum(Contestant.objects.values_list("elo_votes", flat=True)) == 2  # one vote, two sides


def test_a_key_reused_on_another_endpoint_is_refused(client_, tiny_contestant):
    client_.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": MESSAGES},
        format="json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    other = client_.post(
        "/api/battles/", {"prompt": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    assert other.status_code == 422 and "another request" in other.json()["detail"]


def test_a_refused_request_can_be_corrected_and_sent_with_the_same_key(client_, tiny_contestant):
    bad = client_.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": []},
        format="json",
        HTTP_IDEMPOTENCY_KEY="fix",
    )
    assert bad.status_code == 400
    good = client_.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": MESSAGES},
        format="json",
        HTTP_IDEMPOTENCY_KEY="fix",
    )
    assert good.status_code == 202 and Generation.objects.count() == 1


def test_an_overlong_key_is_refused(client_, tiny_contestant):
    response = client_.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": MESSAGES},
        format="json",
        HTTP_IDEMPOTENCY_KEY="x" * 201,
    )
    assert response.status_code == 400 and Generation.objects.count() == 0


def test_keys_belong_to_their_user(api_client, annotator, researcher, tiny_contestant):
    payload = {"contestant": "tiny-llama", "messages": MESSAGES}
    for user in (annotator, researcher):
        api_client.force_authenticate(user)
        api_client.post("/api/generations/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert Generation.objects.count() == 2


def test_a_replayed_ranking_returns_the_first_answer_and_stores_one_judgment(client_):
    from annotation.models import Ranking
    from tests.annotation.factories import ProjectFactory, ranking_item

    project = ProjectFactory(overlap=2)
    ranking_item(project, k=2)
    task = client_.post(f"/api/annotation/projects/{project.slug}/tasks/next/").json()
    url = f"/api/annotation/tasks/{task['id']}/ranking/"
    first = client_.post(url, {"order": "A > B"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    # The client never saw the first answer (a dropped connection) and sends it again.
    replay = client_.post(url, {"order": "A > B"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert Ranking.objects.count() == 1
    # Without the key, the same resubmission is refused: the task is already done.
    assert client_.post(url, {"order": "B > A"}, format="json").status_code == 409
    assert Ranking.objects.get().groups == first.json()["groups"]


def test_a_replayed_demonstration_stores_one_demonstration(client_):
    from annotation.models import Demonstration, Item, TaskKind
    from tests.annotation.factories import ProjectFactory, PromptFactory

    project = ProjectFactory(overlap=1, task_kinds=["demonstration"])
    Item.objects.create(project=project, prompt=PromptFactory(project=project),
                        kind=TaskKind.DEMONSTRATION)  # fmt: skip
    task = client_.post(f"/api/annotation/projects/{project.slug}/tasks/next/").json()
    url = f"/api/annotation/tasks/{task['id']}/demonstration/"
    body = {"text": "The ideal answer."}
    first = client_.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    replay = client_.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert Demonstration.objects.count() == 1
