"""What annotators and reviewers see: no pre-filled ranking, refusals shown in place, their own
work with its reviews, task kinds in turn, blind model names and the true K."""

import re

import pytest
from django.test import Client

from annotation import services
from annotation.models import Item, Ranking, ReviewStatus, TaskKind
from tests.annotation.factories import CompletionFactory, PromptFactory, ranking_item

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _claim(client, project, **data):
    response = client.post(f"/annotation/projects/{project.slug}/next/", data)
    assert response.status_code == 302
    return response["Location"]


def _demonstration_item(project):
    return Item.objects.create(
        project=project, prompt=PromptFactory(project=project), kind=TaskKind.DEMONSTRATION
    )


def test_the_ranking_page_suggests_no_order(annotator_client, project):
    ranking_item(project, k=3)
    html = annotator_client.get(_claim(annotator_client, project)).content.decode()
    assert 'name="order"' in html and 'name="order" value=' not in html
    ranked = html.split('class="rank-list"', 1)[1].split("</ol>", 1)[0]
    assert "rank-item" not in ranked  # every answer starts among the unplaced ones
    assert html.count('class="rank-item"') == 3


def test_an_untouched_ranking_is_refused_and_says_what_to_do(annotator_client, project):
    ranking_item(project, k=3)
    url = _claim(annotator_client, project)
    empty = annotator_client.post(url, {"order": ""})
    assert empty.status_code == 400
    assert "Order the answers before submitting." in empty.content.decode()
    partial = annotator_client.post(url, {"order": "B > A"})
    assert partial.status_code == 400
    assert "Place every answer: C is missing." in partial.content.decode()
    assert not Ranking.objects.exists()


