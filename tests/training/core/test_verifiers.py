"""Verifiable rewards: answer extraction, toy word reward, code tests, the registry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from training.core import verifiers as V


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so 3 + 4 = 7", "7"),
        ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
        ("The answer is \\boxed{1,000}.", "1,000"),
        ("blue", "blue"),
    ],
)
def test_extract_answer_finds_the_final_answer(text: str, answer: str) -> None:
    assert V.extract_answer(text) == answer


def test_exact_match_compares_numbers_by_value() -> None:
    rows = [{"answer": "1000"}, {"answer": "#### 2"}, {"answer": "Paris"}, {"answer": "5"}]
    got = V.exact_match(["it is 1,000.0", "2", "paris", "6"], rows)
    assert got == [1.0, 1.0, 1.0, 0.0]


def test_contains_rewards_whole_words_only() -> None:
    assert V.contains(["the Cat sat", "concatenate", "dog"], [{}] * 3, word="cat") == [
        1.0,
        0.0,
        0.0,
    ]


def test_python_tests_rewards_the_fraction_of_passing_tests() -> None:
    code = "```python\ndef double(x):\n    return x * 2 if x < 3 else 0\n```"
    tests = ["assert double(1) == 2", "assert double(2) == 4", "assert double(5) == 10"]
    assert V.python_tests([code], [{"tests": tests}]) == [pytest.approx(2 / 3)]


def test_python_tests_scores_zero_for_broken_or_hanging_code() -> None:
    rows = [{"tests": "assert f() == 1"}] * 2
    got = V.python_tests(["def f(:", "def f():\n    while True: pass"], rows, timeout=2.0)
    assert got == [0.0, 0.0]


def test_python_tests_scores_zero_for_an_infinite_loop_within_the_timeout() -> None:
    started = time.perf_counter()
    got = V.run_python_tests("while True:\n    pass", ["assert True"], timeout=1.0)
    assert got == 0.0
    assert time.perf_counter() - started < 5.0


def test_python_tests_kills_a_sleeping_candidate_and_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    started = time.perf_counter()
    assert V.run_python_tests(code, ["assert True"], timeout=1.5) == 0.0
    assert time.perf_counter() - started < 5.0
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a killed process may linger a moment as a zombie)."""
    for _ in range(20):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in "ZX":
            return False
        time.sleep(0.1)
    return True


def test_python_tests_scores_zero_for_code_that_allocates_huge_memory() -> None:
    # 8 GB: far over the 256 MB cap, so the allocation fails instead of swapping the machine.
    code = "DATA = bytearray(8 * 1024 ** 3)\n"
    assert V.run_python_tests(code, ["assert len(DATA) > 0"], memory_mb=256) == 0.0
    assert V.run_python_tests("DATA = bytearray(1024)", ["assert len(DATA) > 0"]) == 1.0


def test_python_tests_runs_with_an_empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    code = "import os\nSEEN = dict(os.environ)\n"
    assert V.run_python_tests(code, ["assert 'SECRET_TOKEN' not in SEEN"]) == 1.0


def test_python_tests_scores_zero_when_the_candidate_exits_the_process() -> None:
    assert V.run_python_tests("import os\nos._exit(0)", ["assert True"]) == 0.0


def test_python_tests_cannot_open_sockets_or_touch_the_working_folder(tmp_path: Path) -> None:
    code = (
        "import socket, os\n"
        "try:\n    socket.create_connection(('127.0.0.1', 9)); NET = True\n"
        "except OSError:\n    NET = False\n"
        "CWD = os.getcwd()\n"
    )
    got = V.run_python_tests(code, ["assert NET is False", f"assert CWD != {str(tmp_path)!r}"])
    assert got == 1.0


def test_registry_takes_new_verifiers_and_rejects_unknown_names() -> None:
    @V.register_verifier("length_test")
    def length(completions: list[str], rows: list[dict], scale: float = 1.0) -> list[float]:
        return [scale * len(c) for c in completions]

    fn = V.make_reward_fn("length_test", {"scale": 0.5})
    assert fn(["abcd"], [{}]) == [2.0]
    with pytest.raises(ValueError, match="unknown verifier"):
        V.make_reward_fn("nope")
    with pytest.raises(ValueError, match="exactly one"):
        V.make_reward_fn("contains", reward_model="/somewhere")
    del V.VERIFIERS["length_test"]


def test_reward_model_adapter_scores_text_and_chat_prompts(tiny_model_dir: Path) -> None:
    # A plain LM gets a fresh scalar head: the scores are arbitrary but must be per-answer.
    fn = V.make_reward_fn(None, reward_model=str(tiny_model_dir))
    rows = [{"prompt": "kind words"}, {"messages": [{"role": "user", "content": "kind"}]}]
    got = fn(["clear", "helpful"], rows)
    assert len(got) == 2 and all(isinstance(x, float) for x in got)
    assert got[0] != got[1]
    assert fn(["clear"], rows[:1]) == [pytest.approx(got[0])]
