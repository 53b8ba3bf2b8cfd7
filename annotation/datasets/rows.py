"""The rows of a dataset, streamed out of the database in chunks: from rankings (preference,
KTO, SFT, HH), from demonstrations (SFT) and from arena votes. Each producer also fills the
`Stats` the dataset card is made of, in constant memory."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import NamedTuple

from django.db import connection
from django.db.models import Avg, TextField, Value
from django.db.models.functions import Cast, Coalesce

from annotation import quality
from annotation.datasets.columns import AnswerColumns, PairColumns, Unit
from annotation.datasets.spec import IMPORTED, Spec, Stats
from annotation.exports import formats, pairs
from annotation.models import (
    Completion,
    Demonstration,
    PairStrategy,
    Project,
    Prompt,
    Ranking,
    SnapshotStyle,
    TiesPolicy,
)
from arena.models import Contestant
from core.keyset import keyset_chunks

CHUNK = 1000  # rankings per database round trip: bounds memory, amortises the lookups


# --------------------------------------------------------------------------- which judgments


def judgment_filters(qs, spec: Spec):
    """The snapshot filters shared by rankings and demonstrations."""
    f = spec.filters
    if f.accepted_only:
        qs = qs.accepted()
    if f.date_from:
        qs = qs.filter(created_at__date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(created_at__date__lte=f.date_to)
    if f.categories:
        qs = qs.filter(prompt__category__in=f.categories)
    if f.guidelines_versions:
        qs = qs.filter(guidelines_version__in=f.guidelines_versions)
    if f.gold_min is not None:
        qs = qs.filter(annotator_id__in=_gold_passing(spec.project, f.gold_min))
    return qs


def rankings_queryset(spec: Spec):
    qs = Ranking.objects.filter(project=spec.project, is_gold=False).live()
    return judgment_filters(qs, spec)


def _gold_passing(project: Project, threshold: float):
    return (
        Ranking.objects.filter(project=project, is_gold=True, gold_score__isnull=False)
        .values("annotator_id")
        .annotate(score=Avg("gold_score"))
        .filter(score__gte=threshold)
        .values("annotator_id")
    )


# --------------------------------------------------------------------------- reading rankings


class Judgment(NamedTuple):
    id: int
    prompt_id: int
    item_id: int | None
    annotator: str
    groups: list
    labels: dict
    guidelines_version: int
    all_bad: bool


def _judgments(queryset) -> Iterator[list[Judgment]]:
    """The rankings of `queryset` ordered by prompt and item, `CHUNK * 2` at a time. The JSON
    columns come as text and each chunk's are decoded in one `json.loads` call: Django's
    per-value converters, or a call per value, cost more than the rest of the read."""
    rows = queryset.annotate(
        # Rankings without an item sort first on every database (NULLs do not).
        item_key=Coalesce("item_id", Value(0)),
        groups_text=Cast("groups", TextField()),
        labels_text=Cast("labels", TextField()),
    ).values_list(
        "id",
        "prompt_id",
        "item_id",
        "annotator__username",
        "groups_text",
        "labels_text",
        "guidelines_version",
        "all_bad",
    )
    chunks = keyset_chunks(
        rows, keys=("prompt_id", "item_key", "id"), key_of=_judgment_key, size=CHUNK * 2
    )
    for chunk in chunks:
        ids, prompt_ids, item_ids, who, groups, labels, versions, all_bad = zip(*chunk, strict=True)
        yield list(
            map(
                Judgment,
                ids,
                prompt_ids,
                item_ids,
                [w or IMPORTED for w in who],
                _json_list(groups),
                [{} if text == "{}" else json.loads(text) for text in labels],
                versions,
                all_bad,
            )
        )


def _judgment_key(row: tuple) -> tuple:
    return (row[1], row[2] or 0, row[0])


def _json_list(texts) -> list:
    """Many JSON texts decoded at once (one call instead of one per text)."""
    return json.loads("[" + ",".join(texts) + "]")


def _item_groups(queryset) -> Iterator[list[Judgment]]:
    """Rankings ordered by prompt and item, yielded one item's rankings at a time."""
    current: list[Judgment] = []
    key = None
    for chunk in _judgments(queryset):
        for judgment in chunk:
            if key != (judgment.prompt_id, judgment.item_id):
                if current:
                    yield current
                current, key = [], (judgment.prompt_id, judgment.item_id)
            current.append(judgment)
    if current:
        yield current


