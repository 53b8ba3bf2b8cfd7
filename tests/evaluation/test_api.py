"""The evaluation API: suites, runs, results and judgments, CSV export and AlpacaEval imports."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluation.models import EvaluationRun, Suite

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_client, researcher):
    api_client.force_authenticate(researcher)
    return api_client


def test_annotators_cannot_use_the_evaluation_api(api_client, annotator, suite):
    api_client.force_authenticate(annotator)
    assert api_client.get("/api/evaluation/suites/").status_code == 403


def test_a_suite_is_created_from_a_prompt_list_and_listed_with_its_hash(api, baseline):
    body = {"name": "api", "baseline": "tiny-base", "prompts": [{"instruction": "say hi"}]}
    created = api.post("/api/evaluation/suites/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["prompt_count"] == 1 and len(created.json()["content_hash"]) == 64
    listed = api.get("/api/evaluation/suites/").json()
    names = [s["name"] for s in listed.get("results", listed)]
    assert names == ["api"]


def test_a_suite_upload_with_a_bad_file_gets_a_400_with_the_reason(api, baseline):
    upload = SimpleUploadedFile("alpaca_eval.json", b'["just text"]')
    response = api.post(
        "/api/evaluation/suites/",
        {"name": "bad", "baseline": "tiny-base", "file": upload},
        format="multipart",
    )
    assert response.status_code == 400
    assert "Entry 1 has no `instruction` text" in response.json()["detail"]
    assert not Suite.objects.filter(name="bad").exists()


def test_an_evaluation_run_is_started_and_refused_with_reasons(api, suite, tiny_contestant, judge):
    body = {"suite": "mini", "contestants": ["tiny-llama"], "reward_model": "tiny-judge"}
    started = api.post("/api/evaluation/runs/", body, format="json")
    assert started.status_code == 202
    assert started.json()["judge_label"] == "reward:tiny-judge"
    assert started.json()["status"] == "queued"
    refused = api.post(
        "/api/evaluation/runs/", {**body, "contestants": ["tiny-base"]}, format="json"
    )
    assert refused.status_code == 400 and "baseline" in refused.json()["detail"]
    no_judge = api.post("/api/evaluation/runs/", {"suite": "mini"}, format="json")
    assert no_judge.status_code == 400
    assert EvaluationRun.objects.count() == 1


def test_results_leaderboard_and_judgments_are_read_back(api, judged):
    board = api.get(f"/api/evaluation/suites/{judged.suite_id}/leaderboard/").json()
    assert board["judge"] == "reward:hand"
    assert board["rows"][0]["generator"] == "tiny-llama"
    assert board["rows"][0]["win_rate"] == pytest.approx(50.0)
    results = api.get("/api/evaluation/results/", {"suite": "mini"}).json()
    assert [r["n_total"] for r in results.get("results", results)] == [3]
    judgments = api.get(f"/api/evaluation/results/{judged.pk}/judgments/").json()
    rows = judgments.get("results", judgments)
    assert [j["preference"] for j in rows] == [2.0, 1.0, 1.5]
    assert rows[0]["baseline_output"] == "baseline answer 0"


def test_the_csv_export_is_alpaca_evals_leaderboard(api, judged):
    response = api.get(f"/api/evaluation/suites/{judged.suite_id}/export/")
    assert response.status_code == 200
    assert response.content.decode().splitlines()[1].split(",")[:2] == ["tiny-llama", "50.0"]


def _file(name, records):
    return SimpleUploadedFile(name, json.dumps(records).encode())


def test_published_annotations_are_imported_beside_our_models(api, judged, suite):
    records = [
        {
            "instruction": p.instruction,
            "output_1": "base",
            "generator_1": "tiny-base",
            "output_2": "published " * (k + 1),
            "generator_2": "gpt-published",
            "preference": pref,
            "annotator": "weighted_alpaca_eval_gpt4_turbo",
        }
        for k, (p, pref) in enumerate(zip(suite.prompts.all(), [1.9, 1.8, 1.2], strict=True))
    ]
    records.append({**records[0], "instruction": "not in the suite"})
    response = api.post(
        f"/api/evaluation/suites/{suite.pk}/import/",
        {"kind": "annotations", "file": _file("annotations.json", records)},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert response.json()["imported"] == {"gpt-published": 3}
    label = "import:weighted_alpaca_eval_gpt4_turbo"
    board = api.get(f"/api/evaluation/suites/{suite.pk}/leaderboard/", {"judge": label}).json()
    row = board["rows"][0]
    assert row["generator"] == "gpt-published" and row["imported"] is True
    assert row["win_rate"] == pytest.approx((0.9 + 0.8 + 0.2) / 3 * 100)


def test_published_model_outputs_are_imported_and_refused_when_nothing_matches(api, suite):
    records = [{"instruction": "two plus two", "output": "four", "generator": "published-x"}]
    ok = api.post(
        f"/api/evaluation/suites/{suite.pk}/import/",
        {"kind": "model_outputs", "file": _file("model_outputs.json", records)},
        format="multipart",
    )
    assert ok.status_code == 200 and ok.json()["imported"] == {"published-x": 1}
    records[0]["instruction"] = "unknown"
    refused = api.post(
        f"/api/evaluation/suites/{suite.pk}/import/",
        {"kind": "model_outputs", "file": _file("model_outputs.json", records)},
        format="multipart",
    )
    assert (
        refused.status_code == 400 and "None of the file's instructions" in refused.json()["detail"]
    )


def test_a_suite_is_created_from_a_project_and_one_source_is_required(api, baseline):
    from tests.annotation.factories import PromptFactory

    prompt = PromptFactory()
    body = {"name": "from-project", "baseline": "tiny-base", "project": prompt.project.slug}
    created = api.post("/api/evaluation/suites/", body, format="json")
    assert created.status_code == 201 and created.json()["source"] == "project"
    both = api.post(
        "/api/evaluation/suites/",
        {**body, "name": "both", "prompts": [{"instruction": "x"}]},
        format="json",
    )
    assert both.status_code == 400 and "exactly one source" in str(both.json())
