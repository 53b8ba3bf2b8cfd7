"""The REST API: researchers read and import, annotators work through tasks."""

import pytest
from rest_framework.authtoken.models import Token

from annotation.models import Prompt, Ranking
from tests.annotation.factories import ranking_item

pytestmark = pytest.mark.django_db


def _as(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    return api_client


def test_a_researcher_imports_prompts_in_bulk_and_reads_them_back(api_client, researcher, project):
    client = _as(api_client, researcher)
    rows = [
        {"prompt": "One?"},
        {"messages": [{"role": "user", "content": "Two?"}]},
        {"prompt": "one?"},
    ]
    response = client.post(
        f"/api/annotation/projects/{project.slug}/prompts/", {"rows": rows}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {"created": 2, "duplicates": [3], "demonstrations": 0}
    listed = client.get(f"/api/annotation/projects/{project.slug}/prompts/").json()
    assert [p["messages"][0]["content"] for p in listed["results"]] == ["One?", "Two?"]


def test_a_bad_row_refuses_the_whole_bulk_import(api_client, researcher, project):
    client = _as(api_client, researcher)
    rows = [{"prompt": "Fine"}, {"messages": [{"role": "user", "content": ""}]}]
    response = client.post(
        f"/api/annotation/projects/{project.slug}/prompts/", {"rows": rows}, format="json"
    )
    assert response.status_code == 400 and response.json()["line"] == 2
    assert not Prompt.objects.exists()


def test_an_annotator_takes_ranks_and_cannot_resubmit_a_task(api_client, annotator, project):
    ranking_item(project, k=3)
    client = _as(api_client, annotator)
    task = client.post(f"/api/annotation/projects/{project.slug}/tasks/next/").json()
    assert task["kind"] == "ranking" and [a["letter"] for a in task["answers"]] == ["A", "B", "C"]
    assert "contestant" not in str(task)
    url = f"/api/annotation/tasks/{task['id']}/ranking/"
    assert client.post(url, {"order": "A > B"}, format="json").status_code == 400
    assert client.post(url, {"order": "C > A = B"}, format="json").status_code == 201
    assert client.post(url, {"order": "C > A = B"}, format="json").status_code == 409
    assert client.post(f"/api/annotation/projects/{project.slug}/tasks/next/").status_code == 204


def test_researchers_read_judgments_progress_and_agreement(
    api_client, researcher, make_annotator, project
):
    from annotation import services

    ranking_item(project, k=2)
    for _ in range(2):
        user = make_annotator()
        assignment = services.task_next(project=project, user=user)
        services.ranking_submit(assignment=assignment, user=user, order="A > B")
    client = _as(api_client, researcher)
    base = f"/api/annotation/projects/{project.slug}"
    assert client.get(f"{base}/judgments/").json()["count"] == Ranking.objects.count() == 2
    progress = client.get(f"{base}/progress/").json()["progress"]
    assert progress["kinds"]["ranking"]["complete"] == 1
    agreement = client.get(f"{base}/agreement/").json()
    assert agreement["items"] == 1 and agreement["comparisons"] == 1
    assert client.get(f"{base}/leaderboard/").json() == {"rows": []}  # human answers only


def test_annotators_cannot_read_the_researchers_endpoints(api_client, annotator, project):
    client = _as(api_client, annotator)
    assert client.get(f"/api/annotation/projects/{project.slug}/judgments/").status_code == 403