def _batches(groups: Iterator[list[Judgment]], size: int) -> Iterator[list[list[Judgment]]]:
    batch: list[list[Judgment]] = []
    count = 0
    for group in groups:
        batch.append(group)
        count += len(group)
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


class _Answer(NamedTuple):
    text: str
    model: str
    settings: str  # canonical JSON text


class _Prompt(NamedTuple):
    messages: list
    category: str
    text: str  # the prompt as one string, for the standard text formats


def _rows_where_in(table: str, columns: str, column: str, ids) -> list[tuple]:
    """PostgreSQL: `SELECT columns FROM table t WHERE t.column in ids` in one query, the ids
    travelling as one array parameter (`= ANY(%s)`): thousands of separate `IN` parameters
    cost more to build than the query takes to run."""
    with connection.cursor() as cursor:
        # Table and column names are this module's constants, never user input.
        sql = f"SELECT {columns} FROM {table} t WHERE t.{column} = ANY(%s::bigint[])"  # noqa: S608
        # An array literal: psycopg adapts a list of ints element by element, slowly.
        cursor.execute(sql, ["{" + ",".join(map(str, ids)) + "}"])
        return cursor.fetchall()


def _answer_rows(column: str, ids) -> list[tuple]:
    """(id, text, contestant id, settings as JSON text) of the answers whose `column` (`id` or
    `prompt_id`) is in `ids`."""
    if connection.vendor == "postgresql":
        return _rows_where_in(
            Completion._meta.db_table,
            "t.id, t.text, t.contestant_id, t.settings::text",
            column,
            ids,
        )
    return list(
        Completion.objects.filter(**{f"{column}__in": ids})
        .annotate(settings_text=Cast("settings", TextField()))
        .values_list("id", "text", "contestant_id", "settings_text")
    )


def _prompt_rows(ids) -> list[tuple]:
    """(id, messages as JSON text, category) of each prompt."""
    if connection.vendor == "postgresql":
        return _rows_where_in(
            Prompt._meta.db_table, "t.id, t.messages::text, t.category", "id", ids
        )
    return list(
        Prompt.objects.filter(pk__in=ids)
        .annotate(messages_text=Cast("messages", TextField()))
        .values_list("id", "messages_text", "category")
    )


def _canonical_settings() -> Callable[[str | None], str]:
    """Settings as canonical JSON text (sorted keys); they repeat from answer to answer, so
    each distinct text is decoded and dumped once."""
    seen: dict[str | None, str] = {}

    def canonical(raw: str | None) -> str:
        found = seen.get(raw)
        if found is None:
            value = json.loads(raw) if raw else None
            found = seen[raw] = json.dumps(value or {}, sort_keys=True)
        return found

    return canonical


def _lookups(batch: list[list[Judgment]], names: dict, *, columnar: bool):
    """The answers and prompts one batch of rankings needs: answers as `AnswerColumns`
    (columnar) or {id: _Answer}, prompts as {id: _Prompt}; `names` caches contestant names.

    Answers are read by prompt (a batch's prompts are few and their answers sit together in
    the prompt index: far cheaper than one index probe per answer), then any answer a
    ranking names from another prompt by id."""
    prompt_ids = {group[0].prompt_id for group in batch}
    rows = _answer_rows("prompt_id", prompt_ids)
    found = {row[0] for row in rows}
    missing = {m for group in batch for j in group for g in j.groups for m in g} - found
    if missing:
        rows += _answer_rows("id", missing)
    ids, text, contestant, raw = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
    )
    unknown = set(contestant) - names.keys() - {None}
    if unknown:
        names.update(Contestant.objects.filter(pk__in=unknown).values_list("id", "name"))
    model = [names[c] if c is not None else "" for c in contestant]
    settings = list(map(_canonical_settings(), raw))
    if columnar:
        answers = AnswerColumns(ids, text, model, settings)
    else:
        answers = {
            pk: _Answer(*values) for pk, *values in zip(ids, text, model, settings, strict=True)
        }
    rows = _prompt_rows(prompt_ids)
    prompts = {
        pk: _Prompt(messages, category, formats.messages_text(messages))
        for (pk, _, category), messages in zip(
            rows, _json_list(raw for _, raw, _ in rows), strict=True
        )
    }
    return answers, prompts


