"""The battle pages and API: nothing names a model before the vote."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena import services
from arena.models import Battle, Generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models(tiny_contestant, tiny_model_dir):
    services.contestant_create(
        name="tiny-two",
        display_name="Tiny Two",
        backend="local",
        model_path=str(tiny_model_dir),
        organization="Other Lab",
    )


def _finish(battle, a="Answer one.", b="Answer two."):
    turn = battle.turns.order_by("-index").first()
    Generation.objects.filter(pk=turn.generation_a_id).update(status="succeeded", output=a)
    Generation.objects.filter(pk=turn.generation_b_id).update(status="succeeded", output=b)


def test_visitor_battles_and_votes_and_names_appear_only_after(client, two_models):
    response = client.post("/arena/", {"prompt": "write a poem"})
    battle = Battle.objects.get()
    assert response.status_code == 302 and str(battle.public_id) in response["Location"]
    pending = client.get(response["Location"]).content.decode()
    assert "Both models are writing" in pending and 'hx-trigger="every 1s"' in pending
    _finish(battle)
    ready = client.get(response["Location"], HTTP_HX_REQUEST="true")
    html = ready.content.decode()
    for secret in ("Tiny Llama", "tiny-llama", "Tiny Two", "tiny-two", "Test Lab", "Other Lab"):
        assert secret not in html
        assert secret not in str(ready.headers)
    assert 'value="model_a" data-key="a" disabled' not in html
    voted = client.post(
        f"/arena/battles/{battle.public_id}/vote/", {"winner": "model_b"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Tiny Llama" in voted and "Tiny Two" in voted and "New round" in voted
    again = client.post(f"/arena/battles/{battle.public_id}/vote/", {"winner": "model_a"})
    assert again.status_code == 409
    battle.refresh_from_db()
    assert battle.winner == "model_b"


def test_vote_buttons_are_disabled_while_answers_are_pending(client, two_models):
    location = client.post("/arena/", {"prompt": "hi"})["Location"]
    html = client.get(location).content.decode()
    assert html.count("disabled") >= 4


def test_answers_appear_as_they_are_written_and_the_vote_waits_for_both(client, two_models):
    location = client.post("/arena/", {"prompt": "a river poem"})["Location"]
    turn = Battle.objects.get().turns.get()
    # The worker stores each side's text so far as it writes (arena.services._partial_writer).
    Generation.objects.filter(pk=turn.generation_a_id).update(
        status="running", output="Rivers **carry**"
    )
    html = client.get(location, HTTP_HX_REQUEST="true").content.decode()
    assert "Rivers <strong>carry</strong>" in html and "Writing…" in html
    assert 'hx-trigger="every 1s"' in html and html.count("disabled") >= 4  # no vote yet
    _finish(battle=Battle.objects.get(), a="Rivers carry water to the sea.", b="Water runs.")
    done = client.get(location, HTTP_HX_REQUEST="true").content.decode()
    assert "Rivers carry water to the sea." in done and "Writing…" not in done


def test_a_model_tried_alone_shows_its_answer_as_it_is_written(
    annotator, annotator_client, tiny_contestant
):
    generation = services.generation_request(
        contestant=tiny_contestant, messages=[{"role": "user", "content": "hi"}], user=annotator
    )
    Generation.objects.filter(pk=generation.pk).update(status="running", output="Hello the")
    html = annotator_client.get(
        f"/arena/generations/{generation.pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Hello the" in html and "is writing…" in html


def test_someone_elses_battle_is_not_found(client, annotator_client, two_models):
    location = annotator_client.post("/arena/", {"prompt": "hi"})["Location"]
    assert client.get(location).status_code == 404


def test_side_by_side_names_both_models_from_the_start(annotator_client, two_models):
    response = annotator_client.post(
        "/arena/side-by-side/",
        {"prompt": "hi", "contestant_a": "tiny-llama", "contestant_b": "tiny-two"},
    )
    html = annotator_client.get(response["Location"]).content.decode()
    assert "Tiny Llama" in html and "Tiny Two" in html


def test_side_by_side_refuses_the_same_model_twice(annotator_client, two_models):
    response = annotator_client.post(
        "/arena/side-by-side/",
        {"prompt": "hi", "contestant_a": "tiny-llama", "contestant_b": "tiny-llama"},
    )
    assert response.status_code == 400 and "two different models" in response.content.decode()


def test_api_battle_hides_names_until_the_vote(api_client, annotator, two_models):
    api_client.force_authenticate(annotator)
    created = api_client.post("/api/battles/", {"prompt": "hi"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["model_a"] is None and body["model_b"] is None
    assert body["turns"][0]["a"]["status"] == "queued" and not body["ready_to_vote"]
    turn = Battle.objects.get().turns.get()
    Generation.objects.filter(pk=turn.generation_b_id).update(status="running", output="Hel")
    writing = api_client.get(f"/api/battles/{body['id']}/").json()["turns"][0]["b"]
    assert writing == {"status": "running", "output": "Hel", "error": ""}
    early = api_client.post(f"/api/battles/{body['id']}/vote/", {"winner": "tie"}, format="json")
    assert early.status_code == 409 and "Wait until" in early.json()["detail"]
    _finish(Battle.objects.get())
    ready = api_client.get(f"/api/battles/{body['id']}/").json()
    assert ready["ready_to_vote"] and ready["model_a"] is None
    assert "tiny" not in str(ready).lower()
    voted = api_client.post(f"/api/battles/{body['id']}/vote/", {"winner": "tie"}, format="json")
    assert voted.status_code == 200
    assert {voted.json()["model_a"], voted.json()["model_b"]} == {"tiny-llama", "tiny-two"}
    bad = api_client.post(f"/api/battles/{body['id']}/vote/", {"winner": "A"}, format="json")
    assert bad.status_code == 400


def test_api_cancel_stops_ones_own_answers_and_no_one_elses(
    api_client, annotator, reviewer, two_models
):
    api_client.force_authenticate(annotator)
    battle_id = api_client.post("/api/battles/", {"prompt": "hi"}, format="json").json()["id"]
    turn = Battle.objects.get().turns.get()
    Generation.objects.filter(pk=turn.generation_b_id).update(status="running", output="Hel")
    api_client.force_authenticate(reviewer)
    assert api_client.post(f"/api/battles/{battle_id}/cancel/").status_code == 404
    api_client.force_authenticate(annotator)
    cancelled = api_client.post(f"/api/battles/{battle_id}/cancel/")
    assert cancelled.status_code == 200
    sides = cancelled.json()["turns"][0]
    assert sides["a"]["status"] == sides["b"]["status"] == "cancelled"
    assert sides["b"]["output"] == "Hel"
    again = api_client.post(f"/api/battles/{battle_id}/cancel/")
    assert again.status_code == 409 and "complete" in again.json()["detail"]


def test_api_vote_finds_only_the_voters_own_battle(api_client, annotator, reviewer, two_models):
    api_client.force_authenticate(annotator)
    battle_id = api_client.post("/api/battles/", {"prompt": "hi"}, format="json").json()["id"]
    _finish(Battle.objects.get())
    api_client.force_authenticate(reviewer)
    theirs = api_client.post(f"/api/battles/{battle_id}/vote/", {"winner": "tie"}, format="json")
    assert theirs.status_code == 404
    for bad_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        missing = api_client.post(f"/api/battles/{bad_id}/vote/", {"winner": "tie"}, format="json")
        assert missing.status_code == 404 and missing.json()["detail"]
    assert not Battle.objects.get().is_voted
    api_client.force_authenticate(annotator)
    with CaptureQueriesContext(connection) as queries:
        voted = api_client.post(f"/api/battles/{battle_id}/vote/", {"winner": "tie"}, format="json")
    assert voted.status_code == 200 and voted.json()["turns"][0]["a"]["output"] == "Answer one."
    # The vote's own locked read serves the answer: the turns are read once.
    assert len([q for q in queries.captured_queries if "arena_battleturn" in q["sql"]]) == 1


def test_api_battle_is_read_in_one_statement_and_only_by_its_voter(
    api_client, annotator, reviewer, two_models
):
    """Clients poll a battle while its answers are generated: one query a poll."""
    api_client.force_authenticate(annotator)
    battle_id = api_client.post("/api/battles/", {"prompt": "hi"}, format="json").json()["id"]
    _finish(Battle.objects.get())
    with CaptureQueriesContext(connection) as queries:
        polled = api_client.get(f"/api/battles/{battle_id}/")
    assert polled.status_code == 200 and len(queries.captured_queries) == 1
    assert polled.json()["turns"][0]["a"] == {"status": "succeeded", "output": "Answer one.",
                                              "error": ""}  # fmt: skip
    voted = api_client.post(f"/api/battles/{battle_id}/vote/", {"winner": "tie"}, format="json")
    assert api_client.get(f"/api/battles/{battle_id}/").json() == voted.json()
    api_client.force_authenticate(reviewer)
    for bad_id in (battle_id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        missing = api_client.get(f"/api/battles/{bad_id}/")
        assert missing.status_code == 404 and missing.json()["detail"]


def test_a_prompt_over_the_limit_is_refused_with_its_length_not_cut(client, tiny_contestant):
    page = client.get("/arena/").content.decode()
    assert 'data-limit="20000"' in page and "maxlength" not in page
    response = client.post("/arena/", {"prompt": "x" * 20_001})
    assert response.status_code == 400
    assert "at most 20000 characters (it has 20001)" in response.content.decode()


def test_a_battle_over_the_rate_limit_is_a_429_page_with_the_reason(client, two_models, settings):
    from django.core.cache import cache

    cache.clear()
    settings.ARENA_BATTLES_PER_MINUTE = 1
    assert client.post("/arena/", {"prompt": "first"}).status_code == 302
    refused = client.post("/arena/", {"prompt": "second"})
    assert refused.status_code == 429
    assert "Too many battles from you in the last minute (limit 1)" in refused.content.decode()
    assert Battle.objects.count() == 1


def test_a_waiting_battle_says_how_many_answers_are_ahead_and_can_be_cancelled(
    client, annotator_client, two_models
):
    annotator_client.post("/arena/", {"prompt": "asked first"})
    location = client.post("/arena/", {"prompt": "hi"})["Location"]
    html = client.get(location).content.decode()
    assert "In line: 2 answers asked before yours" in html and "Cancel" in html
    battle = Battle.objects.get(public_id=location.rstrip("/").split("/")[-1])

    cancelled = client.post(f"/arena/battles/{battle.public_id}/cancel/", HTTP_HX_REQUEST="true")
    html = cancelled.content.decode()
    assert cancelled.status_code == 200
    assert html.count("Cancelled. Regenerate to ask again.") == 2 and "In line" not in html
    assert 'value="model_a" data-key="a" disabled' in html  # nothing to vote on
    vote = client.post(f"/arena/battles/{battle.public_id}/vote/", {"winner": "tie"})
    assert vote.status_code == 409 and "cancelled" in vote.content.decode()
    again = client.post(f"/arena/battles/{battle.public_id}/regenerate/")
    assert again.status_code == 302
    assert battle.turns.get().generation_a.status == "queued"


def test_answers_being_written_can_be_stopped_and_keep_their_words(client, two_models):
    location = client.post("/arena/", {"prompt": "hi"})["Location"]
    battle = Battle.objects.get(public_id=location.rstrip("/").split("/")[-1])
    turn = battle.turns.get()
    Generation.objects.filter(pk__in=[turn.generation_a_id, turn.generation_b_id]).update(
        status="running", output="Once upon"
    )
    html = client.get(location).content.decode()
    assert "Both models are writing" in html and "Stop</button>" in html
    stopped = client.post(f"/arena/battles/{battle.public_id}/cancel/", HTTP_HX_REQUEST="true")
    html = stopped.content.decode()
    assert stopped.status_code == 200 and html.count("Stopped. Regenerate to ask again.") == 2
    assert html.count("Once upon") == 2
    assert set(Generation.objects.values_list("status", flat=True)) == {"cancelled"}
    refused = client.post(f"/arena/battles/{battle.public_id}/cancel/")
    assert refused.status_code == 409 and "both answers are complete" in refused.content.decode()
