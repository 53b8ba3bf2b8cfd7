"""Battles: anonymous until the vote, one vote per battle, hygiene flags, live Elo."""

import pytest
from django.test import override_settings

from arena import battles, services
from arena.battles import Actor, BattleError
from arena.models import Battle, BattleMode, Contestant, Exclusion, Generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models(tiny_contestant, tiny_model_dir):
    other = services.contestant_create(
        name="tiny-two",
        display_name="Tiny Two",
        backend="local",
        model_path=str(tiny_model_dir),
        temperature=0.0,
        max_new_tokens=6,
        organization="Other Lab",
    )
    return tiny_contestant, other


def _answer_all(battle: Battle, outputs: dict | None = None) -> None:
    """Let the generations of a battle finish, as a worker would (or with given outputs)."""
    for turn in battle.turns.all():
        for side, generation in turn.sides:
            if outputs and side in outputs:
                Generation.objects.filter(pk=generation.pk).update(
                    status="succeeded", output=outputs[side]
                )
            else:
                services.generation_execute(generation_id=generation.pk)


@pytest.fixture
def actor(annotator):
    return Actor(user=annotator, session_key="s1", ip="10.0.0.1")


def test_anonymous_battle_draws_two_different_active_models(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="what is two plus two")
    assert {battle.contestant_a, battle.contestant_b} == set(two_models)
    assert battle.turns.count() == 1
    assert battle.category == "math"


def test_inactive_and_external_models_are_never_drawn(two_models, actor):
    Contestant.objects.filter(pk=two_models[1].pk).update(is_active=False)
    services.contestant_create(name="ext", display_name="Ext", backend="external")
    with pytest.raises(BattleError, match="at least two active models"):
        battles.battle_start(actor=actor, prompt="hi")


def test_vote_is_refused_until_both_answers_are_complete(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="hi")
    with pytest.raises(BattleError, match="Wait until both answers"):
        battles.battle_vote(battle=battle, actor=actor, winner="model_a")
    battle.refresh_from_db()
    assert battle.winner == ""


def test_one_vote_locks_the_battle_and_moves_live_elo(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="hi")
    _answer_all(battle, {"a": "Hello there.", "b": "Hi!"})
    battles.battle_vote(battle=battle, actor=actor, winner="model_a")
    with pytest.raises(BattleError, match="already has a vote"):
        battles.battle_vote(battle=battle, actor=actor, winner="model_b")
    battle.refresh_from_db()
    assert battle.winner == "model_a" and battle.is_counted
    a = Contestant.objects.get(pk=battle.contestant_a_id)
    b = Contestant.objects.get(pk=battle.contestant_b_id)
    assert a.elo == pytest.approx(1002.0) and b.elo == pytest.approx(998.0)  # K=4, equal start
    assert a.elo_votes == b.elo_votes == 1
    assert battle.style_a["length_chars"] == len("Hello there.")


def test_vote_on_a_failed_answer_is_refused(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="hi")
    turn = battle.turns.get()
    Generation.objects.filter(pk=turn.generation_a_id).update(status="failed", error="boom")
    Generation.objects.filter(pk=turn.generation_b_id).update(status="succeeded", output="ok")
    with pytest.raises(BattleError, match="failed"):
        battles.battle_vote(battle=battle, actor=actor, winner="both_bad")


def test_regenerate_replaces_a_failed_answer_so_the_vote_can_count(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="hi")
    turn = battle.turns.get()
    Generation.objects.filter(pk=turn.generation_a_id).update(status="failed", error="boom")
    Generation.objects.filter(pk=turn.generation_b_id).update(status="succeeded", output="ok")
    battles.battle_regenerate(battle=battle, actor=actor)
    _answer_all(battle)
    battles.battle_vote(battle=battle, actor=actor, winner="tie")
    battle.refresh_from_db()
    assert battle.is_counted


def test_an_answer_naming_its_model_is_kept_but_not_counted(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="who are you")
    _answer_all(battle, {"a": "I am Tiny Llama, made by Test Lab.", "b": "An assistant."})
    battles.battle_vote(battle=battle, actor=actor, winner="model_a")
    battle.refresh_from_db()
    assert battle.excluded_reason == Exclusion.IDENTITY_REVEALED
    assert not battle.is_counted
    assert Contestant.objects.get(pk=battle.contestant_a_id).elo == 1000.0


def test_named_side_by_side_votes_are_kept_but_not_counted(two_models, actor):
    a, b = two_models
    battle = battles.battle_start(
        actor=actor, prompt="hi", mode=BattleMode.SIDE_BY_SIDE, contestant_a=a, contestant_b=b
    )
    _answer_all(battle, {"a": "x", "b": "y"})
    battles.battle_vote(battle=battle, actor=actor, winner="model_b")
    battle.refresh_from_db()
    assert battle.excluded_reason == Exclusion.NOT_ANONYMOUS


def test_direct_chat_continues_with_the_conversation_and_has_no_vote(two_models, actor):
    battle = battles.battle_start(
        actor=actor, prompt="hi", mode=BattleMode.DIRECT, contestant_a=two_models[0]
    )
    _answer_all(battle, {"a": "Hello!"})
    turn = battles.battle_continue(battle=battle, actor=actor, prompt="and then?")
    assert turn.generation_b is None
    assert turn.generation_a.messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "and then?"},
    ]
    with pytest.raises(BattleError, match="nothing to vote on"):
        battles.battle_vote(battle=battle, actor=actor, winner="tie")


def test_multi_turn_battle_gives_each_side_its_own_history(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="hi")
    _answer_all(battle, {"a": "from A", "b": "from B"})
    turn = battles.battle_continue(battle=battle, actor=actor, prompt="more")
    assert turn.generation_a.messages[1]["content"] == "from A"
    assert turn.generation_b.messages[1]["content"] == "from B"
    battle.refresh_from_db()
    assert "multi_turn" in battle.categories


@override_settings(ARENA_VOTES_PER_MINUTE=1)
def test_votes_are_rate_limited_per_address(two_models, annotator, reviewer):
    from django.core.cache import cache

    cache.clear()
    first = Actor(user=annotator, ip="10.0.0.9")
    second = Actor(user=reviewer, ip="10.0.0.9")
    b1 = battles.battle_start(actor=first, prompt="hi")
    b2 = battles.battle_start(actor=second, prompt="hi")
    _answer_all(b1, {"a": "x", "b": "y"})
    _answer_all(b2, {"a": "x", "b": "y"})
    battles.battle_vote(battle=b1, actor=first, winner="tie")
    with pytest.raises(battles.RateLimited, match="Too many votes"):
        battles.battle_vote(battle=b2, actor=second, winner="tie")
    b2.refresh_from_db()
    assert b2.winner == ""


def test_unknown_vote_is_refused_with_the_choices(two_models, actor):
    battle = battles.battle_start(actor=actor, prompt="hi")
    with pytest.raises(BattleError, match="model_a, model_b, tie, both_bad"):
        battles.battle_vote(battle=battle, actor=actor, winner="A")