def _agreement(group: list[Judgment], stats: Stats) -> float | None:
    """Pairwise agreement among the annotators of one item (None with a single annotator)."""
    if len(group) < 2:
        return None
    by_annotator = {j.annotator if j.annotator != IMPORTED else j.id: j.groups for j in group}
    if len(by_annotator) < 2:
        return None
    result = quality.pairwise_agreement({0: by_annotator})
    stats.items_shared += 1
    stats.agree += round((result.rate or 0.0) * result.comparisons)
    stats.compared += result.comparisons
    return result.rate


# --------------------------------------------------------------------------- ranking rows


def ranking_rows(spec: Spec, queryset, stats: Stats, *, margin: bool) -> Iterator:
    """Rows (dicts) of `spec`, or, for standard preference pairs (the bulk of large exports),
    one Arrow record batch per chunk of rankings built column by column."""
    last_prompt = None
    min_agreement = spec.filters.min_agreement
    columnar = spec.format == "preference" and spec.style == SnapshotStyle.STANDARD
    names: dict[int, str] = {}  # contestant names, read once
    for batch in _batches(_item_groups(queryset), CHUNK):
        answers, prompts = _lookups(batch, names, columnar=columnar)
        collector = (
            PairColumns(
                strategy=PairStrategy.ALL if spec.pairs == PairStrategy.CONSENSUS else spec.pairs,
                keep_ties=spec.ties == TiesPolicy.KEEP,
                margin=margin,
            )
            if columnar
            else None
        )
        for group in batch:
            rate = _agreement(group, stats)
            if min_agreement is not None and (rate is None or rate < min_agreement):
                continue
            prompt_id = group[0].prompt_id
            if prompt_id != last_prompt:
                stats.prompts += 1
                last_prompt = prompt_id
            prompt = prompts[prompt_id]
            stats.judgments += len(group)
            stats.categories[prompt.category or "(none)"] += 1
            for j in group:
                stats.annotators[j.annotator] += 1
                stats.guidelines_versions.add(j.guidelines_version)
            if collector is None:
                yield from _group_rows(spec, group, answers, prompt, stats, margin)
                continue
            for groups, judgments in _units(spec, group):
                collector.add(
                    groups,
                    Unit(
                        prompt.text,
                        prompt_id,
                        [j.id for j in judgments],
                        [j.annotator for j in judgments],
                        max(j.guidelines_version for j in judgments),
                        prompt.category,
                    ),
                    judgments[0].labels if len(judgments) == 1 else {},
                )
        if collector is not None and len(collector):
            yield collector.batch(answers, stats)


def _units(spec: Spec, group: list[Judgment]) -> list[tuple[list, list[Judgment]]]:
    """(tie groups, the judgments behind them): one per ranking, or one consensus per item."""
    if spec.pairs == PairStrategy.CONSENSUS:
        return [(pairs.consensus_groups([j.groups for j in group]), group)]
    return [(j.groups, [j]) for j in group]


def _group_rows(spec, group, answers, prompt: _Prompt, stats, margin) -> Iterator[dict]:
    messages = prompt.messages
    for groups, judgments in _units(spec, group):
        base = {
            "prompt_id": group[0].prompt_id,
            "ranking_ids": [j.id for j in judgments],
            "annotators": [j.annotator for j in judgments],
            "guidelines_version": max(j.guidelines_version for j in judgments),
            "category": prompt.category,
        }
        if spec.format in ("preference", "hh"):
            yield from _pair_rows(spec, groups, judgments, answers, messages, base, stats, margin)
        elif spec.format == "kto":
            yield from _kto_rows(spec, groups, judgments, answers, messages, base, stats)
        else:  # sft: the best answer of each ranking
            if judgments[0].all_bad or not groups:
                continue
            best = answers[groups[0][0]]
            stats.models[best.model or "(human)"] += 1
            yield {
                **formats.sft_row(messages, best.text, style=spec.style),
                **base,
                "completion_id": groups[0][0],
                "demonstration_id": None,
                "model": best.model,
                "settings": best.settings,
            }


