"""An evaluation report researchers can trust: the judge's held-out accuracy with its 95%
interval wherever it is offered, no judge trained on the run's prompts, report prompts disjoint
from the run's training prompts, and the win rate with its interval and LC win rate."""

from html import unescape

import pytest

from evaluation.suites import PromptRow, suite_create
from tests.training.test_runs import SMALL, WORDS, _snapshot
from training import reports, services
from training.forms import RunForm
from training.heldout import heldout_fields
from training.models import ReportStatus, RewardModel, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

NEW_PROMPTS = ["name a red fruit", "count to three", "say hello politely"]


def _pairs(prompts, n=8):
    return _snapshot(
        "preference",
        [
            {"prompt": prompts[i % len(prompts)], "chosen": WORDS[1], "rejected": WORDS[2]}
            for i in range(n)
        ],
    )


@pytest.fixture
def train_pairs():
    return _pairs(WORDS[:4])


@pytest.fixture
def suite(tiny_contestant):
    # Two prompts the run trains on (different spacing and case: same hash) and three others.
    rows = [PromptRow("The  quick brown FOX"), PromptRow(WORDS[1])]
    rows += [PromptRow(p) for p in NEW_PROMPTS]
    return suite_create(name="heldout-suite", baseline=tiny_contestant, prompts=rows)


def _judge_trained_on(snapshot, tiny_contestant, tiny_judge_dir, name="other-judge", **fields):
    run = TrainingRun.objects.create(
        kind="reward", base_model=tiny_contestant, snapshot=snapshot, status=RunStatus.SUCCEEDED
    )
    return RewardModel.objects.create(name=name, run=run, path=str(tiny_judge_dir), **fields)


def _dpo(tiny_contestant, snapshot, **kwargs):
    return services.training_run_create(
        kind="dpo",
        loss_type="sigmoid",
        base_model=tiny_contestant,
        snapshot=snapshot,
        hyperparameters=SMALL,
        **kwargs,
    )


def test_heldout_fields_come_from_the_metrics_reward_training_logs():
    summary = {"eval/accuracy": 0.58, "eval/accuracy_low": 0.53, "eval/accuracy_high": 0.63}
    fields = heldout_fields({**summary, "eval/pairs": 400.0})
    assert fields == {
        "heldout_accuracy": 0.58,
        "heldout_accuracy_low": 0.53,
        "heldout_accuracy_high": 0.63,
        "heldout_pairs": 400,
    }
    wilson = heldout_fields({"eval/accuracy": 0.5, "eval/pairs": 100.0})
    assert wilson["heldout_accuracy_low"] == pytest.approx(0.4038, abs=1e-3)
    assert heldout_fields({"loss": 0.1})["heldout_accuracy"] is None


