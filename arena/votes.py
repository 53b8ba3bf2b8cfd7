"""The statements of a vote, written by hand: the arena's hottest write.

A vote is two statements and no explicit transaction:
1. `read` fetches the battle, both sides and every turn with both answers in one SELECT, without
   a lock. The caller checks them and computes what the vote stores (style, exclusion).
2. `record` writes it in one statement, on the condition that nobody voted meanwhile and that
   the turns are those read (`Battle.revision`, which continue and regenerate raise). On
   PostgreSQL the same statement moves both sides' live Elo ratings when the vote counts: it
   locks the two rows in id order (no deadlocks), computes the step from their current values
   (`ratings.elo_update`'s rule, in SQL) and writes both. Elsewhere (SQLite, whose writers queue
   on one lock) the rating step is a second statement in the same transaction.

On PostgreSQL both are prepared statements of the connection (core.rows.run).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connections, transaction

from arena import ratings
from arena.models import Battle, BattleTurn, Contestant, Generation
from core.rows import RowReader, prep_save, run, set_prefetched

ALIAS = "default"
VOTE_FIELDS = ("winner", "voted_at", "style_a", "style_b", "excluded_reason")
BATTLE_FIELDS = [
    "id",
    "public_id",
    "mode",
    "contestant_a",
    "contestant_b",
    "user",
    "category",
    "winner",
    "excluded_reason",
    "revision",
]


@dataclass
class Recorded:
    """What `record` did: whether the vote was stored, and the sides' new Elo ratings."""

    stored: bool
    elo: dict[int, float]


class _Statements:
    def __init__(self, alias: str) -> None:
        connection = connections[alias]
        q = connection.ops.quote_name
        self.postgres = connection.vendor == "postgresql"
        # A row of the SELECT: battle, side A, side B, turn, answer A, answer B, each through
        # its reader (what the checks, the vote and its reply use; the rest stays deferred).
        side_fields = ["id", "name", "display_name", "organization"]
        turn_fields = ["id", "battle", "index", "user_message"]
        answer_fields = ["id", "contestant", "status", "output", "error"]
        self.readers = (
            RowReader(Battle, BATTLE_FIELDS, alias=alias),
            RowReader(Contestant, side_fields, table="ca", alias=alias),
            RowReader(Contestant, side_fields, table="cb", alias=alias),
            RowReader(BattleTurn, turn_fields, table="t", alias=alias),
            RowReader(Generation, answer_fields, table="ga", alias=alias),
            RowReader(Generation, answer_fields, table="gb", alias=alias),
        )
        self.bounds = [0]  # where each reader's columns start in the row
        for reader in self.readers:
            self.bounds.append(self.bounds[-1] + len(reader))
        columns = ", ".join(c for reader in self.readers for c in reader.columns)
        battle, contestant, turn, generation = (
            q(m._meta.db_table) for m in (Battle, Contestant, BattleTurn, Generation)
        )
        pk = q("id")
        # Identifiers only, quoted; every value is a parameter.
        select = (
            f"SELECT {columns} FROM {battle}"
            f" INNER JOIN {contestant} ca ON ca.{pk} = {battle}.{q('contestant_a_id')}"
            f" LEFT JOIN {contestant} cb ON cb.{pk} = {battle}.{q('contestant_b_id')}"
            f" LEFT JOIN {turn} t ON t.{q('battle_id')} = {battle}.{pk}"
            f" LEFT JOIN {generation} ga ON ga.{pk} = t.{q('generation_a_id')}"
            f" LEFT JOIN {generation} gb ON gb.{pk} = t.{q('generation_b_id')}"
        )
        order = f" ORDER BY t.{q('index')}"
        self.select_by_pk = f"{select} WHERE {battle}.{pk} = %s{order}"
        self.select_by_public_id = (
            f"{select} WHERE {battle}.{q('public_id')} = %s AND {battle}.{q('user_id')} = %s{order}"
        )
        sets = ", ".join(f"{q(name)} = %s" for name in VOTE_FIELDS)
        self.update = (
            f"UPDATE {battle} SET {sets}"
            f" WHERE {pk} = %s AND {q('winner')} = '' AND {q('revision')} = %s"
        )
        self._elo_statements(q, contestant)

    def _elo_statements(self, q, contestant: str) -> None:
        """The statements that move both sides' Elo ratings with a counted vote."""
        pk, elo, votes = q("id"), q("elo"), q("elo_votes")
        # One Elo step from the pair's current ratings (parameters: k, outcome for A, base,
        # scale, A's id, B's id, then A's id again), as ratings.elo_update takes it.
        step = (
            f"SELECT c.{pk} AS id, CASE WHEN c.{pk} = %s THEN c.{elo} + d.delta"
            f" ELSE c.{elo} - d.delta END AS elo FROM pair c CROSS JOIN ("
            f"SELECT %s * (%s - 1.0 / (1.0 + POWER(%s, (pb.{elo} - pa.{elo}) / %s))) AS delta"
            f" FROM pair pa, pair pb WHERE pa.{pk} = %s AND pb.{pk} = %s) d"
        )
        move = (
            f"UPDATE {contestant} SET {elo} = n.elo, {votes} = {contestant}.{votes} + 1"
            f" FROM ({step}) n WHERE {contestant}.{pk} = n.id"
            f" RETURNING {contestant}.{pk}, {contestant}.{elo}"
        )
        pair = f"SELECT {pk}, {elo} FROM {contestant} WHERE {pk} IN (%s, %s)"
        if self.postgres:
            self.update_counted = (
                f"WITH vote AS ({self.update} RETURNING {pk}),"
                f" pair AS ({pair} AND EXISTS (SELECT 1 FROM vote) ORDER BY {pk} FOR UPDATE),"
                f" moved AS ({move})"
                " SELECT moved.* FROM vote LEFT JOIN moved ON TRUE"
            )
        else:
            self.move = f"WITH pair AS ({pair}) {move}"


