"""The vote's hand-written statements (arena.votes): the same outcomes as the rules they replace,
and no vote lost or doubled when another action comes between the read and the write."""

import threading

import pytest
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from arena import battles, ratings, votes
from arena.api.serializers import BattleSerializer
from arena.battles import Actor, BattleError
from arena.models import Battle, Contestant
from core import rows
from tests.arena.test_battles import _answer_all, two_models  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(annotator):
    return Actor(user=annotator, session_key="s1", ip="10.0.0.1")


def _ready(actor, outputs=None) -> Battle:
    battle = battles.battle_start(actor=actor, prompt="hi")
    _answer_all(battle, outputs or {"a": "Hello there.", "b": "Hi!"})
    return battle


def test_the_elo_step_written_in_sql_is_ratings_elo_update(two_models, actor):  # noqa: F811
    a, b = two_models
    Contestant.objects.filter(pk=a.pk).update(elo=1130.5)
    Contestant.objects.filter(pk=b.pk).update(elo=987.25)
    expected = {a.pk: 1130.5, b.pk: 987.25}
    for winner in ("model_a", "model_b", "tie", "both_bad", "model_a"):
        battle = _ready(actor)
        side_a, side_b = battle.contestant_a_id, battle.contestant_b_id
        voted = battles.battle_vote(battle=battle, actor=actor, winner=winner)
        expected[side_a], expected[side_b] = ratings.elo_update(
            expected[side_a], expected[side_b], ratings.WINNER_OUTCOME[winner]
        )
        assert voted.contestant_a.elo == pytest.approx(expected[side_a], abs=1e-9)
        stored = dict(Contestant.objects.values_list("pk", "elo"))
        assert stored[a.pk] == pytest.approx(expected[a.pk], abs=1e-9)
        assert stored[b.pk] == pytest.approx(expected[b.pk], abs=1e-9)
    assert stored[a.pk] + stored[b.pk] == pytest.approx(1130.5 + 987.25, abs=1e-9)
    assert set(Contestant.objects.values_list("elo_votes", flat=True)) == {5}


def test_a_vote_reads_once_and_writes_once(two_models, actor):  # noqa: F811
    battle = _ready(actor)
    with CaptureQueriesContext(connection) as queries:
        battles.battle_vote(battle=battle, actor=actor, winner="model_b")
    touching = [q["sql"] for q in queries.captured_queries if "arena_" in q["sql"]]
    expected = 2 if connection.vendor == "postgresql" else 3  # SQLite moves Elo on its own
    assert len(touching) == expected, touching


def _between_read_and_write(monkeypatch, action):
    """Run `action` once, after the vote has read the battle and before it writes."""
    read = votes.read
    done = []

    def read_then_act(**lookup):
        result = read(**lookup)
        if not done:
            done.append(True)
            action()
        return result

    monkeypatch.setattr(votes, "read", read_then_act)


def test_a_regenerate_after_the_read_refuses_the_vote(two_models, actor, monkeypatch):  # noqa: F811
    battle = _ready(actor)
    _between_read_and_write(
        monkeypatch, lambda: battles.battle_regenerate(battle=battle, actor=actor)
    )
    with pytest.raises(BattleError, match="answers changed"):
        battles.battle_vote(battle=battle, actor=actor, winner="model_a")
    battle.refresh_from_db()
    assert battle.winner == "" and battle.revision == 1
    assert set(Contestant.objects.values_list("elo", "elo_votes")) == {(1000.0, 0)}


def test_a_continue_after_the_read_refuses_the_vote(two_models, actor, monkeypatch):  # noqa: F811
    battle = _ready(actor)
    _between_read_and_write(
        monkeypatch, lambda: battles.battle_continue(battle=battle, actor=actor, prompt="more")
    )
    with pytest.raises(BattleError, match="answers changed"):
        battles.battle_vote(battle=battle, actor=actor, winner="model_a")
    assert Battle.objects.get(pk=battle.pk).winner == ""


