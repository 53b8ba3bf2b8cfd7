"""Judges (registered reward models): scoring battles and candidates, agreement with votes,
flagging rankings for review, best-of-n, and their page and API."""

import pytest

from annotation import selectors as annotation_selectors
from annotation.models import Ranking, RankingOrigin, ReviewStatus
from arena import services as arena_services
from arena.models import Battle, BattleTurn, Generation, GenerationStatus
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory
from tests.training.test_runs import _run, _snapshot
from training import judges, services
from training.models import JobStatus, JudgeFlag, JudgeJob, JudgeScore, RewardModel
from training.selectors import judge_agreement

pytestmark = pytest.mark.django_db


class LengthJudge:
    """A stand-in judge whose reward is the answer's length in characters: tests choose who
    it prefers by writing longer answers."""

    model = tokenizer = None

    def score(self, pairs):
        return [float(len(a if isinstance(a, str) else a[-1]["content"])) for _, a in pairs]


@pytest.fixture
def length_judge(monkeypatch, judge):
    monkeypatch.setattr(judges, "judge_load", lambda _judge: LengthJudge())
    return judge


@pytest.fixture
def pair(tiny_contestant, tiny_model_dir):
    other = arena_services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    return tiny_contestant, other


def _battle(pair, answer_a: str, answer_b: str, winner: str = "", failed: bool = False):
    a, b = pair
    messages = [{"role": "user", "content": "what is the capital of france"}]

    def generation(contestant, text, status=GenerationStatus.SUCCEEDED):
        return Generation.objects.create(
            contestant=contestant, messages=messages, output=text, status=status
        )

    battle = Battle.objects.create(contestant_a=a, contestant_b=b, winner=winner)
    BattleTurn.objects.create(
        battle=battle,
        index=0,
        user_message=messages[0]["content"],
        generation_a=generation(a, answer_a),
        generation_b=generation(b, answer_b, GenerationStatus.FAILED if failed else "succeeded"),
    )
    return battle


def test_a_judge_scores_both_sides_of_finished_battles_once(judge, pair):
    scored = _battle(pair, "paris is the capital", "the quick brown fox", winner="model_a")
    _battle(pair, "paris", "", failed=True)
    assert judges.judge_score_battles(judge=judge) == 1
    scores = JudgeScore.objects.filter(judge=judge)
    assert sorted(scores.values_list("battle_id", "side")) == [(scored.pk, "a"), (scored.pk, "b")]
    assert all(isinstance(s, float) for s in scores.values_list("score", flat=True))
    assert judges.judge_score_battles(judge=judge) == 0  # nothing left unscored
    assert scores.count() == 2


def test_agreement_is_the_share_of_voted_battles_where_the_judge_prefers_the_winner(
    length_judge, pair
):
    _battle(pair, "a long and helpful answer", "short", winner="model_a")  # agrees
    _battle(pair, "a long and helpful answer", "short", winner="model_b")  # disagrees
    _battle(pair, "same", "same", winner="model_a")  # an even score counts half
    _battle(pair, "long answer here", "short", winner="tie")  # no preference: left out
    _battle(pair, "long answer here", "short")  # not voted yet
    judges.judge_score_battles(judge=length_judge)
    agreement = judge_agreement(judge=length_judge)
    assert agreement["compared"] == 3 and agreement["agreement"] == pytest.approx(1.5 / 3)
    assert agreement["ties_or_both_bad"] == 1 and agreement["unvoted"] == 1
    assert agreement["battles_scored"] == 5


def test_a_judge_scores_every_finished_candidate_of_a_project(judge):
    project = ProjectFactory()
    prompt = PromptFactory(project=project)
    answers = [CompletionFactory(prompt=prompt, text=t) for t in ("two plus two", "is four")]
    CompletionFactory(prompt=prompt, text="never written", is_ready=False)
    CompletionFactory(prompt=PromptFactory(), text="another project")
    assert judges.judge_score_candidates(judge=judge, project=project) == 2
    assert set(JudgeScore.objects.values_list("completion_id", flat=True)) == {
        a.pk for a in answers
    }
    assert judges.judge_score_candidates(judge=judge, project=project) == 0


def _ranking(project, annotator, best, worst, status=ReviewStatus.PENDING, **fields):
    return Ranking.objects.create(
        project=project,
        prompt=best.prompt,
        annotator=annotator,
        groups=[[best.pk], [worst.pk]],
        display_order=[worst.pk, best.pk],
        review_status=status,
        **fields,
    )


