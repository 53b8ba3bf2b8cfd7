"""The pages of an annotator's shift, the reviewer's queue and the admin's tools."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation import services
from annotation.models import Assignment, Item, Prompt, Ranking, ReviewStatus, TaskKind
from tests.annotation.factories import CompletionFactory, PromptFactory, ranking_item

pytestmark = pytest.mark.django_db


def _claim(client, project):
    response = client.post(f"/annotation/projects/{project.slug}/next/")
    assert response.status_code == 302
    return response["Location"]


def test_next_task_opens_a_ranking_page_that_hides_who_wrote_the_answers(
    annotator_client, project, contestants
):
    prompt = PromptFactory(project=project)
    answers = [
        CompletionFactory(
            prompt=prompt,
            source="model",
            contestant=contestants[0],
            text="Use `print()`:\n\n```python\nprint('hi')\n```",
        ),
        CompletionFactory(prompt=prompt, text="<script>alert(1)</script>Nope"),
    ]
    services.ranking_item_create(prompt=prompt, completions=answers)
    url = _claim(annotator_client, project)
    html = annotator_client.get(url).content.decode()
    assert "Rank the answers" in html and 'data-letter="B"' in html
    assert "Alpha-Model" not in html and "alpha-model" not in html
    assert '<pre><code class="language-python">' in html
    assert "<script>alert(1)" not in html


def test_an_annotator_submits_a_ranking_with_labels_and_is_sent_to_the_next_task(
    annotator_client, annotator, project
):
    ranking_item(project, k=3)
    url = _claim(annotator_client, project)
    response = annotator_client.post(
        url,
        {
            "order": "C > A = B",
            "label-C-helpfulness": "5",
            "label-A-toxicity": "on",
            "rationale": "C answers the question",
        },
    )
    # The last task done: back to the project, saying so.
    assert response.status_code == 302
    assert response["Location"] == f"/annotation/projects/{project.slug}/"
    ranking = Ranking.objects.get(annotator=annotator)
    assignment = Assignment.objects.get(user=annotator)
    ids = dict(zip(assignment.letters, assignment.display_order))
    assert ranking.groups == [[ids["C"]], [ids["A"], ids["B"]]]
    assert ranking.labels == {str(ids["C"]): {"helpfulness": 5}, str(ids["A"]): {"toxicity": True}}


def test_a_bad_order_is_answered_with_400_and_a_message(annotator_client, project):
    ranking_item(project, k=3)
    url = _claim(annotator_client, project)
    response = annotator_client.post(url, {"order": "A > B"})
    assert response.status_code == 400
    assert "C is missing" in response.content.decode()
    assert not Ranking.objects.exists()


def test_the_demonstration_page_previews_markdown_and_starts_from_a_model_answer(
    annotator_client, annotator, project
):
    prompt = PromptFactory(project=project)
    model_answer = CompletionFactory(prompt=prompt, source="model", text="Draft **answer**")
    Item.objects.create(project=project, prompt=prompt, kind=TaskKind.DEMONSTRATION)
    url = _claim(annotator_client, project)
    html = annotator_client.get(f"{url}?start={model_answer.id}").content.decode()
    assert "Draft **answer**</textarea>" in html and f'value="{model_answer.id}"' in html
    preview = annotator_client.post("/annotation/preview/", {"text": "# Title\n<img src=x>"})
    assert "<h1>Title</h1>" in preview.content.decode() and "<img" not in preview.content.decode()
    response = annotator_client.post(url, {"text": "Final answer", "edited_from": model_answer.id})
    assert response.status_code == 302
    assert Ranking.objects.filter(origin="edit", annotator=annotator).count() == 1


def test_skipping_from_the_page_asks_for_a_reason(annotator_client, project):
    ranking_item(project)
    url = _claim(annotator_client, project)
    assignment_id = int(url.rstrip("/").rsplit("/", 1)[1])
    annotator_client.post(f"{url}skip/", {"reason": "Offensive prompt"})
    assert Assignment.objects.get(pk=assignment_id).skip_reason == "Offensive prompt"


def test_an_empty_queue_says_so(annotator_client, project):
    response = annotator_client.post(f"/annotation/projects/{project.slug}/next/", follow=True)
    assert "Nothing left in the queue" in response.content.decode()


def test_opening_the_next_task_link_reserves_nothing(annotator_client, project):
    """A GET (a link, a prefetch, a crawler) shows a button; only its POST takes work."""
    ranking_item(project)
    page = annotator_client.get(f"/annotation/projects/{project.slug}/next/")
    assert page.status_code == 200 and 'method="post"' in page.content.decode()
    assert not Assignment.objects.exists()
    url = _claim(annotator_client, project)
    resumed = annotator_client.get(f"/annotation/projects/{project.slug}/next/")
    assert resumed.status_code == 302 and resumed["Location"] == url  # the task held
    assert Assignment.objects.count() == 1


def test_a_submitted_task_opens_the_next_one(annotator_client, annotator, project):
    ranking_item(project)
    ranking_item(project)
    first = _claim(annotator_client, project)
    response = annotator_client.post(first, {"order": "A > B > C"})
    assert response.status_code == 302 and response["Location"] != first
    assert response["Location"].startswith("/annotation/tasks/")
    assert Assignment.objects.filter(user=annotator).count() == 2


def test_people_without_the_annotator_role_cannot_take_tasks(outsider_client, project):
    ranking_item(project)
    assert outsider_client.get(f"/annotation/projects/{project.slug}/next/").status_code == 403


def test_a_reviewer_rejects_a_ranking_through_htmx_and_sees_the_decision(
    annotator, reviewer, project
):
    from django.test import Client

    ranking_item(project)
    assignment = services.task_next(project=project, user=annotator)
    ranking = services.ranking_submit(assignment=assignment, user=annotator, order="A > B > C")
    client = Client()
    client.force_login(reviewer)
    page = client.get(f"/annotation/projects/{project.slug}/review/").content.decode()
    assert f"Ranking {ranking.id} by ann" in page
    response = client.post(
        f"/annotation/review/ranking/{ranking.id}/",
        {"decision": "reject", "comment": "Ignores the guidelines"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Rejected" in response.content.decode()
    assert "<html" not in response.content.decode()  # a fragment, not the page
    ranking.refresh_from_db()
    assert ranking.review_status == ReviewStatus.REJECTED


def test_annotators_cannot_open_the_review_queue(annotator_client, project):
    assert annotator_client.get(f"/annotation/projects/{project.slug}/review/").status_code == 403


def test_a_malformed_upload_is_refused_with_its_line_and_nothing_is_stored(admin_client_, project):
    upload = SimpleUploadedFile("bad.jsonl", b'{"prompt": "fine"}\n{"prompt": 3\n')
    response = admin_client_.post(
        f"/annotation/projects/{project.slug}/import/", {"file": upload}, follow=True
    )
    assert "line 2: not valid JSON" in response.content.decode()
    assert not Prompt.objects.filter(project=project).exists()


def test_an_admin_imports_a_csv_through_an_instruction_template(admin_client_, project):
    upload = SimpleUploadedFile("t.csv", b"word,meaning\ncat,a small feline\n")
    response = admin_client_.post(
        f"/annotation/projects/{project.slug}/import/",
        {"file": upload, "instruction": "Define the word {{word}}.", "answer": "{{meaning}}"},
        follow=True,
    )
    assert "Imported 1 prompts and 1 demonstrations" in response.content.decode()
    assert Prompt.objects.get(project=project).text == "Define the word cat."


def test_the_dashboard_shows_progress_agreement_and_the_model_board(
    admin_client_, project, make_annotator, contestants
):
    for _ in range(2):
        ranking_item(project, k=2, contestants=contestants)
    for _ in range(2):
        user = make_annotator()
        for _ in range(2):
            assignment = services.task_next(project=project, user=user)
            alpha_first = [
                assignment.letters[assignment.display_order.index(c.id)]
                for c in assignment.item.completions.order_by("id")
            ]
            services.ranking_submit(assignment=assignment, user=user, order=" > ".join(alpha_first))
    html = admin_client_.get(f"/annotation/projects/{project.slug}/dashboard/").content.decode()
    assert "100.0%" in html  # both ranking items have their two judgments
    assert "Krippendorff" in html and "1.00" in html
    assert html.index("alpha-model") < html.index("beta-model")
