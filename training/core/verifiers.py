"""Reward functions for PPO and GRPO: verifiable rewards (RLVR) and a reward-model adapter.

A verifier scores a batch of completions against their rows:
`fn(completions, rows, **args) -> list[float]`. Register your own with `@register_verifier`;
trainers look verifiers up by name (`config.verifier`, with `config.verifier_args`).

- `exact_match`: the final answer of the completion equals the row's `answer` (1.0 or 0.0).
- `contains`: 1.0 when the completion contains `word` (a toy reward for tests and demos).
- `python_tests`: runs the completion's code with the row's `tests` in a subprocess with a
  timeout and CPU, memory and output limits; the reward is the fraction of tests that pass (0
  when the code fails to run or overruns a limit).
- `reward_model_reward`: the score of a trained reward model (`reward.score`).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

try:
    import resource
except ImportError:  # not POSIX: no resource limits, the timeout still applies
    resource = None  # type: ignore[assignment]

Row = dict[str, Any]
Verifier = Callable[..., list[float]]
RewardFn = Callable[[list[str], list[Row]], list[float]]

VERIFIERS: dict[str, Verifier] = {}


def register_verifier(name: str) -> Callable[[Verifier], Verifier]:
    """Decorator: make `fn` available to the trainers as `config.verifier = name`."""

    def wrap(fn: Verifier) -> Verifier:
        VERIFIERS[name] = fn
        return fn

    return wrap


def get_verifier(name: str) -> Verifier:
    try:
        return VERIFIERS[name]
    except KeyError:
        raise ValueError(f"unknown verifier {name!r}; one of {sorted(VERIFIERS)}") from None


# --------------------------------------------------------------------------- exact match

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def extract_answer(text: str) -> str:
    """The final answer of a text: after GSM8K's `####`, inside the last `\\boxed{}`, else the
    last number, else the stripped text."""
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    boxed = _BOXED.findall(text)
    if boxed:
        text = boxed[-1]
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1]
    return text.strip().rstrip(".").strip()


def _as_number(text: str) -> float | None:
    text = text.replace(",", "").strip()
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str, expected: str) -> bool:
    """Numbers compare by value (`1,000` == `1000.0`), anything else case-insensitively."""
    a, b = _as_number(predicted), _as_number(expected)
    if a is not None and b is not None:
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))
    return predicted.strip().lower() == expected.strip().lower()


@register_verifier("exact_match")
def exact_match(
    completions: Sequence[str], rows: Sequence[Row], answer_key: str = "answer"
) -> list[float]:
    """1.0 when the completion's final answer equals the row's answer, else 0.0."""
    return [
        float(answers_match(extract_answer(c), extract_answer(str(r[answer_key]))))
        for c, r in zip(completions, rows, strict=True)
    ]


@register_verifier("contains")
def contains(
    completions: Sequence[str],
    rows: Sequence[Row],
    word: str = "",
    case_sensitive: bool = False,
) -> list[float]:
    """1.0 when the completion contains `word` as a whole word (toy reward), else 0.0."""
    if not word:
        raise ValueError("the `contains` verifier needs a `word`")
    flags = 0 if case_sensitive else re.IGNORECASE
    pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", flags)
    return [float(bool(pattern.search(c))) for c in completions]


# --------------------------------------------------------------------------- code

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)

# Runs inside the subprocess: blocks sockets, runs the candidate, then each test on its own,
# and prints the number passed as the last line. Tests run in one process for speed; a test
# that hangs is caught by the timeout, which scores the whole candidate 0.
_HARNESS = """
import json, socket, sys
def _blocked(*a, **k):
    raise OSError("network access is disabled")
socket.socket = _blocked
socket.create_connection = _blocked
spec = json.load(open(sys.argv[1], encoding="utf-8"))
env = {"__name__": "__candidate__"}
passed = 0
try:
    exec(compile(spec["code"], "candidate.py", "exec"), env)
except BaseException:
    print(json.dumps({"passed": 0}))
    sys.exit(0)
for test in spec["tests"]:
    try:
        exec(compile(test, "test.py", "exec"), dict(env))
        passed += 1
    except BaseException:
        pass
print(json.dumps({"passed": passed}))
"""


def extract_code(text: str) -> str:
    """The last fenced Python block of a completion, or the whole text when it has none."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else text


def _limit_resources(cpu_seconds: int, memory_bytes: int) -> Callable[[], None]:
    """What the child runs between fork and exec: caps on CPU time (SIGXCPU kills it), address
    space (allocations fail with MemoryError), file size and core dumps. Everything is looked
    up here, in the parent: after a fork only plain system calls are safe."""
    wanted = [
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_FSIZE, 16 << 20),
        (resource.RLIMIT_CORE, 0),
    ]
    limits = []
    for which, value in wanted:
        _, hard = resource.getrlimit(which)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        limits.append((which, (soft, soft)))

    def apply() -> None:
        for which, pair in limits:
            resource.setrlimit(which, pair)

    return apply


