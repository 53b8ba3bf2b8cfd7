"""The hyper-parameters a training run may set, one declarative table per run kind.

The form, the API and `manage.py train` all check a run's settings against this table before
anything is stored, so that a run is never queued with a value its trainer cannot use (a
learning rate of "abc", a trillion epochs, an int8 dtype). Each entry names its type, range,
default and help; `hyperparameters_clean` returns the typed values or every field's error.
The trainers' own dataclasses (`training/core`) keep their defaults for what is not set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SEED_MAX = 2**32 - 1  # numpy's and Python's generators are seeded with 32 bits as well
BIG = 10_000_000


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "int", "float", "bool", "str", "lora", "pair", "object"
    min: float | None = None
    max: float | None = None
    default: Any = None  # None: the trainer's own default
    choices: tuple[str, ...] = ()
    nullable: bool = False
    help: str = ""
    min_exclusive: bool = False


def _p(name: str, type_: str, lo=None, hi=None, **kw) -> Param:
    return Param(name, type_, lo, hi, **kw)


COMMON = (
    _p("learning_rate", "float", 0, 1, min_exclusive=True, help="AdamW's peak learning rate."),
    _p("num_epochs", "int", 1, 100, help="Passes over the snapshot."),
    _p("max_steps", "int", 1, BIG, nullable=True, help="Stop after this many steps."),
    _p("batch_size", "int", 1, 1024, help="Sequences per optimiser step and device."),
    _p("grad_accum_steps", "int", 1, 1024),
    _p("max_length", "int", 8, 131_072, nullable=True, help="Tokens per sequence."),
    _p("weight_decay", "float", 0, 1),
    _p("warmup_ratio", "float", 0, 1),
    _p("lr_scheduler", "str", choices=("linear", "cosine", "constant")),
    _p("max_grad_norm", "float", 0, 1e6, nullable=True, min_exclusive=True),
    _p("adam_betas", "pair", 0, 1, help="[beta1, beta2], each in [0, 1)."),
    _p("adam_eps", "float", 0, 1, min_exclusive=True),
    _p("seed", "int", 0, SEED_MAX),
    _p("shuffle", "bool"),
    _p("group_by_length", "bool"),
    _p("save_every", "int", 1, BIG, nullable=True, help="Checkpoint every this many steps."),
    _p("keep_checkpoints", "int", 1, 100, nullable=True),
    _p("log_every", "int", 1, BIG),
    _p("dtype", "str", choices=("float32", "bfloat16", "bf16", "float16", "fp16")),
    _p("bf16_autocast", "bool"),
    _p("gradient_checkpointing", "bool"),
    _p("lora", "lora", nullable=True, help="null, or {r, alpha, dropout, target_modules}."),
    _p("distributed_strategy", "str", choices=("ddp", "fsdp")),
)
_WEIGHT = {"lo": 0, "hi": 100, "nullable": True}
DPO = (
    _p("beta", "float", **_WEIGHT, help="The loss's temperature (IPO's tau, ORPO's lambda)."),
    _p("label_smoothing", "float", 0, 0.5, nullable=True),
    _p("alpha", "float", **_WEIGHT),
    _p("gamma", "float", **_WEIGHT),
    _p("desirable_weight", "float", **_WEIGHT),
    _p("undesirable_weight", "float", **_WEIGHT),
    _p("ref_batch_size", "int", 1, 1024, nullable=True),
    _p("pack_pairs", "bool"),
)
REWARD = (
    _p("eval_fraction", "float", 0, 0.9, help="Share of pairs held out for accuracy."),
    _p("center_rewards_coefficient", "float", 0, 10, nullable=True),
    _p("eval_batch_size", "int", 1, 1024),
    _p("pack_pairs", "bool"),
)
ROLLOUT = (
    _p("rollout_batch_size", "int", 1, 1024, help="Prompts sampled per step."),
    _p("ppo_epochs", "int", 1, 100),
    _p("max_prompt_length", "int", 8, 131_072),
    _p("max_new_tokens", "int", 1, 8192),
    _p("temperature", "float", 0, 2, min_exclusive=True),
    _p("top_p", "float", 0, 1, min_exclusive=True),
    _p("cliprange", "float", 0, 10),
    _p("verifier_args", "object", help="Arguments of the verifier."),
)
PPO = (
    _p("kl_coef", "float", 0, 10),
    _p("kl_target", "float", 0, 100, nullable=True, min_exclusive=True),
    _p("kl_horizon", "int", 1, BIG),
    _p("gamma", "float", 0, 1),
    _p("lam", "float", 0, 1),
    _p("cliprange_value", "float", 0, 10),
    _p("vf_coef", "float", 0, 100),
    _p("whiten_rewards", "bool"),
)
GRPO = (
    _p("group_size", "int", 2, 256, help="Answers sampled per prompt."),
    _p("beta", "float", 0, 10),
    _p("scale_rewards", "bool"),
    _p("loss_type", "str", choices=("grpo", "dapo")),
)
# Per kind, on top of the trainer's own defaults (sized for CPU demos).
_DEFAULTS = {
    "sft": {"learning_rate": 2e-5, "batch_size": 8, "num_epochs": 1, "max_length": 512},
    "reward": {"learning_rate": 1e-5, "batch_size": 8, "num_epochs": 1, "max_length": 512},
    # Enough to move a small model on a demo-sized snapshot (docs/training.md, "DPO defaults"):
    # 5e-7 for 3 steps left every greedy answer of SmolLM2-135M unchanged.
    "dpo": {
        "learning_rate": 1e-5,
        "batch_size": 4,
        "num_epochs": 2,
        "warmup_ratio": 0.1,
        "max_length": 512,
    },
    "ppo": {"learning_rate": 3e-6, "batch_size": 8, "rollout_batch_size": 8, "max_new_tokens": 64},
    "grpo": {
        "learning_rate": 3e-6,
        "batch_size": 8,
        "rollout_batch_size": 4,
        "max_new_tokens": 64,
    },
}


def _table(kind: str, *groups: tuple[Param, ...]) -> dict[str, Param]:
    table: dict[str, Param] = {}
    for group in groups:
        for param in group:  # a later group's entry wins (GRPO's beta over nothing, etc.)
            default = _DEFAULTS[kind].get(param.name, param.default)
            table[param.name] = Param(**{**param.__dict__, "default": default})
    return table


PARAMS: dict[str, dict[str, Param]] = {
    "sft": _table("sft", COMMON),
    "reward": _table("reward", COMMON, REWARD),
    "dpo": _table("dpo", COMMON, DPO),
    "ppo": _table("ppo", COMMON, ROLLOUT, PPO),
    "grpo": _table("grpo", COMMON, ROLLOUT, GRPO),
}


def defaults(kind: str) -> dict[str, Any]:
    """The values a run of this kind gets when it does not set them (beyond the trainer's)."""
    return {name: p.default for name, p in PARAMS[kind].items() if p.default is not None}


class ParamError(ValueError):
    """Some hyper-parameters are invalid; `errors` maps each field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ".join(f"{name}: {message}" for name, message in errors.items()))


def hyperparameters_clean(kind: str, values: object) -> dict[str, Any]:
    """The typed, range-checked hyper-parameters of a run of `kind`; ParamError names every
    field that is unknown, of the wrong type or out of range."""
    if not isinstance(values, dict):
        raise ParamError({"hyperparameters": "give the settings as an object of name: value."})
    table = PARAMS[kind]
    clean, errors = {}, {}
    for name, raw in values.items():
        param = table.get(name)
        if param is None:
            errors[str(name)] = f"not a setting of a {kind} run."
            continue
        try:
            clean[name] = _coerce(param, raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ParamError(errors)
    return clean


def _coerce(param: Param, raw: Any) -> Any:
    if raw is None:
        if param.nullable:
            return None
        raise ValueError("may not be null.")
    if param.choices:
        if raw not in param.choices:
            raise ValueError(f"must be one of {', '.join(param.choices)}; got {raw!r}.")
        return raw
    coerce = _COERCERS[param.type]
    return coerce(param, raw)


def _number(param: Param, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"must be a number; got {raw!r}.")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number; got {raw!r}.") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number.")
    _check_range(param, value)
    return value


def _check_range(param: Param, value: float) -> None:
    low_ok = param.min is None or (value > param.min if param.min_exclusive else value >= param.min)
    if not low_ok or (param.max is not None and value > param.max):
        low = "above" if param.min_exclusive else "at least"
        raise ValueError(f"must be {low} {param.min} and at most {param.max}; got {value:g}.")


def _int(param: Param, raw: Any) -> int:
    value = _number(param, raw)
    if not value.is_integer():
        raise ValueError(f"must be a whole number; got {raw!r}.")
    return int(value)


def _float(param: Param, raw: Any) -> float:
    return _number(param, raw)


def _bool(param: Param, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError(f"must be true or false; got {raw!r}.")


def _str(param: Param, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"must be text; got {raw!r}.")
    return raw


def _pair(param: Param, raw: Any) -> list[float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ValueError(f"must be a list of two numbers; got {raw!r}.")
    bounded = Param(param.name, "float", 0, 1)
    values = [_number(bounded, v) for v in raw]
    if any(v >= 1 for v in values):
        raise ValueError("each must be below 1.")
    return values


_LORA = {
    "r": Param("r", "int", 1, 1024),
    "alpha": Param("alpha", "float", 0, 4096, min_exclusive=True),
    "dropout": Param("dropout", "float", 0, 1),
}


def _lora(param: Param, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(
            f"must be null or an object {{r, alpha, dropout, target_modules}}; got {raw!r}."
        )
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "target_modules":
            names = [value] if isinstance(value, str) else value
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(n, str) for n in names)
            ):
                raise ValueError("target_modules must be a module name or a list of them.")
            clean[key] = value
        elif key in _LORA:
            try:
                clean[key] = _COERCERS[_LORA[key].type](_LORA[key], value)
            except ValueError as exc:
                raise ValueError(f"{key} {exc}") from None
        else:
            raise ValueError(f"{key!r} is not a LoRA setting (r, alpha, dropout, target_modules).")
    return clean


def _object(param: Param, raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ValueError(f"must be an object; got {raw!r}.")
    return raw


_COERCERS = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "str": _str,
    "pair": _pair,
    "lora": _lora,
    "object": _object,
}


@dataclass(frozen=True)
class RunRequest:
    """Everything a new run needs, checked once: the form, the API and the command build it
    (`training.services.run_request_build`) and `training_run_create` stores it."""

    kind: str
    base_model: Any  # arena.models.Contestant
    snapshot: Any  # annotation.models.DatasetSnapshot
    loss_type: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    reward_model: Any = None  # training.models.RewardModel
    verifier: str = ""
    eval_judge: Any = None  # training.models.RewardModel
    eval_suite: Any = None  # evaluation.models.Suite
