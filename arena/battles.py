"""Writes of the arena's battles: start, continue, regenerate, vote.

Identities stay hidden until the vote; one vote locks a battle; a vote that cannot count is kept
with the reason it does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from arena import backends, hygiene, ratings, votes
from arena.models import (
    Battle,
    BattleMode,
    BattleTurn,
    Contestant,
    Exclusion,
    Generation,
    GenerationStatus,
    LeaderboardSnapshot,
    Winner,
)
from arena.services import generation_request
from core.jobs import job_cancel


class BattleError(Exception):
    """A battle action was refused; the message says why, for the user."""


class RateLimited(BattleError):
    pass


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in user, or a visitor known by session and address."""

    user: object | None = None
    session_key: str = ""
    ip: str | None = None

    @property
    def user_id(self) -> int | None:
        user = self.user
        return user.pk if user is not None and user.is_authenticated else None


# --- Pair sampling ----------------------------------------------------------------------------
def battle_pair_sample(*, rng: random.Random | None = None) -> tuple[Contestant, Contestant]:
    """Draw two active contestants, favouring newcomers and pairs whose order is uncertain
    (see docs/ratings.md); the A/B sides are then shuffled."""
    rng = rng or random.SystemRandom()
    pool = list(Contestant.objects.battling().order_by("pk"))
    if len(pool) < 2:
        raise BattleError("The arena needs at least two active models.")
    names = [c.name for c in pool]
    rated, cov = _latest_ratings(names)
    votes = np.array([c.elo_votes for c in pool], float)
    pairs, probs = ratings.pair_sampling_weights(ratings=rated, cov=cov, votes=votes)
    i, j = pairs[_draw(probs, rng)]
    first, second = pool[int(i)], pool[int(j)]
    return (first, second) if rng.random() < 0.5 else (second, first)


def _draw(probs: np.ndarray, rng: random.Random) -> int:
    index = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
    return min(index, len(probs) - 1)


