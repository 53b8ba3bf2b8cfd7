"""Checks of a training run's request before anything is queued: the run kind against its
dataset snapshot, the loss, the hyper-parameters (typed and ranged by `params.py`, then the
trainer's own config), the reward model or verifier of RL runs and the evaluation judge and
suite. `services.training_run_create` calls them; the form, API and `manage.py train` reach them
through it.
"""

from __future__ import annotations

import dataclasses

from django.conf import settings

from annotation.models import SnapshotFormat, SnapshotStatus
from arena.models import Contestant
from training import params
from training.models import RL_KINDS, RunKind
from training.params import ParamError, RunRequest

# What each kind of run reads from a dataset snapshot (its export format).
SNAPSHOT_FORMATS = {
    RunKind.SFT: (SnapshotFormat.SFT,),
    RunKind.REWARD: (SnapshotFormat.PREFERENCE,),
    RunKind.DPO: (SnapshotFormat.PREFERENCE, SnapshotFormat.KTO),
    # PPO/GRPO read prompts (and reference answers for verifiers) from either.
    RunKind.PPO: (SnapshotFormat.SFT, SnapshotFormat.PREFERENCE),
    RunKind.GRPO: (SnapshotFormat.SFT, SnapshotFormat.PREFERENCE),
}
# Defaults per kind, on top of the trainer's own dataclass defaults (sized for CPU demos).
DEFAULTS = {kind: params.defaults(kind) for kind in params.PARAMS}
# Settings a run may not choose: the platform decides where files go and how progress flows.
RESERVED = {"cache_dir", "device", "num_threads", "reward_model", "verifier"}


class RunError(Exception):
    """A run cannot be started or changed; the message says why."""


class RunSettingsError(RunError):
    """Some hyper-parameters are invalid; `errors` maps each field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(str(ParamError(errors)))


def _trainer(kind: str):
    from training.core import launch

    return launch.trainer(kind)


def loss_types() -> list[str]:
    from training.core.losses import LOSS_DEFAULTS

    return sorted(LOSS_DEFAULTS)


def verifier_names() -> list[str]:
    from training.core.verifiers import VERIFIERS

    return sorted(VERIFIERS)


def run_config(
    *, kind: str, loss_type: str, hyperparameters: dict, reward_path: str = "", verifier: str = ""
):
    """The trainer's config dataclass for these settings; RunError names a bad field."""
    config_cls, _ = _trainer(kind)
    values = {**DEFAULTS[kind], **hyperparameters}
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known) + sorted(set(values) & RESERVED)
    if unknown:
        raise RunError(f"Unknown or reserved settings for a {kind} run: {', '.join(unknown)}.")
    if kind == RunKind.DPO:
        values["loss_type"] = loss_type or "sigmoid"
    if kind in RL_KINDS:
        values |= {"reward_model": reward_path or None, "verifier": verifier or None}
    try:
        config = config_cls(**values)
        if kind == RunKind.DPO:
            config.loss_params()
    except (TypeError, ValueError) as exc:
        raise RunError(f"Invalid settings: {exc}") from None
    for name in ("learning_rate", "batch_size", "num_epochs"):
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise RunError(f"{name} must be positive.")
    config.num_threads = settings.TORCH_NUM_THREADS
    return config


def training_run_validate(
    *,
    kind: str,
    base_model: Contestant,
    snapshot,
    loss_type: str,
    hyperparameters: dict,
    reward_model=None,
    verifier: str = "",
    eval_judge=None,
    eval_suite=None,
) -> None:
    """Refuse invalid combinations before anything is queued."""
    if kind not in SNAPSHOT_FORMATS:
        raise RunError(f"Unknown run kind {kind!r}; choose one of {', '.join(SNAPSHOT_FORMATS)}.")
    if not base_model.is_local:
        raise RunError(f"{base_model.display_name} has no local weights to train from.")
    if snapshot.status != SnapshotStatus.READY:
        raise RunError("The dataset snapshot is not ready yet.")
    if snapshot.format not in SNAPSHOT_FORMATS[kind]:
        wanted = " or ".join(SNAPSHOT_FORMATS[kind])
        raise RunError(f"A {kind} run needs a {wanted} snapshot; this one is {snapshot.format}.")
    if kind == RunKind.DPO:
        if loss_type and loss_type not in loss_types():
            raise RunError(f"Unknown loss {loss_type!r}; choose one of {', '.join(loss_types())}.")
        if (snapshot.format == SnapshotFormat.KTO) != (loss_type == "kto"):
            raise RunError("The KTO loss trains on a kto snapshot, the other losses on pairs.")
    elif loss_type:
        raise RunError("Only DPO-family runs take a loss type.")
    if kind in RL_KINDS:
        if bool(reward_model) == bool(verifier):
            raise RunError("A PPO or GRPO run needs exactly one reward: a judge or a verifier.")
        if verifier and verifier not in verifier_names():
            raise RunError(
                f"Unknown verifier {verifier!r}; choose one of {', '.join(verifier_names())}."
            )
    elif reward_model or verifier:
        raise RunError("Only PPO and GRPO runs take a judge or a verifier.")
    if eval_judge is not None or eval_suite is not None:
        from training.heldout import evaluation_validate

        evaluation_validate(
            kind=kind,
            snapshot=snapshot,
            eval_judge=eval_judge,
            eval_suite=eval_suite,
            reward_model=reward_model,
        )
    run_config(
        kind=kind,
        loss_type=loss_type,
        hyperparameters=hyperparameters,
        reward_path=reward_model.path if reward_model else "",
        verifier=verifier,
    )


def run_request_build(
    *,
    kind: str,
    base_model: Contestant,
    snapshot,
    loss_type: str = "",
    hyperparameters: object = None,
    reward_model=None,
    verifier: str = "",
    eval_judge=None,
    eval_suite=None,
) -> RunRequest:
    """A checked request for a new run. Hyper-parameters are typed and range-checked against
    `training.params` (RunSettingsError names each bad field); the combination is checked by
    `training_run_validate` (RunError says why)."""
    if kind not in params.PARAMS:
        raise RunError(f"Unknown run kind {kind!r}; choose one of {', '.join(params.PARAMS)}.")
    try:
        clean = params.hyperparameters_clean(
            kind, {} if hyperparameters is None else hyperparameters
        )
    except ParamError as exc:
        raise RunSettingsError(exc.errors) from None
    request = RunRequest(
        kind=kind,
        base_model=base_model,
        snapshot=snapshot,
        loss_type=loss_type,
        hyperparameters=clean,
        reward_model=reward_model,
        verifier=verifier,
        eval_judge=eval_judge,
        eval_suite=eval_suite,
    )
    training_run_validate(**{f.name: getattr(request, f.name) for f in dataclasses.fields(request)})
    return request
