"""The demo loop, end to end: from the admin's "start a DPO run" click to the new contestant's
first answer, on the demo model SmolLM2-135M-Instruct on CPU.

    .venv/bin/python bench/demo_loop.py [--pairs 32] [--batch-size 4] [--max-length 256]
        [--base smollm2-135m-greedy] [--model-cache var/models] [--keep]

Set-up, before the clock starts: a fresh temporary VAR_DIR (SQLite, the filesystem Celery
broker, media), `migrate`, `seed_demo` (users and the SmolLM2 contestants; the arena-vote import
it would queue is skipped), the SmolLM2 safetensors conversion if MODEL_CACHE_DIR (default: the
repository's `var/models`, so it is reused) lacks it, the import of the first `--pairs` real
Anthropic HH pairs (`../shared/data`) into a project with `dataset_import`, a preference
snapshot built with `snapshot_create` / `snapshot_build`, and two Celery workers started as
`make run` starts them (`default,generate` with beat; `gpu`, one task per child).

Timed: `training_run_create` (the call behind the "new run" form) for a DPO run of one epoch;
the run is queued, claimed by the gpu worker, trained, and registered as a new contestant; then
`generation_request` (the call behind direct chat and battles) asks that contestant a fixed
question on the generate queue. The clock stops when the answer is stored. The final line:

    demo_loop: click to answer S s (queue Q s, training T s for N pairs / K steps,
    registration R s, first answer A s), device cpu, load L

Q: click to the run's `started_at`; T: `started_at` to `finished_at` (model load, reference
pass, steps, saving); R: `finished_at` to the moment this script saw the new contestant and
asked it (commit plus polling, at most a few tenths of a second); A: the question to the stored
answer (queue, loading the new weights, generation). Q + T + R + A = S. L is the mean 1-minute
load average over the timed part (the machine has 2 cores; our own training adds about 1).
Exits non-zero, with the error the run or the generation stored, when a step fails; the workers
are stopped in every case.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HH_FILE = ROOT.parent / "shared" / "data" / "hh_rlhf_harmless_base_test.jsonl.gz"
QUESTION = "What is 17 multiplied by 23?"
POLL_S = 0.25


class StepFailed(Exception):
    """A step of the loop failed; the message says which and why."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=32, help="HH pairs to import and train on")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--loss", default="sigmoid", help="DPO loss type")
    parser.add_argument(
        "--style",
        default="conversational",
        choices=["standard", "conversational"],
        help="snapshot style (conversational: rendered with the chat template)",
    )
    parser.add_argument(
        "--base",
        default="smollm2-135m-greedy",
        help="the seeded SmolLM2 contestant to train (greedy: a stable answer)",
    )
    parser.add_argument(
        "--model-cache",
        default=str(ROOT / "var" / "models"),
        help="MODEL_CACHE_DIR, where the SmolLM2 conversion is kept",
    )
    parser.add_argument("--hh", default=str(HH_FILE), help="Anthropic HH .jsonl.gz file")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--train-timeout", type=float, default=1800.0)
    parser.add_argument("--answer-timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    return parser.parse_args()


def configure_environment(var_dir: Path, model_cache: Path) -> dict[str, str]:
    """The environment of this process and of the workers: everything under `var_dir` but the
    model cache. Must run before Django is imported."""
    values = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_FILESYSTEM_BROKER_DIR": str(var_dir / "broker"),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": str(var_dir / "media"),
        "MODEL_CACHE_DIR": str(model_cache),
        "HF_HUB_OFFLINE": "1",
    }
    os.environ.update(values)
    os.environ.pop("CACHE_URL", None)  # a shared cache would mix with other processes' keys
    return dict(os.environ)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- set-up


