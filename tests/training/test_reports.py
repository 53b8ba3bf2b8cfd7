"""The evaluation report of a policy run: win rate against the parent by a held-out judge,
reward/length correlation, and the live arena rating; on the run page and in the API."""

import pytest

from arena.models import LeaderboardSnapshot
from evaluation.suites import PromptRow, suite_create
from tests.training.test_runs import SMALL, WORDS, _snapshot
from training import reports, services
from training.models import EvaluationReport, ReportStatus, RunStatus, TrainingRun

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


@pytest.fixture
def suite(tiny_contestant):
    """Prompts of which one (WORDS[0]) the runs train on."""
    rows = [PromptRow(WORDS[0]), PromptRow("name a red fruit"), PromptRow("count to three")]
    return suite_create(name="report-suite", baseline=tiny_contestant, prompts=rows)


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
    assert "No evaluation judge and suite were chosen" in run.report["note"]


def test_a_policy_run_is_judged_against_its_parent_after_training(
    tiny_contestant, pairs, judge, suite, django_capture_on_commit_callbacks, researcher_client
):
    run = _dpo(tiny_contestant, pairs, eval_judge=judge, eval_suite=suite)
    with django_capture_on_commit_callbacks() as callbacks:
        services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.report_status == ReportStatus.PENDING and len(callbacks) == 1  # report queued
    page = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "Being computed" in page and 'hx-trigger="every 1s"' in page

    reports.training_run_report(report_id=run.evaluation.pk)
    run = TrainingRun.objects.get(pk=run.pk)
    report = run.report
    assert run.report_status == ReportStatus.READY, report
    # The suite's prompt the run trains on is dropped.
    assert report["judge"] == "tiny-judge" and report["prompts"] == 2
    assert report["prompts_dropped"] == 1
    assert report["wins"] + report["ties"] + report["losses"] == 2
    assert 0 <= report["win_rate"] <= 100
    assert -1 <= report["reward_length"]["pearson"] <= 1 and report["reward_length"]["n"] == 2
    assert report["examples"][0]["prompt"] == "name a red fruit"
    assert reports.training_run_report(report_id=run.evaluation.pk) is None  # done once
    assert run.evaluation.attempts == 1

    page = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "win rate for the new policy" in page and "Spearman" in page
    assert "No arena rating yet" in page


def test_a_report_still_pending_long_after_the_run_is_sent_again(
    tiny_contestant, pairs, judge, suite, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from core import jobs

    sent = []
    monkeypatch.setattr(jobs, "publish", lambda *args, **_: sent.append(args) or True)
    run = _dpo(tiny_contestant, pairs, eval_judge=judge, eval_suite=suite)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    )
    report = EvaluationReport.objects.create(run=run)
    sweep = jobs.jobs_sweep
    assert sweep()["training.evaluationreport"]["resent"] == 0  # its message is on its way
    later = timezone.now() + timedelta(hours=1)
    assert sweep(now=later)["training.evaluationreport"]["resent"] == 1
    assert sent == [("training.tasks.training_run_report", report.pk)]


def test_a_report_that_cannot_be_computed_says_why(tiny_contestant, pairs, judge, suite):
    run = _dpo(tiny_contestant, pairs, eval_judge=judge, eval_suite=suite)
    services.training_run_execute(run_id=run.pk)
    type(judge).objects.filter(pk=judge.pk).update(path="/nowhere/judge")
    reports.training_run_report(report_id=run.evaluation.pk)
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


def test_ties_count_half_in_the_win_share():
    stats = reports.win_stats([1.0, 0.0, 2.0, 5.0], [0.5, 1.0, 2.0, 1.0])
    assert (stats["wins"], stats["losses"], stats["ties"]) == (2, 1, 1)
    assert stats["win_share"] == pytest.approx(2.5 / 4)


def test_win_rate_figures_use_alpaca_evals_definitions():
    policy, parent = [2.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 3.0]
    answers = {"policy": ["aa", "bb", "cc", "d"], "parent": ["a", "b", "cc", "dddd"]}
    figures = reports.win_rate_figures({"policy": policy, "parent": parent}, answers)
    sigmoid = [1 / (1 + 2.718281828**-d) for d in (2, 2, 0, -2)]
    assert figures["n"] == 4 and figures["identical_answers"] == 1
    assert figures["win_rate"] == pytest.approx(100 * sum(sigmoid) / 4, abs=1e-6)
    assert figures["win_rate_low"] < 50 < figures["win_rate_high"]
    assert figures["significant"] is False  # four prompts prove nothing
    assert 0 <= figures["lc_win_rate"] <= 100


def test_report_prompts_leave_out_the_runs_training_prompts(tiny_contestant, suite):
    from training.heldout import hash_of_prompt

    kept, dropped = reports.report_prompts(suite, {hash_of_prompt(" THE quick brown fox ")})
    assert [p.instruction for p in kept] == ["name a red fruit", "count to three"]
    assert dropped == 1
    kept, _ = reports.report_prompts(suite, set(), limit=2, seed=1)
    assert len(kept) == 2 and kept == sorted(kept, key=lambda p: p.index)


def test_api_and_form_take_an_evaluation_judge(
    api_client, admin_user, admin_client_, tiny_contestant, pairs, judge, suite
):
    api_client.force_authenticate(admin_user)
    payload = {"kind": "dpo", "base_model": "tiny-llama", "snapshot": pairs.pk}
    created = api_client.post(
        "/api/training/runs/",
        {**payload, "eval_judge": "tiny-judge", "eval_suite": suite.name},
        format="json",
    )
    assert created.status_code == 202 and created.json()["eval_judge"] == "tiny-judge"
    assert created.json()["eval_suite"] == suite.name
    unknown = api_client.post(
        "/api/training/runs/", {**payload, "eval_judge": "nobody"}, format="json"
    )
    assert unknown.status_code == 400 and "eval_judge" in unknown.json()
    form = admin_client_.post(
        "/training/runs/new/",
        {**payload, "kind": "reward", "eval_judge": "tiny-judge", "hyperparameters": "{}"},
    )
    assert form.status_code == 400 and "no policy to evaluate" in form.content.decode()
