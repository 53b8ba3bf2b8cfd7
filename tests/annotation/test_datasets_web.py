"""The datasets pages and API: create, progress, download, and who may use them."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from annotation import datasets
from annotation.models import DatasetSnapshot, Ranking, SnapshotStatus
from tests.annotation.factories import CompletionFactory, PromptFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def judged(project, annotator):
    prompt = PromptFactory(project=project)
    a, b = CompletionFactory(prompt=prompt), CompletionFactory(prompt=prompt)
    Ranking.objects.create(
        project=project, prompt=prompt, annotator=annotator, groups=[[a.pk], [b.pk]]
    )
    return project


def test_the_form_creates_a_snapshot_and_its_page_polls_until_ready(
    researcher_client, judged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = researcher_client.post(
            "/annotation/datasets/",
            {
                "name": "prefs",
                "source": "rankings",
                "project": judged.pk,
                "format": "preference",
                "style": "standard",
                "pairs": "all",
                "ties": "drop",
                "accepted_only": "",
                "categories": "",
                "guidelines_versions": "1",
            },
        )
    snapshot = DatasetSnapshot.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{snapshot.pk}/")
    assert snapshot.filters == {"guidelines_versions": [1]}
    pending = researcher_client.get(f"/annotation/datasets/{snapshot.pk}/", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in pending.content and b"<html" not in pending.content
    datasets.snapshot_build(snapshot_id=snapshot.pk)
    ready = researcher_client.get(f"/annotation/datasets/{snapshot.pk}/")
    assert b"every 2s" not in ready.content and b"Download Parquet" in ready.content
    download = researcher_client.get(f"/annotation/datasets/{snapshot.pk}/download/?file=parquet")
    table = pq.read_table(io.BytesIO(b"".join(download.streaming_content)))
    assert table.num_rows == 1 and "chosen" in table.column_names
    assert b"prefs" in researcher_client.get("/annotation/datasets/").content

    # The card's snippet loads the file under the name it downloads as.
    saved_as = f"prefs-{snapshot.pk}.parquet"
    assert f'filename="{saved_as}"' in download["Content-Disposition"]
    card = researcher_client.get(f"/annotation/datasets/{snapshot.pk}/download/?file=card")
    readme = b"".join(card.streaming_content).decode()
    assert 'filename="README.md"' in card["Content-Disposition"]
    assert f"data_files: {saved_as}" in readme and f'data_files="{saved_as}"' in readme
    # The page previews the first rows, columns as the file has them.
    html = ready.content.decode()
    assert "First rows" in html and '<th scope="col">chosen</th>' in html
    assert html.count("<td>") == len(table.column_names)


def test_the_form_refuses_a_format_the_source_cannot_give(researcher_client, judged):
    response = researcher_client.post(
        "/annotation/datasets/",
        {
            "name": "x",
            "source": "demonstrations",
            "project": judged.pk,
            "format": "hh",
            "style": "standard",
            "pairs": "all",
            "ties": "drop",
        },
    )
    assert response.status_code == 400 and b"can be written as" in response.content
    assert not DatasetSnapshot.objects.exists()


def test_api_create_answers_202_with_an_id_to_poll_and_replays_by_key(
    api_client, researcher, judged, django_capture_on_commit_callbacks
):
    api_client.force_authenticate(researcher)
    body = {
        "name": "api",
        "source": "rankings",
        "project": judged.slug,
        "format": "kto",
        "filters": {"accepted_only": False},
    }
    with django_capture_on_commit_callbacks(execute=False):
        first = api_client.post(
            "/api/annotation/datasets/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
        again = api_client.post(
            "/api/annotation/datasets/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
    assert first.status_code == 202 and first.data["status"] == SnapshotStatus.PENDING
    assert again.data["id"] == first.data["id"] and DatasetSnapshot.objects.count() == 1
    datasets.snapshot_build(snapshot_id=first.data["id"])
    polled = api_client.get(f"/api/annotation/datasets/{first.data['id']}/")
    assert polled.data["status"] == "ready" and polled.data["row_count"] == 2
    assert len(polled.data["content_hash"]) == 64
    download = api_client.get(polled.data["downloads"]["jsonl"])
    assert download.status_code == 200
    assert b'"label": true' in b"".join(download.streaming_content)


def test_api_refuses_bad_filters(api_client, researcher, judged):
    api_client.force_authenticate(researcher)
    response = api_client.post(
        "/api/annotation/datasets/",
        {
            "source": "rankings",
            "project": judged.slug,
            "format": "preference",
            "filters": {"min_agreement": 3},
        },
        format="json",
    )
    assert response.status_code == 400 and "0..1" in response.data["detail"]


def test_annotators_cannot_download_datasets(annotator_client, judged):
    snapshot = datasets.snapshot_create(
        name="x", spec=datasets.Spec(source="rankings", format="preference", project=judged)
    )
    datasets.snapshot_build(snapshot_id=snapshot.pk)
    response = annotator_client.get(f"/annotation/datasets/{snapshot.pk}/download/?file=jsonl")
    assert response.status_code == 403