def test_a_reward_run_stores_its_heldout_accuracy_interval_and_pairs(
    tiny_contestant, train_pairs, researcher_client
):
    run = services.training_run_create(
        kind="reward", base_model=tiny_contestant, snapshot=train_pairs, hyperparameters=SMALL
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    judge = RewardModel.objects.get(run=run)
    assert judge.heldout_accuracy == run.summary["eval/accuracy"]
    assert judge.heldout_pairs == int(run.summary["eval/pairs"]) >= 1
    assert judge.heldout_accuracy_low <= judge.heldout_accuracy <= judge.heldout_accuracy_high
    # A handful of held-out pairs: the interval includes chance, and the run page says so.
    assert "not distinguishable from chance" in judge.heldout_warning
    page = unescape(researcher_client.get(f"/training/runs/{run.pk}/").content.decode())
    assert judge.heldout_text in page and "not distinguishable from chance" in page


def test_judges_are_offered_with_accuracy_interval_pairs_and_a_warning(
    tiny_contestant, tiny_judge_dir, train_pairs, admin_client_
):
    from evaluation.forms import EvaluationStartForm

    good = RewardModel.objects.create(
        name="rm-x",
        path=str(tiny_judge_dir),
        heldout_accuracy=0.58,
        heldout_accuracy_low=0.53,
        heldout_accuracy_high=0.63,
        heldout_pairs=400,
    )
    chance = RewardModel.objects.create(
        name="rm-coin",
        path=str(tiny_judge_dir),
        heldout_accuracy=0.52,
        heldout_accuracy_low=0.47,
        heldout_accuracy_high=0.57,
        heldout_pairs=400,
    )
    unknown = RewardModel.objects.create(name="rm-unknown", path=str(tiny_judge_dir))
    assert good.choice_label == "rm-x · held-out accuracy 0.58 [0.53, 0.63] on 400 pairs"
    assert good.heldout_warning == ""
    assert "includes 0.5" in chance.heldout_warning and "⚠" in chance.choice_label
    assert "no known held-out accuracy" in unknown.heldout_warning
    assert "⚠" in unknown.choice_label
    for form, field in ((RunForm(), "eval_judge"), (EvaluationStartForm(), "reward_model")):
        labels = dict(form.fields[field].choices)
        assert labels["rm-x"] == good.choice_label and labels["rm-coin"] == chance.choice_label
    page = admin_client_.get("/training/runs/new/").content.decode()
    assert "rm-x · held-out accuracy 0.58 [0.53, 0.63] on 400 pairs" in page


def test_a_judge_trained_on_the_runs_prompts_is_refused_everywhere(
    tiny_contestant, tiny_judge_dir, train_pairs, suite, api_client, admin_user, admin_client_
):
    # Its snapshot shares two prompts (one written differently) with the run's snapshot.
    shared = _pairs([WORDS[0].upper(), WORDS[3], *NEW_PROMPTS[:1]])
    judge = _judge_trained_on(shared, tiny_contestant, tiny_judge_dir)
    message = f"shares 2 prompts with this run's dataset snapshot #{train_pairs.pk}"
    with pytest.raises(services.RunError, match=message):
        _dpo(tiny_contestant, train_pairs, eval_judge=judge, eval_suite=suite)
    api_client.force_authenticate(admin_user)
    payload = {
        "kind": "dpo",
        "base_model": "tiny-llama",
        "snapshot": train_pairs.pk,
        "eval_judge": judge.name,
        "eval_suite": suite.name,
    }
    answer = api_client.post("/api/training/runs/", payload, format="json")
    assert answer.status_code == 400 and message in answer.json()["detail"]
    form = admin_client_.post("/training/runs/new/", {**payload, "hyperparameters": "{}"})
    assert form.status_code == 400 and message in unescape(form.content.decode())
    # The same snapshot: every prompt is shared.
    same = _judge_trained_on(train_pairs, tiny_contestant, tiny_judge_dir, name="same-judge")
    with pytest.raises(services.RunError, match="shares 4 prompts"):
        _dpo(tiny_contestant, train_pairs, eval_judge=same, eval_suite=suite)
    assert TrainingRun.objects.filter(kind="dpo").count() == 0


def test_a_report_needs_a_suite_with_prompts_the_run_does_not_train_on(
    tiny_contestant, judge, train_pairs
):
    with pytest.raises(services.RunError, match="needs both an evaluation judge"):
        _dpo(tiny_contestant, train_pairs, eval_judge=judge)
    covered = suite_create(
        name="covered", baseline=tiny_contestant, prompts=[PromptRow(w) for w in WORDS[:4]]
    )
    with pytest.raises(services.RunError, match="All 4 prompts of suite covered"):
        _dpo(tiny_contestant, train_pairs, eval_judge=judge, eval_suite=covered)


def test_the_report_is_on_disjoint_prompts_with_a_win_rate_interval_and_lc(
    tiny_contestant, tiny_judge_dir, train_pairs, suite, researcher_client, api_client, researcher
):
    other = _pairs(["an unrelated prompt", "another one"])
    judge = _judge_trained_on(
        other,
        tiny_contestant,
        tiny_judge_dir,
        heldout_accuracy=0.7,
        heldout_accuracy_low=0.65,
        heldout_accuracy_high=0.75,
        heldout_pairs=300,
    )
    run = _dpo(tiny_contestant, train_pairs, eval_judge=judge, eval_suite=suite)
    services.training_run_execute(run_id=run.pk)
    reports.training_run_report(report_id=run.evaluation.pk)
    run = TrainingRun.objects.get(pk=run.pk)
    r = run.report
    assert run.report_status == ReportStatus.READY, r
    assert r["prompts"] == r["n"] == 3 and r["prompts_dropped"] == 2 and r["suite_prompts"] == 5
    assert {e["prompt"] for e in r["examples"]} == set(NEW_PROMPTS)
    assert r["wins"] + r["ties"] + r["losses"] == 3
    assert r["win_rate_low"] <= r["win_rate"] <= r["win_rate_high"]
    assert r["significant"] == (r["win_rate_low"] > 50 or r["win_rate_high"] < 50)
    assert "lc_win_rate" in r and r["judge_training_data"] == "disjoint"
    assert r["judge_heldout"]["text"] == "held-out accuracy 0.70 [0.65, 0.75] on 300 pairs"
    page = unescape(researcher_client.get(f"/training/runs/{run.pk}/").content.decode())
    assert "n = 3 prompts" in page and "2 of the suite's 5 prompts were dropped" in page
    assert ("not significant" in page) != r["significant"]
    assert "length-controlled win rate" in page and "shares no prompt" in page
    api_client.force_authenticate(researcher)
    data = api_client.get(f"/api/training/runs/{run.pk}/").json()
    assert data["eval_suite"] == "heldout-suite"
    heldout = data["eval_judge_heldout"]
    assert heldout["pairs"] == 300 and heldout["warning"] == ""


def test_a_judge_of_unknown_training_data_gets_a_warning_not_a_held_out_claim(
    tiny_contestant, judge, train_pairs, suite, researcher_client
):
    run = _dpo(tiny_contestant, train_pairs, eval_judge=judge, eval_suite=suite)
    services.training_run_execute(run_id=run.pk)
    reports.training_run_report(report_id=run.evaluation.pk)
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.report["judge_training_data"] == "unknown"
    assert "overlaps this run's prompts is unknown" in run.report["judge_warning"]
    page = unescape(researcher_client.get(f"/training/runs/{run.pk}/").content.decode())
    assert "is unknown" in page and "no known held-out accuracy" in page
    assert "held-out reward model" not in page and "shares no prompt" not in page


def test_starting_an_evaluation_with_a_judge_not_shown_to_beat_chance_warns(
    tiny_contestant, judge, suite, researcher_client, django_capture_on_commit_callbacks
):
    from arena.services import contestant_create

    other = contestant_create(
        name="tiny-other", display_name="Tiny other", backend="local", model_path="/nowhere"
    )
    with django_capture_on_commit_callbacks():
        page = researcher_client.post(
            f"/evaluation/suites/{suite.pk}/evaluate/",
            {
                "contestants": [other.name],
                "reward_model": judge.name,
                "template_version": "alpaca_eval_clf_v1",
            },
            follow=True,
        )
    text = unescape(page.content.decode())
    assert "queued" in text and "has no known held-out accuracy" in text


def test_prompt_hashes_match_across_text_chat_and_system_prompts():
    from evaluation.suites import prompt_hash
    from training.heldout import hash_of_prompt, row_prompt

    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a  red fruit"},
        {"role": "assistant", "content": "apple"},
    ]
    assert hash_of_prompt(row_prompt({"chosen": chat})) == prompt_hash("name a red fruit")
    assert hash_of_prompt(" name a red FRUIT ") == prompt_hash("name a red fruit")
    assert hash_of_prompt(row_prompt({"prompt": "", "completion": "x"})) is None
