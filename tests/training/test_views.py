"""The training pages and API: start (admins), watch (researchers), cancel and resume."""

import pytest

from tests.training.test_runs import SMALL, _run, _snapshot
from training.models import RunStatus, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def pairs():
    return _snapshot("preference", [{"prompt": "a", "chosen": "b", "rejected": "c"}] * 4)


def test_admin_starts_a_run_from_the_form(
    admin_client_, tiny_contestant, pairs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client_.post(
            "/training/runs/new/",
            {
                "kind": "dpo",
                "loss_type": "sigmoid",
                "base_model": "tiny-llama",
                "snapshot": pairs.pk,
                "hyperparameters": '{"learning_rate": 1e-6}',
            },
        )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/runs/{run.pk}/"
    assert run.hyperparameters == {"learning_rate": 1e-6} and len(callbacks) == 1


def test_the_form_has_typed_settings_per_kind_with_their_defaults(admin_client_, pairs):
    html = admin_client_.get("/training/runs/new/").content.decode()
    assert 'name="hp_learning_rate"' in html and 'step="any"' in html
    assert 'data-defaults="{&quot;sft&quot;: 2e-05, &quot;reward&quot;: 1e-05' in html
    assert 'name="hp_eval_fraction"' in html and 'data-kinds="reward"' in html
    assert "<summary>Advanced settings</summary>" in html and "js/run-form.js" in html


def test_typed_settings_start_a_run_and_errors_show_at_their_field(
    admin_client_, tiny_contestant, pairs, django_capture_on_commit_callbacks
):
    form = {"kind": "dpo", "loss_type": "sigmoid", "base_model": "tiny-llama", "snapshot": pairs.pk}
    bad = admin_client_.post(
        "/training/runs/new/",
        {**form, "hp_learning_rate": "abc", "hp_num_epochs": "0", "hp_eval_fraction": "0.2"},
    )
    html = bad.content.decode()
    assert bad.status_code == 400 and TrainingRun.objects.count() == 0
    assert "Enter a number." in html  # learning rate, at its field
    assert "Must be at least 1 and at most 100; got 0." in html
    assert "Not a setting of a dpo run." in html
    assert 'name="hp_num_epochs" value="0"' in html  # what was typed is kept
    with django_capture_on_commit_callbacks():
        ok = admin_client_.post(
            "/training/runs/new/",
            {**form, "hp_learning_rate": "2e-6", "hp_num_epochs": "3", "hp_shuffle": "false"},
        )
    run = TrainingRun.objects.get()
    assert ok.status_code == 302
    assert run.hyperparameters == {"learning_rate": 2e-6, "num_epochs": 3, "shuffle": False}


def test_the_form_refuses_bad_json_and_invalid_combinations(admin_client_, tiny_contestant, pairs):
    bad_json = admin_client_.post(
        "/training/runs/new/",
        {
            "kind": "dpo",
            "base_model": "tiny-llama",
            "snapshot": pairs.pk,
            "hyperparameters": "{learning_rate: 1}",
        },
    )
    assert bad_json.status_code == 400 and "Not valid JSON" in bad_json.content.decode()
    wrong = admin_client_.post(
        "/training/runs/new/",
        {
            "kind": "sft",
            "base_model": "tiny-llama",
            "snapshot": pairs.pk,
            "hyperparameters": "{}",
        },
    )
    assert "needs a sft snapshot" in wrong.content.decode()
    assert TrainingRun.objects.count() == 0


def test_run_page_shows_progress_charts_and_polls_while_active(
    researcher_client, tiny_contestant, pairs
):
    run = _run("dpo", tiny_contestant, pairs)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        step=2,
        total_steps=4,
        metrics=[{"step": 1, "loss": 0.69}, {"step": 2, "loss": 0.61}],
        log="step 2/4 loss=0.61",
    )
    html = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert 'value="50"' in html and 'id="run-charts-data"' in html and "step 2/4" in html
    assert 'hx-trigger="every 1s"' in html
    assert "Cancel" not in html  # researchers watch; admins control


def test_run_page_shows_the_reference_pass_before_the_first_step(
    researcher_client, tiny_contestant, pairs
):
    run = _run("dpo", tiny_contestant, pairs)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        progress={"phase": "reference pass", "done": 3, "total": 12, "unit": "batches"},
    )
    html = researcher_client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "Reference pass: batch 3 of 12, before step 1" in html
    assert 'max="12" value="3"' in html and "Step 0 of" not in html


def test_admin_cancels_a_queued_run_and_resumes_it(
    admin_client_, tiny_contestant, pairs, django_capture_on_commit_callbacks
):
    run = _run("dpo", tiny_contestant, pairs)
    admin_client_.post(f"/training/runs/{run.pk}/cancel/")
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    with django_capture_on_commit_callbacks() as callbacks:
        admin_client_.post(f"/training/runs/{run.pk}/resume/")
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.QUEUED and len(callbacks) == 1


def test_api_start_watch_and_refuse(api_client, admin_user, researcher, tiny_contestant, pairs):
    api_client.force_authenticate(researcher)
    payload = {
        "kind": "dpo",
        "base_model": "tiny-llama",
        "snapshot": pairs.pk,
        "hyperparameters": SMALL,
    }
    assert api_client.post("/api/training/runs/", payload, format="json").status_code == 403
    api_client.force_authenticate(admin_user)
    created = api_client.post("/api/training/runs/", payload, format="json")
    assert created.status_code == 202 and created.json()["status"] == "queued"
    refused = api_client.post(
        "/api/training/runs/", {**payload, "loss_type": "nope"}, format="json"
    )
    assert refused.status_code == 400 and "Unknown loss" in refused.json()["detail"]
    TrainingRun.objects.filter(pk=created.json()["id"]).update(artifact_dir="/srv/runs/1")
    run_url = f"/api/training/runs/{created.json()['id']}/"
    assert api_client.get(run_url).json()["artifact_dir"] == "/srv/runs/1"  # admins see it
    api_client.force_authenticate(researcher)
    seen = api_client.get(run_url).json()
    assert seen["kind"] == "dpo" and seen["artifact_dir"] is None  # no server paths
    listed = api_client.get("/api/training/runs/").json()["results"]
    assert [run["artifact_dir"] for run in listed] == [None]
