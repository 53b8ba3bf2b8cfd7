"""A researcher opens a judge's page (agreement with votes, flagged rankings), asks for the best
of three samples in the browser, and reads a policy run's evaluation report; a reviewer finds
the judge's comment on a flagged ranking."""

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Ranking, ReviewStatus
from evaluation.suites import PromptRow, suite_create
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory
from tests.e2e.conftest import screenshots_folder
from tests.training.test_judges import LengthJudge, _battle
from tests.training.test_runs import SMALL, WORDS, _snapshot
from training import judges, reports, services
from training.models import JudgeJob


def _log_in(page, url, username, password):
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")


@pytest.mark.django_db(transaction=True)
def test_a_researcher_reads_a_judge_and_a_run_report(
    live_server,
    page,
    browser,
    screenshot,
    researcher,
    annotator,
    reviewer,
    admin_user,
    judge,
    tiny_contestant,
    tiny_model_dir,
    monkeypatch,
):
    run = _judge_with_votes_flags_and_a_reported_run(
        judge, tiny_contestant, tiny_model_dir, annotator, monkeypatch
    )
    _read_the_judge_and_the_report(page, live_server.url, run, screenshot)

    context = browser.new_context()
    review = context.new_page()
    _log_in(review, live_server.url, "rev", "pw-rev")
    review.goto(f"{live_server.url}/annotation/projects/judged/review/")
    expect(review.get_by_text("Flagged by judge tiny-judge")).to_be_visible()
    folder = screenshots_folder()
    folder.mkdir(parents=True, exist_ok=True)
    review.screenshot(path=str(folder / "review-flagged.png"), full_page=True)
    context.close()

    context = browser.new_context()
    admin = context.new_page()
    _log_in(admin, live_server.url, "adm", "pw-adm")
    admin.goto(f"{live_server.url}/training/judges/{judge.pk}/")
    admin.get_by_role("button", name="Score arena battles").click()
    expect(admin.get_by_text("Queued; this page shows the job's progress.")).to_be_visible()
    # The job is listed with its state; with a worker on the gpu queue it may already run.
    jobs = admin.locator("#jobs section").filter(has=admin.get_by_role("heading", name="Jobs"))
    newest = jobs.locator("tbody tr").first
    expect(newest).to_contain_text("Score arena battles")
    expect(newest.locator(".status")).to_have_text(re.compile("Queued|Running|Succeeded|Failed"))
    admin.screenshot(path=str(folder / "judge-admin.png"), full_page=True)
    context.close()


def _judge_with_votes_flags_and_a_reported_run(
    judge, tiny_contestant, tiny_model_dir, annotator, monkeypatch
):
    """Three voted battles and a flagged ranking scored by a length judge, and a DPO run with
    its evaluation report by `judge`."""
    from arena.services import contestant_create

    other = contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    pair = (tiny_contestant, other)
    project = ProjectFactory(slug="judged", name="Judged answers")
    prompt = PromptFactory(
        project=project, messages=[{"role": "user", "content": "What is the capital of France?"}]
    )
    short = CompletionFactory(prompt=prompt, text="Lyon.")
    long_ = CompletionFactory(prompt=prompt, text="Paris is the capital of France.")
    Ranking.objects.create(
        project=project,
        prompt=prompt,
        annotator=annotator,
        groups=[[short.pk], [long_.pk]],
        display_order=[long_.pk, short.pk],
        review_status=ReviewStatus.ACCEPTED,
    )
    with monkeypatch.context() as patch:  # a judge that rewards length, so the flag is certain
        patch.setattr(judges, "judge_load", lambda _judge: LengthJudge())
        for winner in ("model_a", "model_a", "model_b", "tie"):
            _battle(pair, "paris is the capital of france", "paris", winner=winner)
        judges.judge_score_battles(judge=judge)
        judges.judge_flag_rankings(judge=judge, project=project, threshold=5)

    snapshot = _snapshot(
        "preference",
        [
            {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
            for i in range(8)
        ],
    )
    run = services.training_run_create(
        kind="dpo",
        loss_type="sigmoid",
        base_model=tiny_contestant,
        snapshot=snapshot,
        hyperparameters=SMALL,
        eval_judge=judge,
        eval_suite=suite_create(
            name="e2e-suite",
            baseline=tiny_contestant,
            prompts=[PromptRow("name a red fruit"), PromptRow("count to three")],
        ),
    )
    services.training_run_execute(run_id=run.pk)
    reports.training_run_report(report_id=run.evaluation.pk)
    return run


def _read_the_judge_and_the_report(page, url: str, run, screenshot) -> None:
    _log_in(page, url, "res", "pw-res")
    page.goto(f"{url}/training/")
    page.get_by_role("link", name="tiny-judge").click()
    expect(page.get_by_text("of 3 voted battles")).to_be_visible()
    expect(page.get_by_role("cell", name="Judged answers").first).to_be_visible()
    page.get_by_label("Policy").select_option("tiny-llama")
    page.get_by_label("Prompt").fill("two plus two")
    page.locator("input[name=n]").fill("3")
    page.get_by_role("button", name="Sample and judge").click()
    expect(page.get_by_role("status")).to_contain_text("sampled on the GPU worker")
    # The gpu worker's part, here (a test worker that took the message finds it claimed).
    judges.judge_job_execute(job_id=JudgeJob.objects.get(kind="best_of_n").pk)
    expect(page.locator("#best-of-n li")).to_have_count(3)
    screenshot("judge-page")

    page.goto(f"{url}/training/runs/{run.pk}/")
    expect(page.get_by_text("win rate for the new policy")).to_be_visible()
    page.get_by_text("Examples").click()
    screenshot("run-report")