def test_another_vote_after_the_read_wins_and_elo_moves_once(two_models, actor, monkeypatch):  # noqa: F811
    battle = _ready(actor)
    _between_read_and_write(
        monkeypatch, lambda: battles.battle_vote(battle=battle, actor=actor, winner="model_b")
    )
    with pytest.raises(BattleError, match="already has a vote"):
        battles.battle_vote(battle=battle, actor=actor, winner="model_a")
    assert Battle.objects.get(pk=battle.pk).winner == "model_b"
    assert sorted(Contestant.objects.values_list("elo_votes", flat=True)) == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_simultaneous_votes_on_one_battle_store_one(two_models, actor):  # noqa: F811
    battle = _ready(actor)
    outcomes, start = [], threading.Barrier(6)

    def vote(winner):
        start.wait()
        try:
            battles.battle_vote(battle=battle, actor=actor, winner=winner)
            outcomes.append(winner)
        except BattleError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=vote, args=(w,))
        for w in ("model_a", "model_b", "tie", "both_bad", "model_a", "model_b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1 and outcomes.count("refused") == 5
    assert Battle.objects.get(pk=battle.pk).winner == winners[0]
    elo = dict(Contestant.objects.values_list("pk", "elo"))
    a, b = ratings.elo_update(1000.0, 1000.0, ratings.WINNER_OUTCOME[winners[0]])
    assert elo[battle.contestant_a_id] == pytest.approx(a)
    assert elo[battle.contestant_b_id] == pytest.approx(b)
    assert sorted(Contestant.objects.values_list("elo_votes", flat=True)) == [1, 1]


def test_the_written_out_reply_is_the_serializer_fields(two_models, actor):  # noqa: F811
    battle = _ready(actor)
    for voted in (False, True):
        if voted:
            battle = battles.battle_vote(battle=battle, actor=actor, winner="tie")
        fast = BattleSerializer(battle).to_representation(battle)
        generic = serializers.Serializer.to_representation(BattleSerializer(battle), battle)
        assert fast == dict(generic)


def test_statements_are_prepared_on_postgresql(two_models, actor):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    battles.battle_vote(battle=_ready(actor), actor=actor, winner="model_a")
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("arena_battle" in sql and "UPDATE" in sql for sql in prepared), prepared


def test_errors_of_hand_written_statements_are_djangos(db):
    with pytest.raises(DatabaseError) as error:
        rows.run("SELECT no_such_column FROM arena_battle")
    assert type(error.value).__module__ == "django.db.utils"


@pytest.mark.parametrize(
    ("answer", "leaks"),
    [
        ("I am SmolLM2, trained by Hugging Face.", ["hugging face", "smollm2"]),
        ("Call me smollm.", ["smollm"]),
        ("The smollm2x toolkit and huggingface.co are other names.", []),
        ("Nothing to see.", []),
    ],
)
def test_identity_leaks_are_whole_words_only(answer, leaks):
    from arena import hygiene

    terms = hygiene.identity_terms(
        "smollm2-135m", "SmolLM2 135M · helpful", organization="Hugging Face"
    )
    assert hygiene.identity_leaks(answer, terms) == leaks


@pytest.mark.parametrize(("interval", "asked"), [(60, 1), (0, 3)])
def test_refits_are_asked_for_at_most_once_per_interval(
    two_models,  # noqa: F811
    actor,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
    interval,
    asked,
):
    from arena import tasks

    settings.ARENA_REFRESH_EVERY_VOTES = 1
    settings.ARENA_REFRESH_MIN_INTERVAL_S = interval
    calls = []
    monkeypatch.setattr(tasks.leaderboards_refresh, "delay", lambda: calls.append(1))
    for winner in ("model_a", "tie", "model_b"):
        battle = _ready(actor)
        with django_capture_on_commit_callbacks(execute=True):
            battles.battle_vote(battle=battle, actor=actor, winner=winner)
    assert len(calls) == asked


def test_a_vote_without_prepared_statements_is_the_same(two_models, actor, settings):  # noqa: F811
    settings.DATABASE_PREPARED_STATEMENTS = False  # behind a pooler that cannot keep them
    battle = battles.battle_vote(battle=_ready(actor), actor=actor, winner="model_b")
    stored = Battle.objects.get(pk=battle.pk)
    assert (stored.winner, stored.style_a["length_chars"]) == ("model_b", len("Hello there."))
    assert sorted(Contestant.objects.values_list("elo", flat=True)) == pytest.approx([998, 1002])