def test_a_reject_without_a_comment_comes_back_as_the_form_with_its_message(
    project, annotator, reviewer
):
    ranking_item(project)
    assignment = services.task_next(project=project, user=annotator)
    ranking = services.ranking_submit(assignment=assignment, user=annotator, order="A > B > C")
    response = _client(reviewer).post(
        f"/annotation/review/ranking/{ranking.id}/",
        {"decision": "reject", "comment": "  "},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert response["HX-Retarget"] == f"#review-ranking-{ranking.id}"
    assert response["HX-Reswap"] == "outerHTML"
    assert f'<form method="post" id="review-ranking-{ranking.id}"' in html
    assert "Say why the work is rejected" in html and 'role="alert"' in html
    ranking.refresh_from_db()
    assert ranking.review_status == ReviewStatus.PENDING


def test_my_work_shows_the_review_and_the_reviewer_comment_and_clears_the_notice(
    project, annotator, reviewer, make_annotator
):
    item = ranking_item(project, k=2)
    gold = ranking_item(project, k=2)
    gold_ids = list(gold.completions.values_list("id", flat=True))
    Item.objects.filter(pk=gold.pk).update(is_gold=True, gold_groups=[[gold_ids[0]], [gold_ids[1]]])
    first = services.task_next(project=project, user=annotator)
    mine = services.ranking_submit(assignment=first, user=annotator, order="A > B")
    other = make_annotator()
    services.ranking_submit(
        assignment=services.task_next(project=project, user=other), user=other, order="A > B"
    )
    assert mine.item == item
    project.gold_rate = 1.0
    project.save()
    gold_assignment = services.task_next(project=project, user=annotator)
    assert gold_assignment.item == gold
    rejected = services.ranking_submit(assignment=gold_assignment, user=annotator, order="A > B")
    services.review_decide(work=rejected, reviewer=reviewer, accept=False, comment="Read B again")
    services.review_decide(work=mine, reviewer=reviewer, accept=True)

    client = _client(annotator)
    home = client.get("/").content.decode()
    assert "1 piece of your work came back rejected" in home
    page = client.get("/annotation/my-work/").content.decode()
    assert f"Ranking {mine.id}" in page and f"Ranking {rejected.id}" in page
    assert 'class="review-state rejected">Rejected' in page
    assert 'class="review-state accepted">Accepted' in page
    assert "Read B again" in page
    assert not re.search(r"\brev\b", page.split("<main", 1)[1])  # the reviewer stays unnamed
    assert ">new</span>" in page
    row = page.split(project.name + "</a></td>", 1)[1].split("</tr>", 1)[0]
    cells = row.split("</td>")
    assert "–" not in cells[4]  # agreement with the other annotator of the same item
    assert '<small class="muted">(1)</small>' in cells[5]  # gold accuracy over one gold item
    # Opening the page counts as reading the reviews: the notice goes.
    assert "came back rejected" not in client.get("/").content.decode()
    assert ">new</span>" not in client.get("/annotation/my-work/").content.decode()
    only = client.get("/annotation/my-work/?status=rejected").content.decode()
    assert f"Ranking {rejected.id}" in only and f"Ranking {mine.id}" not in only


def test_gold_accuracy_and_agreement_come_from_the_dashboard_figures(
    project, annotator, make_annotator
):
    from annotation import selectors

    ranking_item(project, k=2)
    other = make_annotator()
    for user, order in ((annotator, "A > B"), (other, "A > B")):
        assignment = services.task_next(project=project, user=user)
        services.ranking_submit(assignment=assignment, user=user, order=order)
    [summary] = selectors.annotator_summary(user=annotator)
    dashboard = next(
        r for r in selectors.annotator_stats(project=project) if r["annotator"] == "ann"
    )
    assert summary["agreement"] == dashboard["agreement"] is not None
    assert summary["pending"] == 1 and summary["judgments"] == 1


def test_the_queue_alternates_task_kinds(project, annotator):
    for _ in range(2):
        ranking_item(project, k=2)
        _demonstration_item(project)
    kinds = []
    for _ in range(4):
        assignment = services.task_next(project=project, user=annotator)
        kinds.append(assignment.item.kind)
        services.task_skip(assignment=assignment, user=annotator, reason="seen")
    assert kinds == ["ranking", "demonstration", "ranking", "demonstration"]


def test_an_annotator_may_ask_for_one_kind_and_keeps_getting_it(annotator_client, project):
    for _ in range(2):
        ranking_item(project, k=2)
        _demonstration_item(project)
    first = _claim(annotator_client, project, kind="demonstration")
    assert "Write the ideal answer" in annotator_client.get(first).content.decode()
    second = annotator_client.post(first, {"text": "An answer."})
    assert "Write the ideal answer" in annotator_client.get(second["Location"]).content.decode()
    annotator_client.post(second["Location"], {"text": "Another answer."})
    done = annotator_client.post(f"/annotation/projects/{project.slug}/next/", follow=True)
    assert "No demonstration tasks left in the queue" in done.content.decode()
    mixed = _claim(annotator_client, project, kind="")
    assert "Rank the answers" in annotator_client.get(mixed).content.decode()


def test_a_kind_the_project_does_not_run_is_refused(annotator_client, project):
    project.task_kinds = ["ranking"]
    project.save()
    response = annotator_client.post(
        f"/annotation/projects/{project.slug}/next/", {"kind": "demonstration"}, follow=True
    )
    assert "This project has no demonstration tasks." in response.content.decode()


def test_annotators_do_not_see_the_candidate_model_names(
    annotator_client, researcher_client, project, contestants
):
    project.contestants.set(contestants)
    blind = annotator_client.get(f"/annotation/projects/{project.slug}/").content.decode()
    assert "Alpha-Model" not in blind and "alpha-model" not in blind
    assert "2 models" in blind
    named = researcher_client.get(f"/annotation/projects/{project.slug}/").content.decode()
    assert "Alpha-Model" in named and "Beta-Model" in named


def test_the_project_states_the_k_its_items_have(annotator_client, project):
    assert project.candidates_per_prompt == 2
    ranking_item(project, k=3)
    ranking_item(project, k=3)
    html = annotator_client.get(f"/annotation/projects/{project.slug}/").content.decode()
    assert "K = 3" in html and "K = 2" not in html
    prompt = PromptFactory(project=project)
    pair = [CompletionFactory(prompt=prompt) for _ in range(2)]
    services.ranking_item_create(prompt=prompt, completions=pair)
    mixed = annotator_client.get(f"/annotation/projects/{project.slug}/").content.decode()
    assert "K = 2 (1 item), 3 (2 items)" in mixed


def test_the_api_serves_the_kind_asked_for_and_refuses_an_unknown_one(
    api_client, annotator, project
):
    from rest_framework.authtoken.models import Token

    ranking_item(project, k=2)
    _demonstration_item(project)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=annotator).key}")
    url = f"/api/annotation/projects/{project.slug}/tasks/next/"
    bad = api_client.post(url, {"kind": "essay"}, format="json")
    assert bad.status_code == 400 and "kind" in bad.json()
    task = api_client.post(url, {"kind": "demonstration"}, format="json").json()
    assert task["kind"] == "demonstration"