def _latest_ratings(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ratings and their covariance from the newest overall snapshot; NaN for unrated models."""
    snapshot = (
        LeaderboardSnapshot.objects.filter(
            category="", style_control=False, include_annotation=False
        )
        .only("rows", "plots")
        .first()
    )
    rated = np.full(len(names), np.nan)
    cov = np.zeros((len(names), len(names)))
    if snapshot is None:
        return rated, cov
    position = {row["model"]: k for k, row in enumerate(snapshot.rows)}
    snap_cov = np.asarray(snapshot.plots.get("cov") or [], float)
    for a, name in enumerate(names):
        if name in position:
            rated[a] = snapshot.rows[position[name]]["rating"]
    for a, name_a in enumerate(names):
        for b, name_b in enumerate(names):
            if name_a in position and name_b in position and snap_cov.size:
                cov[a, b] = snap_cov[position[name_a], position[name_b]]
    return rated, cov


# --- Starting and continuing --------------------------------------------------------------------
def _check_rate(actor: Actor, *, key: str, per_minute: int) -> None:
    """A fixed one-minute window per user and per address, counted in the cache."""
    if per_minute <= 0:
        return
    window = int(timezone.now().timestamp() // 60)
    for who in filter(None, (actor.user_id and f"u{actor.user_id}", actor.ip and f"ip{actor.ip}")):
        count = _cache_count(f"rate:{key}:{who}:{window}", timeout=120)
        if count > per_minute:
            raise RateLimited(
                f"Too many {key} from you in the last minute (limit {per_minute}); "
                "please wait a moment."
            )


def _cache_count(name: str, *, timeout: int | None) -> int:
    """Add one to a counter in the cache and return it. The counter exists nearly always, so
    increment first: one cache call, not two (a network round trip each with Redis)."""
    try:
        return cache.incr(name)
    except ValueError:  # the first of its window, or evicted
        cache.add(name, 0, timeout=timeout)
    try:
        return cache.incr(name)
    except ValueError:  # evicted between add and incr
        return 1


@transaction.atomic
def battle_start(
    *,
    actor: Actor,
    prompt: str,
    mode: str = BattleMode.ANONYMOUS,
    contestant_a: Contestant | None = None,
    contestant_b: Contestant | None = None,
) -> Battle:
    """Open a battle and ask both sides for an answer (one side for a direct chat)."""
    _check_rate(actor, key="battles", per_minute=settings.ARENA_BATTLES_PER_MINUTE)
    messages = backends.validate_messages([{"role": "user", "content": prompt}])
    if mode == BattleMode.ANONYMOUS:
        contestant_a, contestant_b = battle_pair_sample()
    elif mode == BattleMode.SIDE_BY_SIDE:
        if contestant_a is None or contestant_b is None or contestant_a == contestant_b:
            raise BattleError("Pick two different models.")
    elif mode == BattleMode.DIRECT:
        if contestant_a is None:
            raise BattleError("Pick a model to chat with.")
        contestant_b = None
    else:
        raise BattleError(f"Unknown battle mode {mode!r}.")
    battle = Battle.objects.create(
        mode=mode,
        contestant_a=contestant_a,
        contestant_b=contestant_b,
        user=actor.user if actor.user_id else None,
        session_key=actor.session_key or "",
        ip=actor.ip,
        categories=hygiene.categorize(messages),
    )
    battle.category = battle.categories[0]
    battle.save(update_fields=["category"])
    _turn_create(battle, index=0, messages=messages, actor=actor)
    return battle


def _turn_create(battle: Battle, *, index: int, messages: list[dict], actor: Actor) -> BattleTurn:
    user = actor.user if actor.user_id else None
    sides = [battle.contestant_a, battle.contestant_b]
    generations = [_side_request(battle, c, messages, user) if c else None for c in sides]
    return BattleTurn.objects.create(
        battle=battle,
        index=index,
        user_message=messages[-1]["content"],
        generation_a=generations[0],
        generation_b=generations[1],
    )


# An anonymous battle never decodes greedily: an answer equal byte for byte to what `/v1` gives
# for one model would name its side. Temperature and top-p are raised to these floors and each
# answer samples with a fresh secret seed (docs/ratings.md). Named and direct modes keep the
# contestant's own settings.
ANONYMOUS_MIN_TEMPERATURE = 0.3
ANONYMOUS_MIN_TOP_P = 0.5


def battle_sampling(
    *, battle: Battle, contestant: Contestant, rng: random.Random | None = None
) -> dict:
    """The settings one side of `battle` answers with, over the contestant's own."""
    if battle.mode != BattleMode.ANONYMOUS:
        return {}
    rng = rng or random.SystemRandom()
    return {
        "temperature": max(contestant.temperature, ANONYMOUS_MIN_TEMPERATURE),
        "top_p": max(contestant.top_p, ANONYMOUS_MIN_TOP_P),
        "seed": rng.randrange(2**31),
    }


def _side_request(battle: Battle, contestant: Contestant, messages: list[dict], user):
    return generation_request(
        contestant=contestant,
        messages=messages,
        user=user,
        overrides=battle_sampling(battle=battle, contestant=contestant),
        battle=battle,
    )


def side_conversation(turns: list[BattleTurn], side: str) -> list[dict]:
    """The conversation as one side saw it: user turns and that side's answers."""
    messages: list[dict] = []
    for turn in turns:
        messages.append({"role": "user", "content": turn.user_message})
        generation = turn.generation_a if side == "a" else turn.generation_b
        if generation is not None:
            messages.append({"role": "assistant", "content": generation.output})
    return messages


def _locked(**lookup) -> tuple[Battle, list[BattleTurn]]:
    """The battle found by `lookup`, locked until the transaction ends, with both sides; then
    its turns, read after the lock (so that they are those a concurrent action committed) and
    kept prefetched on the returned battle (`battle.turns.all()` reads no more). Raises
    Battle.DoesNotExist.

    Only the battle's row is locked (`of`): continue and regenerate change nothing of the
    sides, and locking them would queue these actions behind every vote that moves an Elo."""
    turns = BattleTurn.objects.select_related("generation_a", "generation_b").order_by("index")
    battle = (
        Battle.objects.select_for_update(of=("self",))
        .select_related("contestant_a", "contestant_b")
        .prefetch_related(Prefetch("turns", queryset=turns))
        .get(**lookup)
    )
    return battle, list(battle.turns.all())


def _require_answers_ready(turns: list[BattleTurn]) -> None:
    generations = turns[-1].generations()
    if any(not g.is_finished for g in generations):
        raise BattleError("Wait until both answers are complete.")
    if any(g.status == GenerationStatus.FAILED for g in generations):
        raise BattleError("An answer failed; regenerate before voting or continuing.")
    if any(g.status != GenerationStatus.SUCCEEDED for g in generations):
        raise BattleError("An answer was cancelled; regenerate before voting or continuing.")


@transaction.atomic
def battle_continue(*, battle: Battle, actor: Actor, prompt: str) -> BattleTurn:
    """Add a user turn; each side answers its own conversation so far."""
    battle, turns = _locked(pk=battle.pk)
    if battle.is_voted:
        raise BattleError("This battle is over; start a new round.")
    _require_answers_ready(turns)
    _check_rate(actor, key="battles", per_minute=settings.ARENA_BATTLES_PER_MINUTE)
    backends.validate_messages([{"role": "user", "content": prompt}])
    user = actor.user if actor.user_id else None
    generations = []
    for side, contestant in (("a", battle.contestant_a), ("b", battle.contestant_b)):
        if contestant is None:
            generations.append(None)
            continue
        messages = [*side_conversation(turns, side), {"role": "user", "content": prompt}]
        generations.append(_side_request(battle, contestant, messages, user))
    battle.categories = hygiene.categorize(
        [{"role": "user", "content": t.user_message} for t in turns]
        + [{"role": "user", "content": prompt}]
    )
    battle.revision += 1  # a vote read before this turn is refused (arena.votes)
    battle.save(update_fields=["categories", "revision"])
    return BattleTurn.objects.create(
        battle=battle,
        index=len(turns),
        user_message=prompt,
        generation_a=generations[0],
        generation_b=generations[1],
    )


@transaction.atomic
def battle_regenerate(*, battle: Battle, actor: Actor) -> BattleTurn:
    """Draw both answers of the last turn again (same models, new samples), before the vote."""
    battle, turns = _locked(pk=battle.pk)
    if battle.is_voted:
        raise BattleError("This battle is over; start a new round.")
    last = turns[-1]
    if any(not g.is_finished for g in last.generations()):
        raise BattleError("Wait until both answers are complete.")
    user = actor.user if actor.user_id else None
    for field in ("generation_a", "generation_b"):
        old: Generation | None = getattr(last, field)
        if old is not None:
            setattr(
                last,
                field,
                _side_request(battle, old.contestant, old.messages, user),
            )
    last.save(update_fields=["generation_a", "generation_b"])
    battle.revision += 1  # a vote read before these answers is refused (arena.votes)
    battle.save(update_fields=["revision"])
    return last


def battle_cancel(*, battle: Battle, actor: Actor) -> int:
    """Withdraw the last turn's unfinished answers (the page's Cancel): one in line is never
    written, one being written stops within a moment and keeps the words it had. Returns how
    many were withdrawn; Regenerate asks again."""
    if battle.is_voted:
        raise BattleError("This battle is over; start a new round.")
    turn = battle.turns.select_related("generation_a", "generation_b").order_by("-index").first()
    withdrawn = sum(job_cancel(job=g) for g in turn.generations()) if turn else 0
    if not withdrawn:
        raise BattleError("Nothing is waiting any more: both answers are complete.")
    return withdrawn


# --- Voting -----------------------------------------------------------------------------------
def battle_vote(
    *, actor: Actor, winner: str, battle: Battle | None = None, public_id=None
) -> Battle:
    """Record the one vote of a battle and reveal the models. A second vote, a vote before
    both answers are complete, or on a failed answer, is refused and changes nothing.

    The battle is `battle`, or the one with `public_id` that belongs to the actor's user
    (Battle.DoesNotExist otherwise): the API votes by id without reading the battle first.
    The vote is two statements (arena.votes): the read, and a write that stores it only if the
    battle is still unvoted and its turns unchanged."""
    if winner not in Winner.values:
        raise BattleError(f"A vote is one of {', '.join(Winner.values)}; got {winner!r}.")
    if battle is not None:
        battle, turns = votes.read(pk=battle.pk)
    else:
        battle, turns = votes.read(public_id=public_id, user_id=actor.user_id)
    if battle.mode == BattleMode.DIRECT:
        raise BattleError("A direct chat has nothing to vote on.")
    if battle.is_voted:
        raise BattleError("This battle already has a vote.")
    _require_answers_ready(turns)
    _check_rate(actor, key="votes", per_minute=settings.ARENA_VOTES_PER_MINUTE)
    battle.winner = winner
    battle.voted_at = timezone.now()
    battle.style_a, battle.style_b = _style(turns, "a"), _style(turns, "b")
    battle.excluded_reason = _exclusion(battle, turns)
    recorded = votes.record(battle)
    if not recorded.stored:
        # Another vote, a continue or a regenerate came first: nothing was written.
        if Battle.objects.filter(pk=battle.pk).exclude(winner="").exists():
            raise BattleError("This battle already has a vote.")
        raise BattleError("The answers changed while you voted; read them again.")
    for side in (battle.contestant_a, battle.contestant_b):
        if side is not None and side.pk in recorded.elo:
            side.elo = recorded.elo[side.pk]
    if battle.is_counted:
        transaction.on_commit(_maybe_refresh_leaderboards)
    return battle


def _style(turns: list[BattleTurn], side: str) -> dict:
    """Style features of one side's answers, summed over the turns."""
    total: dict[str, int] = {}
    for turn in turns:
        generation = turn.generation_a if side == "a" else turn.generation_b
        for key, value in ratings.style_features(generation.output if generation else "").items():
            total[key] = total.get(key, 0) + value
    return total


def _exclusion(battle: Battle, turns: list[BattleTurn]) -> str:
    if battle.mode != BattleMode.ANONYMOUS:
        return Exclusion.NOT_ANONYMOUS
    if any(g.status == GenerationStatus.FAILED for t in turns for g in t.generations()):
        return Exclusion.GENERATION_FAILED
    terms = set()
    for contestant in (battle.contestant_a, battle.contestant_b):
        terms |= hygiene.identity_terms(
            contestant.name, contestant.display_name, organization=contestant.organization
        )
    answers = "\n".join(g.output for t in turns for g in t.generations())
    if hygiene.identity_leaks(answers, terms):
        return Exclusion.IDENTITY_REVEALED
    return ""


def _maybe_refresh_leaderboards() -> None:
    """Refit in the background after every N counted votes (counted in the cache), at most
    once every ARENA_REFRESH_MIN_INTERVAL_S: at hundreds of votes a second, every N votes
    would queue refits faster than a worker can fit them."""
    from arena.tasks import leaderboards_refresh

    count = _cache_count("arena:votes-since-refresh", timeout=None)
    if count % settings.ARENA_REFRESH_EVERY_VOTES:
        return
    if not cache.add("arena:refresh-asked", 1, timeout=settings.ARENA_REFRESH_MIN_INTERVAL_S):
        return
    try:
        leaderboards_refresh.delay()
    except Exception:  # noqa: BLE001 - a broker outage must not lose the vote
        cache.delete("arena:refresh-asked")
        cache.set("arena:refresh-missed", timezone.now().isoformat(), timeout=None)