def seed() -> tuple:
    """Migrate and load the demo (users, SmolLM2 contestants); return the admin user."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    # arena_votes="": the 135k-vote import seed_demo would queue is not part of this loop.
    call_command("seed_demo", arena_votes="", stdout=io.StringIO())
    return get_user_model().objects.get(username="admin")


def smollm2_ready() -> None:
    """Convert SmolLM2 to safetensors once (before the clock), or reuse the conversion."""
    from django.conf import settings

    from arena.backends import SMOLLM2_FOLDER_NAME, smollm2_folder

    target = Path(settings.MODEL_CACHE_DIR) / SMOLLM2_FOLDER_NAME
    if (target / "config.json").is_file():
        print(f"SmolLM2: reusing {target}")
        return
    started = time.monotonic()
    smollm2_folder(settings.MODEL_CACHE_DIR)
    print(
        f"SmolLM2: converted GGUF to safetensors in {time.monotonic() - started:.1f} s ({target})"
    )


def snapshot_of_hh_pairs(*, hh: Path, pairs: int, style: str, user, var_dir: Path):
    """Import the first `pairs` HH pairs into a project and build a preference snapshot."""
    from django.db import transaction

    from annotation.dataset_imports import dataset_import, project_for_import
    from annotation.datasets import Spec, snapshot_build, snapshot_create
    from annotation.models import SnapshotSource, SnapshotStatus

    subset = var_dir / f"hh-first-{pairs}.jsonl"
    with gzip.open(hh, "rt", encoding="utf-8") as source, open(subset, "w") as out:
        lines = [line for line in source if line.strip()][:pairs]
        out.writelines(lines)
    if len(lines) < pairs:
        raise StepFailed(f"{hh} holds only {len(lines)} pairs; --pairs asked for {pairs}.")
    with transaction.atomic():  # as `import_dataset` does: a refused file leaves no project
        project = project_for_import(name="Demo loop: Anthropic HH", user=user)
        report = dataset_import(fmt="hh", path=subset, project=project, user=user)
    print(f"imported {report.rankings} HH pairs ({report.prompts} prompts) into {project.slug}")
    spec = Spec(source=SnapshotSource.RANKINGS, format="preference", project=project, style=style)
    snapshot = snapshot_create(name=f"hh-{pairs}-pairs", spec=spec, user=user)
    # Built here rather than by a worker; the message snapshot_create queued finds it built.
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    if snapshot.status != SnapshotStatus.READY:
        raise StepFailed(f"snapshot #{snapshot.pk} is {snapshot.status}: {snapshot.error}")
    print(f"snapshot #{snapshot.pk}: {snapshot.row_count} {style} preference rows")
    return snapshot


# --------------------------------------------------------------------------- workers


class Workers:
    """The two workers of `scripts/serve.sh`, each in its own process group (so that stopping
    one also stops its pool's children)."""

    COMMANDS = {
        "main": ["-Q", "default,generate", "--concurrency", "1", "-n", "main@%h", "--beat",
                 "--schedule", "{var}/celerybeat-schedule"],
        "gpu": ["-Q", "gpu", "--concurrency", "1", "--prefetch-multiplier", "1",
                "--max-tasks-per-child", "1", "-n", "gpu@%h"],
    }  # fmt: skip

    def __init__(self, var_dir: Path, env: dict[str, str]):
        self.var_dir = var_dir
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}

    def log_path(self, name: str) -> Path:
        return self.var_dir / f"{name}-worker.log"

    def start(self, timeout: float = 180.0) -> None:
        for name, args in self.COMMANDS.items():
            argv = [sys.executable, "-m", "celery", "-A", "config", "worker",
                    *(a.format(var=self.var_dir) for a in args), "--loglevel", "INFO"]  # fmt: skip
            with open(self.log_path(name), "wb") as log:
                self.procs[name] = subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + timeout
        waiting = set(self.procs)
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                if " ready." in self.log_path(name).read_text(errors="replace"):
                    waiting.discard(name)
                elif self.procs[name].poll() is not None:
                    raise StepFailed(f"the {name} worker exited:\n{self.tail(name)}")
            time.sleep(0.2)
        if waiting:
            raise StepFailed(f"worker(s) {', '.join(sorted(waiting))} not ready in {timeout:g} s")

    def stop(self) -> None:
        """Warm shutdown, then a kill for what is still busy after 15 s (a run mid-step)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group: a prefork child may outlive its parent
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def grep(self, name: str, text: str) -> list[str]:
        log = self.log_path(name).read_text(errors="replace").splitlines()
        return [line for line in log if text in line]

    def tail(self, name: str, lines: int = 30) -> str:
        text = self.log_path(name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- the timed loop


class Clock:
    def __init__(self):
        self.start = time.time()
        self.loads: list[float] = []

    def since(self, moment: float | None = None) -> float:
        return (time.time() if moment is None else moment) - self.start

    def tick(self) -> None:
        self.loads.append(os.getloadavg()[0])
        time.sleep(POLL_S)


def run_until_finished(
    run_id: int, clock: Clock, timeout: float, *, registered: bool = False, every: int = 1
):
    """Poll the run, printing each change of status and every `every`-th step, until it has
    succeeded (and, with `registered`, its contestant exists); a failed, cancelled or late run
    is a failed step."""
    from training.models import RunStatus, TrainingRun

    status, step, started = None, -1, time.monotonic()
    while True:
        run = TrainingRun.objects.select_related("result_contestant").get(pk=run_id)
        if run.status != status or (run.step != step and run.step % every == 0):
            status, step = run.status, run.step
            loss = (run.metrics[-1] if run.metrics else {}).get("loss")
            shown = f"  loss {loss:.4f}" if isinstance(loss, float) else ""
            where = f" on {run.device}" if run.device else ""
            print(
                f"  +{clock.since():7.1f} s  run #{run.pk} {status}{where} "
                f"step {step}/{run.total_steps}{shown}",
                flush=True,
            )
        if run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise StepFailed(f"run #{run.pk} {run.status}: {run.error}\nrun log:\n{run.log}")
        if run.status == RunStatus.SUCCEEDED and (run.result_contestant_id or not registered):
            return run
        if time.monotonic() - started > timeout:
            raise StepFailed(f"run #{run.pk} still {run.status} after {timeout:g} s")
        clock.tick()


def first_answer(contestant, question: str, user, clock: Clock, timeout: float):
    from arena.models import GenerationStatus
    from arena.services import generation_request

    asked = time.time()
    generation = generation_request(
        contestant=contestant, messages=[{"role": "user", "content": question}], user=user
    )
    while True:
        generation.refresh_from_db()
        if generation.status == GenerationStatus.SUCCEEDED:
            return generation, asked, time.time()
        if generation.is_finished:
            raise StepFailed(f"generation #{generation.pk} {generation.status}: {generation.error}")
        if time.time() - asked > timeout:
            raise StepFailed(
                f"generation #{generation.pk} still {generation.status} after {timeout:g} s"
            )
        clock.tick()


def timed_loop(args, *, base, snapshot, user, workers: Workers) -> str:
    """Click, train, register, answer; return the final line."""
    from training.forms import RunForm
    from training.models import RunKind
    from training.services import training_run_create

    # The admin opens the "new run" page before clicking: rendering its form imports torch and
    # the trainers (about 2 s), which the click then does not pay again.
    RunForm()
    hyperparameters = {
        "num_epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
    }
    print(
        f"click: DPO ({args.loss}) of {base.name} on snapshot #{snapshot.pk}, "
        f"{hyperparameters}; load {load()}",
        flush=True,
    )
    clock = Clock()
    run = training_run_create(
        kind=RunKind.DPO,
        loss_type=args.loss,
        base_model=base,
        snapshot=snapshot,
        hyperparameters=hyperparameters,
        user=user,
    )
    run = run_until_finished(run.pk, clock, args.train_timeout, registered=True)
    contestant = run.result_contestant
    print(f"  +{clock.since():7.1f} s  registered contestant {contestant.name}", flush=True)
    generation, asked, answered = first_answer(
        contestant, args.question, user, clock, args.answer_timeout
    )
    print(f"  +{clock.since(answered):7.1f} s  answered ({generation.completion_tokens} tokens)")

    started, finished = run.started_at.timestamp(), run.finished_at.timestamp()
    queue, training = started - clock.start, finished - started
    registration, answer = asked - finished, answered - asked
    _print_run(run, workers)
    print(f"question: {args.question}\nanswer:   {generation.output!r}")
    mean_load = sum(clock.loads) / len(clock.loads) if clock.loads else os.getloadavg()[0]
    return (
        f"demo_loop: click to answer {clock.since(answered):.1f} s (queue {queue:.1f} s, "
        f"training {training:.1f} s for {snapshot.row_count} pairs / {run.total_steps} steps, "
        f"registration {registration:.1f} s, first answer {answer:.1f} s), "
        f"device {run.device}, load {mean_load:.2f}"
    )


def _print_run(run, workers: Workers) -> None:
    print(
        f"\nrun #{run.pk}: {run.step}/{run.total_steps} steps on {run.device}, "
        f"attempts {run.attempts}"
    )
    print(
        "summary: "
        + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in sorted(run.summary.items())
        )
    )
    print("run log:\n  " + "\n  ".join(run.log.splitlines()[-12:]))
    # The trainer drops pairs that truncation leaves with nothing to learn; only its log says so.
    for note in workers.grep("gpu", "preference rows with nothing left"):
        print("trainer: " + note.split("] ", 1)[-1])


# --------------------------------------------------------------------------- main


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def bench_main(name: str, args, body: Callable[[Workers, Path], str]) -> int:
    """What the benches of the loop share: a fresh VAR_DIR, the environment and Django, then
    `body(workers, var_dir)`, which seeds, starts the workers and returns the last line. A
    failed step or an interrupt is said, with the workers' logs; the workers stop in every case,
    and the VAR_DIR is kept when something failed or `args.keep` asks."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"{name.replace('_', '-')}-"))
    env = configure_environment(var_dir, Path(args.model_cache).resolve())
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `timeout` too stops the workers
    print(f"VAR_DIR {var_dir}; MODEL_CACHE_DIR {env['MODEL_CACHE_DIR']}")
    print(f"load average before: {load()}")

    import django

    django.setup()
    workers, line = Workers(var_dir, env), None
    try:
        line = body(workers, var_dir)
    except StepFailed as exc:
        print(f"\n{name}: FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt as exc:
        print(f"\n{name}: interrupted ({exc or 'Ctrl-C'})", file=sys.stderr)
    finally:
        workers.stop()
        print(f"load average after: {load()}")
        for worker in workers.procs if line is None else ():
            print(
                f"--- {worker} worker log (last lines) ---\n{workers.tail(worker)}", file=sys.stderr
            )
        if line is None or args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    if line is None:
        return 1
    print(line)
    return 0


def main() -> int:
    args = parse_args()

    def body(workers: Workers, var_dir: Path) -> str:
        from arena.models import Contestant

        user = seed()
        base = Contestant.objects.get(name=args.base)
        smollm2_ready()
        snapshot = snapshot_of_hh_pairs(
            hh=Path(args.hh), pairs=args.pairs, style=args.style, user=user, var_dir=var_dir
        )
        started = time.monotonic()
        workers.start()
        print(f"workers ready in {time.monotonic() - started:.1f} s")
        return timed_loop(args, base=base, snapshot=snapshot, user=user, workers=workers)

    return bench_main("demo_loop", args, body)


if __name__ == "__main__":
    sys.exit(main())
