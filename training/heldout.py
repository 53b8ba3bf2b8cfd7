"""What keeps a policy run's evaluation honest: the judge's accuracy on pairs it never trained
on (with its 95% interval), and prompts compared by hash so that neither the judge nor the
report's prompts overlap the run's training data.

A prompt's hash is `evaluation.suites.prompt_hash` (the annotation import's duplicate rule:
whitespace and letter case ignored); a snapshot row's prompt is its `prompt` (text or chat
messages up to the last user turn), as the trainers read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


def heldout_fields(summary: dict) -> dict:
    """The `RewardModel` held-out fields from a reward run's final metrics (`eval/accuracy`,
    its Wilson interval and `eval/pairs`, as `training.core.reward.heldout_metrics` logs them).
    Empty values when the run held nothing out."""
    accuracy, pairs = summary.get("eval/accuracy"), summary.get("eval/pairs")
    if not isinstance(accuracy, int | float):
        return {
            "heldout_accuracy": None,
            "heldout_accuracy_low": None,
            "heldout_accuracy_high": None,
            "heldout_pairs": None,
        }
    n = int(pairs) if isinstance(pairs, int | float) else None
    low, high = summary.get("eval/accuracy_low"), summary.get("eval/accuracy_high")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        from training.core.reward import wilson_interval  # torch: only when needed

        low, high = wilson_interval(accuracy * n, n) if n else (None, None)
    return {
        "heldout_accuracy": float(accuracy),
        "heldout_accuracy_low": low,
        "heldout_accuracy_high": high,
        "heldout_pairs": n,
    }


def row_prompt(row: dict):
    """A snapshot row's prompt: its `prompt`, or the conversation up to its last user turn."""
    if row.get("prompt"):
        return row["prompt"]
    conversation = row.get("messages") or row.get("chosen")
    if isinstance(conversation, list):
        last_user = max(
            (i for i, m in enumerate(conversation) if m.get("role") == "user"), default=None
        )
        return conversation[: last_user + 1] if last_user is not None else None
    return None


def hash_of_prompt(prompt) -> str | None:
    """The prompt's hash: text counts as one user turn, and a system message is left out, so a
    suite's instruction and the same single-turn chat prompt hash alike."""
    from annotation.imports import messages_hash

    if isinstance(prompt, str):
        return messages_hash([{"role": "user", "content": prompt}]) if prompt.strip() else None
    if isinstance(prompt, list) and prompt:
        try:
            turns = [
                {"role": m["role"], "content": str(m["content"])}
                for m in prompt
                if m.get("role") != "system"
            ]
        except (AttributeError, KeyError, TypeError):
            return json.dumps(prompt, sort_keys=True)
        return messages_hash(turns) if turns else None
    return None


def snapshot_prompt_hashes(snapshot) -> set[str]:
    """The hashes of every prompt a run on `snapshot` trains on."""
    from training.services import snapshot_rows

    hashes = (hash_of_prompt(row_prompt(row)) for row in snapshot_rows(snapshot))
    return {h for h in hashes if h}


@dataclass(frozen=True)
class Overlap:
    """Prompts of a run's snapshot shared with another prompt set; `known` is false when the
    other set cannot be read (a judge registered without a training run)."""

    known: bool
    shared: int = 0
    source: str = ""


def judge_overlap(judge, snapshot, run_hashes: set[str] | None = None) -> Overlap:
    """How many prompts of `snapshot` the judge trained on (its reward run's snapshot)."""
    run = getattr(judge, "run", None)
    if run is None or run.snapshot_id is None:
        return Overlap(known=False)
    source = f"dataset snapshot #{run.snapshot_id}"
    if run.snapshot_id == snapshot.pk:
        hashes = run_hashes if run_hashes is not None else snapshot_prompt_hashes(snapshot)
        return Overlap(known=True, shared=len(hashes), source=source)
    run_hashes = run_hashes if run_hashes is not None else snapshot_prompt_hashes(snapshot)
    return Overlap(
        known=True,
        shared=len(run_hashes & snapshot_prompt_hashes(run.snapshot)),
        source=source,
    )


def judge_overlap_error(judge, overlap: Overlap, snapshot) -> str:
    return (
        f"Judge {judge.name} was trained on {overlap.source}, which shares {overlap.shared} "
        f"prompt{'s' if overlap.shared != 1 else ''} with this run's dataset snapshot "
        f"#{snapshot.pk}: it would judge answers to prompts it learned from. Choose a judge "
        "trained on other prompts."
    )


UNKNOWN_JUDGE_DATA = (
    "Judge {name} was not trained by a run of this platform, so whether its training data "
    "overlaps this run's prompts is unknown."
)


def suite_split(suite, run_hashes: set[str]) -> tuple[list, int]:
    """The suite's prompts the run did not train on, and how many were dropped."""
    prompts = list(suite.prompts.order_by("index"))
    kept = [p for p in prompts if p.prompt_hash not in run_hashes]
    return kept, len(prompts) - len(kept)


def evaluation_validate(*, kind: str, snapshot, eval_judge, eval_suite, reward_model) -> None:
    """Refuse an evaluation report that could not be trusted: a judge trained on prompts of the
    run's snapshot, or a suite whose every prompt the run trains on (RunError says why)."""
    from training.models import RunKind
    from training.validation import RunError

    if kind == RunKind.REWARD:
        raise RunError("A reward-model run has no policy to evaluate; leave out eval_judge.")
    if eval_judge is not None and not eval_judge.is_active:
        raise RunError(f"Judge {eval_judge.name} is not active.")
    if eval_judge is not None and reward_model is not None and eval_judge.pk == reward_model.pk:
        raise RunError(
            "The evaluation judge must be held out: not the judge the run trains against."
        )
    if eval_judge is None or eval_suite is None:
        raise RunError(
            "An evaluation report needs both an evaluation judge (eval_judge) and an "
            "evaluation suite (eval_suite) of prompts this run does not train on."
        )
    run_hashes = snapshot_prompt_hashes(snapshot)
    overlap = judge_overlap(eval_judge, snapshot, run_hashes)
    if overlap.known and overlap.shared:
        raise RunError(judge_overlap_error(eval_judge, overlap, snapshot))
    kept, dropped = suite_split(eval_suite, run_hashes)
    if not kept:
        raise RunError(
            f"All {dropped} prompts of suite {eval_suite.name} are prompts this run trains on; "
            "choose a suite of other prompts."
        )
