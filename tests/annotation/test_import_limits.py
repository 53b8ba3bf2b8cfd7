"""A prompt file over PROMPT_IMPORT_MAX_BYTES is refused by its size, before it is read into
memory, with a clear answer and nothing stored."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from annotation.imports import UploadTooLarge, upload_read
from annotation.models import Prompt

BIG = b'{"prompt": "What is two plus two?"}\n' * 100  # 3,600 bytes


class _Unreadable:
    name = "big.jsonl"
    size = 5000

    def read(self):
        raise AssertionError("the file was read before its size was checked")


@override_settings(PROMPT_IMPORT_MAX_BYTES=1000)
def test_an_upload_over_the_limit_is_refused_before_it_is_read():
    with pytest.raises(UploadTooLarge, match="5000 bytes; at most 1000"):
        upload_read(_Unreadable())


@pytest.mark.django_db
@override_settings(PROMPT_IMPORT_MAX_BYTES=1000)
def test_the_api_answers_an_oversized_prompt_file_with_413(api_client, researcher, project):
    api_client.force_authenticate(researcher)
    response = api_client.post(
        f"/api/annotation/projects/{project.slug}/prompts/",
        {"file": SimpleUploadedFile("big.jsonl", BIG)},
        format="multipart",
    )
    assert response.status_code == 413, response.content
    assert "at most 1000" in response.json()["detail"]
    assert Prompt.objects.count() == 0


@pytest.mark.django_db
@override_settings(PROMPT_IMPORT_MAX_BYTES=1000)
def test_the_import_page_refuses_an_oversized_file_with_a_message(admin_client_, project):
    response = admin_client_.post(
        f"/annotation/projects/{project.slug}/import/",
        {"file": SimpleUploadedFile("big.jsonl", BIG)},
        follow=True,
    )
    assert "at most 1000" in response.content.decode()
    assert Prompt.objects.count() == 0


@pytest.mark.django_db
def test_a_file_under_the_limit_is_imported(api_client, researcher, project):
    api_client.force_authenticate(researcher)
    response = api_client.post(
        f"/api/annotation/projects/{project.slug}/prompts/",
        {"file": SimpleUploadedFile("ok.jsonl", BIG)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 1