def _pair_rows(spec, groups, judgments, answers, messages, base, stats, margin):
    if spec.pairs == PairStrategy.CONSENSUS:
        expanded = pairs.strict_pairs(groups) + (
            pairs.tie_pairs(groups) if spec.ties == TiesPolicy.KEEP else []
        )
    else:
        expanded = pairs.ranking_pairs(groups, strategy=spec.pairs, ties=spec.ties)
    labels = judgments[0].labels if len(judgments) == 1 else {}
    for pair in expanded:
        chosen, rejected = answers[pair.chosen], answers[pair.rejected]
        if spec.format == "hh":
            row = formats.hh_row(messages, chosen.text, rejected.text)
        else:
            row = formats.preference_row(messages, chosen.text, rejected.text, style=spec.style)
        row.update(base)
        row.update(
            chosen_id=pair.chosen,
            rejected_id=pair.rejected,
            chosen_model=chosen.model,
            rejected_model=rejected.model,
            chosen_settings=chosen.settings,
            rejected_settings=rejected.settings,
            tie=pair.tie,
        )
        if margin:
            row["margin"] = pairs.margin(labels, pair) or 0.0
        stats.labels["tie" if pair.tie else "strict"] += 1
        for model in {chosen.model, rejected.model}:
            stats.models[model or "(human)"] += 1
        yield row


def _kto_rows(spec, groups, judgments, answers, messages, base, stats):
    """The best group is desirable and the worst undesirable; with `all_bad` every answer is
    undesirable. Middle groups say too little on their own and are left out."""
    if judgments[0].all_bad:
        marked = [(m, False) for g in groups for m in g]
    elif len(groups) >= 2:
        marked = [(m, True) for m in groups[0]] + [(m, False) for m in groups[-1]]
    else:
        marked = []
    for member, label in marked:
        answer = answers[member]
        stats.labels[str(label).lower()] += 1
        stats.models[answer.model or "(human)"] += 1
        yield {
            **formats.kto_row(messages, answer.text, label, style=spec.style),
            **base,
            "completion_id": member,
            "demonstration_id": None,
            "model": answer.model,
            "settings": answer.settings,
        }


# --------------------------------------------------------------------------- other sources


def demonstration_rows(spec: Spec, stats: Stats) -> Iterator[dict]:
    qs = judgment_filters(Demonstration.objects.filter(project=spec.project).live(), spec)
    rows = qs.values_list(
        "id",
        "prompt_id",
        "annotator__username",
        "text",
        "edited_from_id",
        "guidelines_version",
        "prompt__messages",
        "prompt__category",
        "source",
    )
    last_prompt = None
    chunks = keyset_chunks(
        rows, keys=("prompt_id", "id"), key_of=lambda row: (row[1], row[0]), size=CHUNK
    )
    for (
        pk,
        prompt_id,
        who,
        text,
        edited,
        version,
        messages,
        category,
        source,
    ) in itertools.chain.from_iterable(chunks):
        who = who or (f"{IMPORTED} {source}".strip() if source else IMPORTED)
        if prompt_id != last_prompt:
            stats.prompts, last_prompt = stats.prompts + 1, prompt_id
        stats.judgments += 1
        stats.annotators[who] += 1
        stats.guidelines_versions.add(version)
        stats.categories[category or "(none)"] += 1
        yield {
            **formats.sft_row(messages, text, style=spec.style),
            "prompt_id": prompt_id,
            "completion_id": edited,
            "demonstration_id": pk,
            "model": "",
            "settings": "{}",
            "ranking_ids": [],
            "annotators": [who],
            "guidelines_version": version,
            "category": category,
        }


def arena_rows(spec: Spec, stats: Stats) -> Iterator[dict]:
    from arena.battle_io import battle_export_rows
    from arena.models import Battle

    f = spec.filters
    qs = Battle.objects.counted()
    if f.date_from:
        qs = qs.filter(voted_at__date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(voted_at__date__lte=f.date_to)
    if f.categories:
        qs = qs.filter(category__in=f.categories)
    for row in battle_export_rows(qs):
        stats.judgments += 1
        stats.labels[row["winner"]] += 1
        stats.models[row["model_a"]] += 1
        stats.models[row["model_b"]] += 1
        stats.categories[row["category"] or "(none)"] += 1
        yield row