def test_rankings_the_judge_strongly_disagrees_with_go_back_to_review_once(
    length_judge, annotator, reviewer
):
    project = ProjectFactory()
    prompt = PromptFactory(project=project)
    short, long_, longer = (
        CompletionFactory(prompt=prompt, text=t) for t in ("ok", "a long answer", "a long answer!")
    )
    against = _ranking(project, annotator, short, long_, status=ReviewStatus.ACCEPTED)
    agrees = _ranking(project, annotator, long_, short)
    slightly = _ranking(project, annotator, long_, longer)  # margin 1 < threshold
    imported = _ranking(project, None, short, long_, origin=RankingOrigin.IMPORT)

    result = judges.judge_flag_rankings(judge=length_judge, project=project, threshold=5)
    assert result == {"scored": 3, "compared": 3, "flagged": 1, "threshold": 5}
    against.refresh_from_db()
    assert against.review_status == ReviewStatus.PENDING
    assert against.review_comment.startswith("Flagged by judge tiny-judge: margin 11.00")
    assert "prefers answer A over B" in against.review_comment  # the letters the annotator saw
    for ranking in (agrees, slightly, imported):
        ranking.refresh_from_db()
        assert "Flagged" not in ranking.review_comment
    queue = annotation_selectors.review_queue(project=project, reviewer=reviewer)
    assert against in queue["rankings"]

    # A reviewer accepts it again: the same judge does not flag it a second time.
    Ranking.objects.filter(pk=against.pk).update(review_status=ReviewStatus.ACCEPTED)
    again = judges.judge_flag_rankings(judge=length_judge, project=project, threshold=5)
    assert again["flagged"] == 0 and JudgeFlag.objects.count() == 1
    assert Ranking.objects.get(pk=against.pk).review_status == ReviewStatus.ACCEPTED


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        ("score_candidates", {}, "Choose the project"),
        ("flag_rankings", {"threshold": 0}, "positive reward margin"),
        ("astrology", {}, "Unknown job"),
    ],
)
def test_invalid_judge_jobs_are_refused_before_anything_is_queued(judge, kind, extra, message):
    project = None if kind == "score_candidates" else ProjectFactory()
    with pytest.raises(judges.JudgeError, match=message):
        judges.judge_job_create(judge=judge, kind=kind, project=project, **extra)
    assert JudgeJob.objects.count() == 0


def test_an_inactive_judge_takes_no_jobs(judge):
    judge.is_active = False
    with pytest.raises(judges.JudgeError, match="not active"):
        judges.judge_job_create(judge=judge, kind="score_battles")


def test_a_job_is_queued_after_commit_runs_once_and_records_its_result(
    judge, pair, django_capture_on_commit_callbacks
):
    _battle(pair, "paris is the capital", "yes", winner="model_b")
    with django_capture_on_commit_callbacks() as callbacks:
        job = judges.judge_job_create(judge=judge, kind="score_battles")
    assert job.status == JobStatus.QUEUED and len(callbacks) == 1
    judges.judge_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result == {"battles": 1}
    assert job.finished_at is not None
    assert judges.judge_job_execute(job_id=job.pk) is None  # a redelivered task does nothing


def test_a_job_whose_judge_cannot_load_fails_with_a_reason(judge, tmp_path):
    RewardModel.objects.filter(pk=judge.pk).update(path=str(tmp_path / "gone"))
    job = judges.judge_job_create(judge=judge, kind="score_battles")
    judges.judge_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "Could not load judge tiny-judge" in job.error


