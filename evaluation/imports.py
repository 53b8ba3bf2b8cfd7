"""Imports of AlpacaEval files into a suite, so that published models sit beside ours:
`model_outputs.json` (answers of a published model, which our judges can then judge) and
`annotations.json` (a published judge's verdicts against the suite's baseline). Imported rows
are marked as imported and keep their generator names. Files are read with the pure readers of
`evaluation.alpaca_formats`; instructions are matched to the suite's prompts by prompt hash."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from django.db import IntegrityError, transaction

from arena.models import Contestant
from evaluation import alpaca_formats
from evaluation.models import Answer, Evaluation, Judgment, Order, Suite
from evaluation.suites import SuiteRefused, prompt_hash


def _read(reader, data: bytes, filename: str):
    suffix = ".json.gz" if filename.endswith(".gz") else ".json"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return reader(path)
        except alpaca_formats.AlpacaFormatError as exc:
            raise SuiteRefused(str(exc).replace(str(path), filename)) from None


def _check_generator(name: str) -> None:
    if Contestant.objects.filter(name=name).exists():
        raise SuiteRefused(
            f"{name!r} is the name of a registered contestant; imported models keep their "
            "published names, so rename the generator in the file."
        )


def _imported_answer(generator: str, instruction_hash: str, text: str) -> Answer:
    answer, created = Answer.objects.get_or_create(
        generator=generator,
        prompt_hash=instruction_hash,
        imported=True,
        defaults={"output": text},
    )
    if not created and answer.output != text:
        answer.output = text
        answer.save(update_fields=["output"])
    return answer


@transaction.atomic
def model_outputs_import(*, suite: Suite, data: bytes, filename: str = "model_outputs.json"):
    """Store a published model's answers to the suite's prompts. Returns {generator: count}."""
    outputs = _read(alpaca_formats.read_model_outputs, data, filename)
    hashes = set(suite.prompts.values_list("prompt_hash", flat=True))
    counts: dict[str, int] = {}
    for generator in {o.generator for o in outputs}:
        _check_generator(generator)
    for output in outputs:
        key = prompt_hash(output.instruction)
        if key in hashes:
            _imported_answer(output.generator, key, output.output)
            counts[output.generator] = counts.get(output.generator, 0) + 1
    if not counts:
        raise SuiteRefused(f"None of the file's instructions is a prompt of suite {suite.name}.")
    return counts


@transaction.atomic
def annotations_import(
    *, suite: Suite, data: bytes, filename: str = "annotations.json", judge_label: str = ""
) -> dict[str, int]:
    """Store a published judge's verdicts (output_1 = the baseline, output_2 = the model) as
    imported evaluations of the suite, then compute their metrics. Returns {generator: count}."""
    from evaluation.services import metrics_refresh

    annotations = _read(alpaca_formats.read_annotations, data, filename)
    prompts = {p.prompt_hash: p for p in suite.prompts.all()}
    annotators = {str(a.extra.get("annotator") or "alpaca_eval") for a in annotations}
    label = judge_label or "import:" + "+".join(sorted(annotators))
    counts: dict[str, int] = {}
    for generator in {a.generator_2 for a in annotations}:
        _check_generator(generator)
    for a in annotations:
        prompt = prompts.get(prompt_hash(a.instruction))
        if prompt is None:
            continue
        evaluation, _ = Evaluation.objects.get_or_create(
            suite=suite,
            judge_label=label,
            generator=a.generator_2,
            defaults={"imported": True},
        )
        answer = _imported_answer(a.generator_2, prompt.prompt_hash, a.output_2)
        try:
            with transaction.atomic():
                Judgment.objects.create(
                    evaluation=evaluation,
                    prompt=prompt,
                    order=Order.BASELINE_FIRST,
                    model_answer=answer,
                    baseline_output=a.output_1,
                    preference=None if math.isnan(a.preference) else a.preference,
                    weighted=not float(a.preference).is_integer(),
                    judge_output=str(a.extra.get("raw_completion") or "")[:2000],
                    template_version=str(a.extra.get("annotator") or "imported")[:50],
                )
        except IntegrityError:  # the same file imported twice
            continue
        counts[a.generator_2] = counts.get(a.generator_2, 0) + 1
    if not counts:
        raise SuiteRefused(f"No new verdict on a prompt of suite {suite.name} in the file.")
    metrics_refresh(suite=suite, judge_label=label)
    return counts