@functools.cache
def _statements(alias: str = ALIAS) -> _Statements:
    return _Statements(alias)


def read(*, pk=None, public_id=None, user_id=None) -> tuple[Battle, list[BattleTurn]]:
    """The battle by `pk`, or by `public_id` among `user_id`'s battles, with both sides and
    its turns in order with both answers (kept prefetched: `battle.turns.all()` reads no more).
    Raises Battle.DoesNotExist."""
    sql = _statements()
    if pk is not None:
        rows = run(sql.select_by_pk, [pk]).rows
    elif user_id is None:
        raise Battle.DoesNotExist("Only a signed-in user's own battles are found by id.")
    else:
        field = Battle._meta.get_field("public_id")
        value = field.get_db_prep_value(field.to_python(public_id), connections[ALIAS])
        rows = run(sql.select_by_public_id, [value, user_id]).rows
    if not rows:
        raise Battle.DoesNotExist("No battle matches.")

    def part(row, k: int):
        values = row[sql.bounds[k] : sql.bounds[k + 1]]
        return None if values[0] is None else sql.readers[k].read(values)

    battle = part(rows[0], 0)
    battle.contestant_a, battle.contestant_b = part(rows[0], 1), part(rows[0], 2)
    turns = []
    for row in rows:
        turn = part(row, 3)
        if turn is None:  # a battle without turns (an imported one)
            continue
        turn.battle = battle
        turn.generation_a, turn.generation_b = part(row, 4), part(row, 5)
        turns.append(turn)
    set_prefetched(battle, "turns", turns)
    return battle, turns


def record(battle: Battle) -> Recorded:
    """Store the vote set on `battle` (its VOTE_FIELDS) if it still has none and its turns
    are at the revision read; when it counts, move both sides' Elo ratings with it."""
    sql = _statements()
    values = prep_save(Battle, {name: getattr(battle, name) for name in VOTE_FIELDS})
    guard = [*values.values(), battle.pk, battle.revision]
    if not battle.is_counted:
        return Recorded(run(sql.update, guard).rowcount == 1, {})
    a, b = battle.contestant_a_id, battle.contestant_b_id
    step = [a, ratings.ELO_K, ratings.WINNER_OUTCOME[battle.winner], ratings.BASE]
    step += [ratings.SCALE, a, b]
    if sql.postgres:
        rows = run(sql.update_counted, [*guard, a, b, *step]).rows
        return Recorded(bool(rows), {pk: elo for pk, elo in rows if pk is not None})
    with transaction.atomic(using=ALIAS):
        if run(sql.update, guard).rowcount != 1:
            return Recorded(False, {})
        return Recorded(True, dict(run(sql.move, [a, b, *step]).rows))
