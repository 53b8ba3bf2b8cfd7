"""The evaluation report of a policy run: win rate against the parent by a held-out judge,
reward/length correlation, and the live arena rating; on the run page and in the API."""

import pytest

from arena.models import LeaderboardSnapshot
from tests.training.test_runs import SMALL, WORDS, _snapshot
from training import reports, services
from training.models import ReportStatus, RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def pairs():
    return _snapshot(
        "preference",
        [
            {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
            for i in range(8)
        ],
    )


def _dpo(tiny_contestant, pairs, **kwargs):
    return services.training_run_create(
        kind="dpo",
        loss_type="sigmoid",
        base_model=tiny_contestant,
        snapshot=pairs,
        hyperparameters=SMALL,
        **kwargs,
    )


def test_a_policy_run_without_an_evaluation_judge_says_so(tiny_contestant, pairs):
    run = _dpo(tiny_contestant, pairs)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.report_status == ReportStatus.READY and run.report["judge"] is None
    assert "No evaluation judge was chosen" in run.report["note"]


def test_a_policy_run_is_judged_against_its_parent_after_training(
    tiny_contestant, pairs, judge, django_capture_on_commit_callbacks, researcher_client
):
    run = _dpo(tiny_contestant, pairs, eval_judge=judge)
    with django_capture_on_commit_callbacks() as callbacks:
        services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.report_status == ReportStatus.PENDING and len(callbacks) == 1  # report queued
    page = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "Being computed" in page and 'hx-trigger="every 1s"' in page

    reports.training_run_report(run_id=run.pk)
    run.refresh_from_db()
    report = run.report
    assert run.report_status == ReportStatus.READY, report
    assert report["judge"] == "tiny-judge" and report["prompts"] == 6  # distinct prompts
    assert report["wins"] + report["ties"] + report["losses"] == 6
    assert 0 <= report["win_rate"] <= 1
    assert -1 <= report["reward_length"]["pearson"] <= 1 and report["reward_length"]["n"] == 6
    assert report["examples"][0]["prompt"] in WORDS
    assert reports.training_run_report(run_id=run.pk) is None  # done once

    page = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "win rate for the new policy" in page and "Spearman" in page
    assert "No arena rating yet" in page


def test_a_report_still_pending_long_after_the_run_is_sent_again(
    tiny_contestant, pairs, judge, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from training import tasks
    from training.models import TrainingRun

    sent = []
    monkeypatch.setattr(tasks.training_run_report, "delay", sent.append)

    run = _dpo(tiny_contestant, pairs, eval_judge=judge)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, report_status=ReportStatus.PENDING, finished_at=timezone.now()
    )
    assert reports.training_reports_requeue() == 0  # just finished: its message is on its way
    TrainingRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(hours=1))
    assert reports.training_reports_requeue() == 1
    assert sent == [run.pk]


def test_a_report_that_cannot_be_computed_says_why(tiny_contestant, pairs, judge):
    run = _dpo(tiny_contestant, pairs, eval_judge=judge)
    services.training_run_execute(run_id=run.pk)
    type(judge).objects.filter(pk=judge.pk).update(path="/nowhere/judge")
    reports.training_run_report(run_id=run.pk)
    run.refresh_from_db()
    assert run.report_status == ReportStatus.FAILED
    assert "Could not load judge" in run.report["error"]
    assert run.status == RunStatus.SUCCEEDED  # the run itself stands


def test_the_evaluation_judge_must_be_held_out_and_fit_the_run(tiny_contestant, pairs, judge):
    with pytest.raises(services.RunError, match="no policy to evaluate"):
        services.training_run_create(
            kind="reward", base_model=tiny_contestant, snapshot=pairs, eval_judge=judge
        )
    prompts = _snapshot("sft", [{"prompt": "q", "completion": "a"}])
    with pytest.raises(services.RunError, match="must be held out"):
        services.training_run_create(
            kind="ppo",
            base_model=tiny_contestant,
            snapshot=prompts,
            reward_model=judge,
            eval_judge=judge,
        )


def test_run_page_and_api_show_the_arena_rating_from_the_newest_leaderboard(
    tiny_contestant, pairs, researcher_client, api_client, researcher
):
    run = _dpo(tiny_contestant, pairs)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    name = run.result_contestant.name
    row = {"rating": 1012.4, "ci_lower": 990.0, "ci_upper": 1031.0, "votes": 7, "rank_ub": 1}
    LeaderboardSnapshot.objects.create(battles=3, rows=[{"model": "old", **row}])
    LeaderboardSnapshot.objects.create(
        battles=9, rows=[{"model": name, **row}, {"model": "tiny-llama", **row, "rating": 987.6}]
    )
    page = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "rating <strong>1012</strong>" in page and "parent 988" in page
    api_client.force_authenticate(researcher)
    data = api_client.get(f"/api/training/runs/{run.pk}/").json()
    assert data["arena"]["policy"]["rating"] == 1012.4 and data["arena"]["battles"] == 9
    assert data["report_status"] == "ready" and data["eval_judge"] is None


def test_ties_count_half_in_the_win_rate():
    stats = reports.win_stats([1.0, 0.0, 2.0, 5.0], [0.5, 1.0, 2.0, 1.0])
    assert (stats["wins"], stats["losses"], stats["ties"]) == (2, 1, 1)
    assert stats["win_rate"] == pytest.approx(2.5 / 4)


def test_report_prompts_are_distinct_and_of_one_shape():
    rows = [
        {"prompt": "a", "chosen": "x", "rejected": "y"},
        {"prompt": "a", "chosen": "z", "rejected": "y"},
        {"messages": [{"role": "user", "content": "m"}, {"role": "assistant", "content": "n"}]},
        {"prompt": "b", "completion": "c"},
    ]
    assert sorted(reports.report_prompts(rows)) == ["a", "b"]
    chats = reports.report_prompts(rows[2:3])
    assert chats == [[{"role": "user", "content": "m"}]]


def test_api_and_form_take_an_evaluation_judge(
    api_client, admin_user, admin_client_, tiny_contestant, pairs, judge
):
    api_client.force_authenticate(admin_user)
    payload = {"kind": "dpo", "base_model": "tiny-llama", "snapshot": pairs.pk}
    created = api_client.post(
        "/api/training/runs/", {**payload, "eval_judge": "tiny-judge"}, format="json"
    )
    assert created.status_code == 202 and created.json()["eval_judge"] == "tiny-judge"
    unknown = api_client.post(
        "/api/training/runs/", {**payload, "eval_judge": "nobody"}, format="json"
    )
    assert unknown.status_code == 400 and "eval_judge" in unknown.json()
    form = admin_client_.post(
        "/training/runs/new/",
        {**payload, "kind": "reward", "eval_judge": "tiny-judge", "hyperparameters": "{}"},
    )
    assert form.status_code == 400 and "no policy to evaluate" in form.content.decode()