def test_lost_jobs_are_sent_again_and_jobs_of_dead_workers_fail(judge, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from core import jobs

    sent = []
    monkeypatch.setattr(jobs, "publish", lambda *args, **_: sent.append(args) or True)
    lost = judges.judge_job_create(judge=judge, kind="score_battles")
    fresh = judges.judge_job_create(judge=judge, kind="score_battles")
    stuck = judges.judge_job_create(judge=judge, kind="score_battles")
    hour_ago = timezone.now() - timedelta(hours=1)
    JudgeJob.objects.filter(pk=lost.pk).update(enqueued_at=hour_ago)
    JudgeJob.objects.filter(pk=stuck.pk).update(status=JobStatus.RUNNING, heartbeat_at=hour_ago)
    assert jobs.jobs_sweep()["training.judgejob"] == {"reaped": 1, "resent": 0}
    stuck.refresh_from_db()
    assert stuck.status == JobStatus.FAILED and "worker stopped" in stuck.error
    # Once the gpu queue has been idle for the resend period, only the lost job is sent again;
    # the fresh one is still on its way.
    later = timezone.now() + timedelta(minutes=10)
    JudgeJob.objects.filter(pk=fresh.pk).update(enqueued_at=later - timedelta(seconds=1))
    assert jobs.jobs_sweep(now=later)["training.judgejob"] == {"reaped": 0, "resent": 1}
    assert sent == [("training.tasks.judge_job_execute", lost.pk)]
    assert JudgeJob.objects.get(pk=fresh.pk).status == JobStatus.QUEUED


def test_best_of_n_returns_the_samples_best_first(judge, tiny_contestant):
    result = judges.judge_best_of_n(
        judge=judge, contestant=tiny_contestant, prompt="two plus two", n=3, seed=1
    )
    scores = [c["score"] for c in result["candidates"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert result["best"]["score"] == scores[0]
    assert result["best"]["text"] == result["candidates"][0]["text"]
    assert result["temperature"] == 0.7  # the contestant decodes greedily; best-of-n samples


def test_best_of_n_keeps_its_judge_and_policy_loaded_between_requests(
    judge, tiny_contestant, monkeypatch
):
    loads = []
    for cache in (judges._best_of_n_judges, judges._best_of_n_policies):
        cache.clear()
        load = cache.load
        monkeypatch.setattr(cache, "load", lambda path, load=load: loads.append(path) or load(path))
    ask = {"judge": judge, "contestant": tiny_contestant, "prompt": "two plus two", "n": 2}
    first = judges.judge_best_of_n(**ask, seed=3)
    assert len(loads) == 2  # the judge and the policy
    assert judges.judge_best_of_n(**ask, seed=3) == first  # the same samples, from memory
    assert len(loads) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n": 17}, "n must be between 1 and 16"),
        ({"temperature": 0.0}, "temperature must be above 0"),
        ({"prompt": "  "}, "Write a prompt"),
    ],
)
def test_best_of_n_refuses_bad_input(judge, tiny_contestant, change, message):
    values = {"judge": judge, "contestant": tiny_contestant, "prompt": "hi", "n": 2} | change
    with pytest.raises(judges.JudgeError, match=message):
        judges.judge_best_of_n(**values)


def test_a_judge_from_a_reward_run_scores_battles(tiny_contestant, pair):
    pairs = _snapshot("preference", [{"prompt": "q", "chosen": "paris", "rejected": "fox"}] * 8)
    run = _run("reward", tiny_contestant, pairs)
    services.training_run_execute(run_id=run.pk)
    trained = RewardModel.objects.get(run=run)
    _battle(pair, "paris", "fox", winner="model_a")
    assert judges.judge_score_battles(judge=trained) == 1


# --- Pages and API ------------------------------------------------------------------------------
def test_judge_page_shows_agreement_and_only_admins_get_the_actions(
    researcher_client, admin_client_, length_judge, pair
):
    _battle(pair, "a long and helpful answer", "short", winner="model_a")
    judges.judge_score_battles(judge=length_judge)
    page = researcher_client.get(f"/training/judges/{length_judge.pk}/").content.decode()
    assert "<strong>100%</strong> of 1 voted battle" in page and "Best of n" in page
    assert "Score arena battles" not in page
    admin_page = admin_client_.get(f"/training/judges/{length_judge.pk}/").content.decode()
    assert "Score arena battles" in admin_page and "Flag rankings" in admin_page
    home = researcher_client.get("/training/").content.decode()
    assert f'href="/training/judges/{length_judge.pk}/"' in home


def test_flagged_rankings_link_to_the_review_queue_only_for_those_who_can_open_it(
    length_judge, annotator, researcher_client, admin_client_
):
    project = ProjectFactory()
    prompt = PromptFactory(project=project)
    short, long_ = (CompletionFactory(prompt=prompt, text=t) for t in ("ok", "a long answer"))
    _ranking(project, annotator, short, long_, status=ReviewStatus.ACCEPTED)
    assert judges.judge_flag_rankings(judge=length_judge, project=project, threshold=5)["flagged"]
    url = f"/training/judges/{length_judge.pk}/"
    review = f'href="/annotation/projects/{project.slug}/review/"'
    overview = f'href="/annotation/projects/{project.slug}/"'
    page = researcher_client.get(url).content.decode()
    assert "Flagged rankings (1)" in page and overview in page and review not in page
    assert review in admin_client_.get(url).content.decode()


def test_admin_starts_scoring_from_the_page_and_bad_input_gets_a_message(
    admin_client_, researcher_client, judge, django_capture_on_commit_callbacks
):
    url = f"/training/judges/{judge.pk}/jobs/"
    assert researcher_client.post(url, {"kind": "score_battles"}).status_code == 403
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client_.post(url, {"kind": "score_battles"})
    assert response.status_code == 302 and len(callbacks) == 1
    refused = admin_client_.post(url, {"kind": "flag_rankings"})
    assert refused.status_code == 400 and "Choose the project" in refused.content.decode()
    assert JudgeJob.objects.count() == 1


def test_best_of_n_is_queued_for_the_gpu_worker_and_the_fragment_polls_until_the_samples(
    researcher_client, researcher, judge, tiny_contestant
):
    url = f"/training/judges/{judge.pk}/best-of-n/"
    data = {"contestant": "tiny-llama", "prompt": "two plus two", "n": 2, "seed": 0}
    fragment = researcher_client.post(url, data, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    job = JudgeJob.objects.get(kind="best_of_n")
    assert job.status == JobStatus.QUEUED and job.created_by == researcher
    assert job.params == {
        "prompt": "two plus two",
        "n": 2,
        "temperature": None,
        "max_new_tokens": None,
        "seed": 0,
    }
    poll = f"/training/judges/{judge.pk}/best-of-n/{job.pk}/"
    assert fragment.status_code == 202 and f'hx-get="{poll}"' in html and "<html" not in html
    assert fragment["HX-Trigger"] == "judge-jobs-changed"  # the jobs table shows it at once
    again = researcher_client.post(url, data, headers={"HX-Request": "true"})
    assert again.status_code == 400 and "still running" in again.content.decode()

    judges.judge_job_execute(job_id=job.pk)
    finished = researcher_client.get(poll, headers={"HX-Request": "true"})
    done = finished.content.decode()
    assert done.count("<li") == 2 and "best" in done and "hx-get" not in done
    assert finished["HX-Trigger"] == "judge-jobs-changed"
    page = researcher_client.get(poll).content.decode()  # the page, for a link or no script
    assert "<html" in page and page.count('class="best"') == 1
    bad = researcher_client.post(url, {**data, "n": 40}, headers={"HX-Request": "true"})
    assert bad.status_code == 400 and "less than or equal to 16" in bad.content.decode()


def test_best_of_n_without_script_goes_to_the_page_of_its_job(
    researcher_client, judge, tiny_contestant
):
    url = f"/training/judges/{judge.pk}/best-of-n/"
    response = researcher_client.post(url, {"contestant": "tiny-llama", "prompt": "hi", "n": 2})
    job = JudgeJob.objects.get(kind="best_of_n")
    assert response.status_code == 302
    assert response["Location"] == f"/training/judges/{judge.pk}/best-of-n/{job.pk}/"
    assert "Queued" in researcher_client.get(response["Location"]).content.decode()


def test_a_best_of_n_job_whose_policy_cannot_load_says_why(judge, tiny_contestant, tmp_path):
    job = judges.judge_best_of_n_start(
        judge=judge, contestant=tiny_contestant, prompt="hi", n=2, seed=0
    )
    tiny_contestant.model_path = str(tmp_path / "gone")
    tiny_contestant.save(update_fields=["model_path"])
    judges.judge_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "tiny" in job.error.lower()


def test_api_lists_judges_starts_jobs_and_answers_best_of_n(
    api_client, researcher, admin_user, judge, tiny_contestant
):
    api_client.force_authenticate(researcher)
    assert api_client.get("/api/training/judges/").json()["results"][0]["name"] == "tiny-judge"
    detail = api_client.get(f"/api/training/judges/{judge.pk}/").json()
    assert detail["agreement"]["compared"] == 0 and detail["jobs"] == []
    jobs_url = f"/api/training/judges/{judge.pk}/jobs/"
    assert api_client.post(jobs_url, {"kind": "score_battles"}).status_code == 403
    best = api_client.post(
        f"/api/training/judges/{judge.pk}/best-of-n/",
        {"contestant": "tiny-llama", "prompt": "paris", "n": 2},
        format="json",
    )
    assert best.status_code == 202 and best.json()["status"] == "queued", best.content
    assert best.json()["contestant"] == "tiny-llama" and best.json()["params"]["n"] == 2
    judges.judge_job_execute(job_id=best.json()["id"])
    done = api_client.get(f"/api/training/judges/{judge.pk}/jobs/{best.json()['id']}/").json()
    assert done["status"] == "succeeded" and len(done["result"]["candidates"]) == 2
    assert api_client.get(f"/api/training/judges/{judge.pk}/jobs/999999/").status_code == 404
    refused = api_client.post(
        f"/api/training/judges/{judge.pk}/best-of-n/",
        {"contestant": "tiny-llama", "prompt": "paris", "temperature": 0},
        format="json",
    )
    assert refused.status_code == 400 and "temperature" in refused.json()["detail"]
    api_client.force_authenticate(admin_user)
    queued = api_client.post(jobs_url, {"kind": "score_battles"}, format="json")
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    bad = api_client.post(jobs_url, {"kind": "score_candidates"}, format="json")
    assert bad.status_code == 400 and "Choose the project" in bad.json()["detail"]
    unknown = api_client.post(jobs_url, {"kind": "flag_rankings", "project": "nope"}, format="json")
    assert unknown.status_code == 400 and "project" in unknown.json()