# The child's whole environment: nothing of the trainer's (tokens, paths) reaches it. One
# thread for numeric libraries, whose per-thread buffers would otherwise hit the memory cap.
_CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_python_tests(
    code: str, tests: Sequence[str], timeout: float = 5.0, memory_mb: int = 1024
) -> float:
    """Fraction of `tests` (Python snippets, e.g. `assert f(2) == 4`) that pass after `code`.

    Runs `python -I` (isolated: no user site, no PYTHON* variables) in a fresh temporary folder
    with an empty environment and sockets disabled, at most `timeout` seconds (wall-clock and
    CPU), `memory_mb` of address space and 16 MB of output (limits on POSIX). Any failure
    (syntax error, crash, timeout, memory error, garbled output) scores 0. This keeps honest
    mistakes contained; it is not a sandbox against hostile code (run untrusted workloads in a
    container).
    """
    if not tests:
        return 0.0
    preexec = None
    if resource is not None:
        preexec = _limit_resources(max(1, math.ceil(timeout)), memory_mb << 20)
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"code": code, "tests": list(tests)}), encoding="utf-8")
        harness = Path(tmp) / "harness.py"
        harness.write_text(_HARNESS)
        out = Path(tmp) / "out.txt"
        argv = [sys.executable, "-I", str(harness), str(spec)]
        if not _run_child(argv, tmp, out, timeout, preexec):
            return 0.0
        lines = out.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    try:
        passed = int(json.loads(lines[-1])["passed"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0
    return min(max(passed, 0), len(tests)) / len(tests)


def _run_child(
    argv: list[str], cwd: str, out: Path, timeout: float, preexec: Callable[[], None] | None
) -> bool:
    """Run the child with stdout to `out` (a file: the size cap bounds it, not our memory);
    True when it exited cleanly in time. A late child is killed with all it started."""
    try:
        with out.open("wb") as fh:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=_CHILD_ENV,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed whole on a timeout
                preexec_fn=preexec,  # noqa: PLW1509 - only setrlimit calls, prepared here
            )
    except OSError:
        return False
    try:
        return proc.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return False


@register_verifier("python_tests")
def python_tests(
    completions: Sequence[str],
    rows: Sequence[Row],
    tests_key: str = "tests",
    timeout: float = 5.0,
    memory_mb: int = 1024,
) -> list[float]:
    """Fraction of the row's `tests` (a list of snippets, or one string) that the code passes;
    0 for code that fails to run, overruns `timeout` seconds or `memory_mb`."""
    out = []
    for completion, row in zip(completions, rows, strict=True):
        tests = row[tests_key]
        tests = [tests] if isinstance(tests, str) else list(tests)
        out.append(run_python_tests(extract_code(completion), tests, timeout, memory_mb))
    return out


# --------------------------------------------------------------------------- reward model


def row_prompt(row: Row) -> str | list[dict[str, str]]:
    """A row's prompt: `prompt` (text or messages), or `messages` without a final answer."""
    if "prompt" in row:
        return row["prompt"]
    messages = list(row["messages"])
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    return messages


def reward_model_reward(model: torch.nn.Module, tokenizer: Any, batch_size: int = 32) -> RewardFn:
    """A reward function that scores (prompt, completion) with a reward model."""
    from training.core.reward import score

    def fn(completions: list[str], rows: list[Row]) -> list[float]:
        pairs = []
        for completion, row in zip(completions, rows, strict=True):
            prompt = row_prompt(row)
            answer: Any = completion
            if isinstance(prompt, list):
                answer = [{"role": "assistant", "content": completion}]
            pairs.append((prompt, answer))
        return list(score(model, tokenizer, pairs, batch_size=batch_size))

    return fn


def make_reward_fn(
    verifier: str | None,
    verifier_args: dict[str, Any] | None = None,
    reward_model: str | None = None,
    device: torch.device | str | None = None,
    dtype: str = "float32",
) -> RewardFn:
    """The reward source of a run: a reward-model folder, or a registered verifier."""
    if (verifier is None) == (reward_model is None):
        raise ValueError("set exactly one of `verifier` and `reward_model`")
    if reward_model is not None:
        from training.core.common import load_reward_model, load_tokenizer

        tok = load_tokenizer(reward_model)
        model = load_reward_model(reward_model, dtype, device, pad_token_id=tok.pad_token_id)
        model.eval().requires_grad_(False)
        return reward_model_reward(model, tok)
    fn = get_verifier(verifier)  # type: ignore[arg-type]
    args = dict(verifier_args or {})
    return lambda completions, rows: [float(x) for x in fn(completions, rows, **args)]
