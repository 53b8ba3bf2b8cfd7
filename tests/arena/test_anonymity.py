"""What a voter may learn about an anonymous battle before the vote, and what only admins see of
the contestants: serving details, decoding settings and why an answer failed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from arena import battles, services
from arena.models import Battle, Generation

pytestmark = pytest.mark.django_db

LEAKY_ERROR = (
    "The endpoint http://10.1.2.3:8000/v1 failed after 3 attempts: HTTP 500: tiny-two is down"
)


@pytest.fixture
def two_models(tiny_contestant, tiny_model_dir):
    other = services.contestant_create(
        name="tiny-two",
        display_name="Tiny Two",
        backend="local",
        model_path=str(tiny_model_dir),
        system_prompt="You are the second tiny model.",
    )
    return tiny_contestant, other


def _start(user, mode: str = "anonymous", **sides) -> Battle:
    actor = battles.Actor(user=user, session_key=f"s{user.pk}", ip="10.0.0.7")
    return battles.battle_start(actor=actor, prompt="Say hello.", mode=mode, **sides)


def _answer(battle: Battle, *, failed_side: str = "") -> list[Generation]:
    """Finish the last turn's answers as a worker would; `failed_side` fails with a reason that
    names an endpoint and a model."""
    turn = battle.turns.order_by("index").last()
    for side, generation in turn.sides:
        if side == failed_side:
            Generation.objects.filter(pk=generation.pk).update(status="failed", error=LEAKY_ERROR)
        else:
            Generation.objects.filter(pk=generation.pk).update(status="succeeded", output="Hi.")
    return turn.generations()


def _listed_ids(client) -> set[int]:
    return {g["id"] for g in client.get("/api/generations/").json()["results"]}


def test_battle_answers_stay_out_of_the_generations_api_and_fragment_until_the_vote(
    two_models, annotator, annotator_client
):
    battle = _start(annotator)
    generations = _answer(battle)
    assert not _listed_ids(annotator_client) & {g.pk for g in generations}
    for generation in generations:
        assert annotator_client.get(f"/api/generations/{generation.pk}/").status_code == 404
        assert annotator_client.get(f"/arena/generations/{generation.pk}/").status_code == 404
    battles.battle_vote(
        battle=battle, actor=battles.Actor(user=annotator, ip="10.0.0.7"), winner="tie"
    )
    assert {g.pk for g in generations} <= _listed_ids(annotator_client)


def test_answers_replaced_by_a_regenerate_stay_hidden_before_the_vote(
    two_models, annotator, annotator_client
):
    battle = _start(annotator)
    replaced = _answer(battle)
    battles.battle_regenerate(battle=battle, actor=battles.Actor(user=annotator))
    assert not _listed_ids(annotator_client) & {g.pk for g in replaced}


def test_staff_see_no_unvoted_battle_answers_in_the_generations_api(
    two_models, admin_user, admin_client_
):
    generations = _answer(_start(admin_user))
    assert not _listed_ids(admin_client_) & {g.pk for g in generations}


def test_named_and_direct_answers_stay_in_the_generations_api(
    two_models, annotator, annotator_client
):
    first, second = two_models
    named = _answer(_start(annotator, "side_by_side", contestant_a=first, contestant_b=second))
    assert {g.pk for g in named} <= _listed_ids(annotator_client)


def test_a_failed_answer_reads_as_a_plain_failure_to_the_voter(
    two_models, annotator, annotator_client
):
    battle = _start(annotator)
    _answer(battle, failed_side="b")
    body = annotator_client.get(f"/api/battles/{battle.public_id}/").json()
    assert body["turns"][0]["b"] == {
        "status": "failed",
        "output": "",
        "error": "This answer failed.",
    }
    page = annotator_client.get(f"/arena/battles/{battle.public_id}/").content.decode()
    assert "This answer failed." in page
    assert "10.1.2.3" not in page and "10.1.2.3" not in str(body)


def test_admins_read_why_an_answer_failed(two_models, admin_user, admin_client_):
    battle = _start(admin_user)
    _answer(battle, failed_side="a")
    body = admin_client_.get(f"/api/battles/{battle.public_id}/").json()
    assert body["turns"][0]["a"]["error"] == LEAKY_ERROR
    assert "10.1.2.3" in admin_client_.get(f"/arena/battles/{battle.public_id}/").content.decode()


def test_a_tried_model_that_fails_shows_no_reason_to_its_requester(
    tiny_contestant, annotator, annotator_client, admin_client_
):
    generation = services.generation_request(
        contestant=tiny_contestant, messages=[{"role": "user", "content": "hi"}], user=annotator
    )
    Generation.objects.filter(pk=generation.pk).update(status="failed", error=LEAKY_ERROR)
    body = annotator_client.get(f"/api/generations/{generation.pk}/").json()
    assert body["error"] == "This answer failed."
    assert "settings" not in body
    fragment = annotator_client.get(f"/arena/generations/{generation.pk}/").content.decode()
    assert "This answer failed." in fragment and "10.1.2.3" not in fragment
    full = admin_client_.get(f"/api/generations/{generation.pk}/").json()
    assert full["error"] == LEAKY_ERROR
    assert full["settings"]["max_new_tokens"] == 8


SERVING = ("model_path", "endpoint_url", "endpoint_model", "system_prompt", "temperature")


def test_the_contestant_api_hides_how_models_are_served_from_non_admins(
    two_models, researcher_client, admin_client_, tiny_model_dir
):
    for url in ("/api/contestants/", "/api/contestants/tiny-two/"):
        body = researcher_client.get(url).content.decode()
        assert "tiny-two" in body
        assert str(tiny_model_dir) not in body
        assert "second tiny model" not in body
        assert not any(f'"{field}"' in body for field in SERVING)
    full = admin_client_.get("/api/contestants/tiny-two/").json()
    assert full["model_path"] == str(tiny_model_dir)
    assert full["system_prompt"] == "You are the second tiny model."
    assert full["temperature"] == 0.7


def test_the_models_page_shows_decoding_to_admins_only(two_models, annotator_client, admin_client_):
    assert "top-p=" not in annotator_client.get("/arena/models/").content.decode()
    assert "top-p=" in admin_client_.get("/arena/models/").content.decode()


def test_a_model_name_with_dots_is_reachable_in_the_api(annotator_client):
    services.contestant_create(name="gpt-4.1-mini", display_name="GPT", backend="external")
    assert annotator_client.get("/api/contestants/gpt-4.1-mini/").status_code == 200


def test_a_contestant_name_that_is_a_formula_or_a_path_is_refused():
    from django.core.exceptions import ValidationError

    for name in ("=HYPERLINK(1)", "@SUM(1+1)", "a/b", "-x"):
        with pytest.raises(ValidationError):
            services.contestant_create(name=name, display_name="X", backend="external")


def test_anonymous_answers_never_decode_greedily_and_each_draws_its_own_seed(two_models, annotator):
    greedy, _ = two_models
    assert greedy.temperature == 0.0
    seeds = []
    for _round in range(3):
        for generation in _answer(_start(annotator)):
            settings = Generation.objects.get(pk=generation.pk).settings
            assert settings["temperature"] >= battles.ANONYMOUS_MIN_TEMPERATURE > 0
            assert settings["top_p"] >= battles.ANONYMOUS_MIN_TOP_P
            seeds.append(settings["seed"])
    assert len(set(seeds)) == len(seeds) == 6


def test_named_battles_keep_the_contestants_own_decoding(two_models, annotator):
    greedy, other = two_models
    battle = _start(annotator, "side_by_side", contestant_a=greedy, contestant_b=other)
    turn = battle.turns.get()
    assert turn.generation_a.settings["temperature"] == 0.0
    assert "seed" not in turn.generation_a.settings


def test_regenerated_anonymous_answers_draw_a_new_seed(two_models, annotator):
    battle = _start(annotator)
    before = [g.settings["seed"] for g in _answer(battle)]
    battles.battle_regenerate(battle=battle, actor=battles.Actor(user=annotator))
    after = [g.settings["seed"] for g in battle.turns.get().generations()]
    assert not set(before) & set(after)


@pytest.mark.django_db(transaction=True)
def test_v1_failure_names_no_folder_to_non_admins(api_client, annotator, admin_user, eager_tasks):
    services.contestant_create(
        name="hidden-weights",
        display_name="Hidden",
        backend="local",
        model_path="/srv/secret/weights",
    )
    ask = {"model": "hidden-weights", "messages": [{"role": "user", "content": "hi"}]}
    api_client.force_authenticate(annotator)
    response = api_client.post("/v1/chat/completions", ask, format="json")
    assert response.status_code == 503
    assert "/srv/secret" not in response.content.decode()
    assert "failed" in response.json()["error"]["message"]
    api_client.force_authenticate(admin_user)
    response = api_client.post("/v1/chat/completions", ask, format="json")
    assert response.status_code == 503
    assert "/srv/secret/weights" in response.json()["error"]["message"]


# --- Django admin: the endpoint's key is write-only --------------------------------------------
@pytest.fixture
def superuser_client(db):
    user = get_user_model().objects.create_superuser("root", "root@example.org", "pw-root")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def keyed(db):
    return services.contestant_create(
        name="remote",
        display_name="Remote",
        backend="openai",
        endpoint_url="http://remote.invalid/v1",
        endpoint_model="m",
        endpoint_api_key="sk-very-secret-key",
    )


def _admin_form_data(contestant, **changes) -> dict:
    data = {
        "name": contestant.name,
        "display_name": contestant.display_name,
        "backend": contestant.backend,
        "endpoint_url": contestant.endpoint_url,
        "endpoint_model": contestant.endpoint_model,
        "endpoint_api_key": "",
        "is_active": "on",
        "request_timeout_s": contestant.request_timeout_s,
        "max_retries": contestant.max_retries,
        "temperature": contestant.temperature,
        "top_p": contestant.top_p,
        "max_new_tokens": contestant.max_new_tokens,
        "created_at_0": contestant.created_at.strftime("%Y-%m-%d"),
        "created_at_1": contestant.created_at.strftime("%H:%M:%S"),
        "elo": contestant.elo,
        "elo_votes": contestant.elo_votes,
    }
    return data | changes


def test_the_admin_form_never_renders_the_endpoint_key(superuser_client, keyed):
    page = superuser_client.get(f"/admin/arena/contestant/{keyed.pk}/change/")
    assert page.status_code == 200
    assert "sk-very-secret-key" not in page.content.decode()


def test_a_blank_key_in_the_admin_form_keeps_the_stored_key(superuser_client, keyed):
    url = f"/admin/arena/contestant/{keyed.pk}/change/"
    response = superuser_client.post(url, _admin_form_data(keyed, display_name="Renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    keyed.refresh_from_db()
    assert keyed.display_name == "Renamed"
    assert keyed.endpoint_api_key == "sk-very-secret-key"
    superuser_client.post(url, _admin_form_data(keyed, endpoint_api_key="sk-new"))
    keyed.refresh_from_db()
    assert keyed.endpoint_api_key == "sk-new"
