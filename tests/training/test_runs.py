"""Training runs in the platform: validation before queueing, execution with progress,
cancellation, resume from a checkpoint, dead-worker detection, results back in the arena."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.models import DatasetSnapshot
from arena import services as arena_services
from arena.models import Contestant
from core.jobs import job_kind_of, jobs_reap
from tests.support.worker import wait_for
from training import services
from training.models import RewardModel, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

WORDS = [
    "the quick brown fox",
    "paris is the capital",
    "two plus two is four",
    "a helpful assistant answers",
    "write a short poem",
    "yes no maybe good",
]


def _snapshot(fmt: str, rows: list[dict], status: str = "ready") -> DatasetSnapshot:
    snapshot = DatasetSnapshot.objects.create(
        name=f"{fmt} rows", source="rankings", format=fmt, status=status
    )
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(snapshot.pk)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    snapshot.files = {"jsonl": f"datasets/{snapshot.pk}/data.jsonl"}
    snapshot.row_count = len(rows)
    snapshot.save()
    return snapshot


@pytest.fixture
def pairs():
    return _snapshot(
        "preference",
        [
            {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
            for i in range(16)
        ],
    )


@pytest.fixture
def sft_rows():
    return _snapshot(
        "sft", [{"prompt": WORDS[i % 6], "completion": WORDS[(i + 3) % 6]} for i in range(12)]
    )


SMALL = {"batch_size": 4, "max_length": 64, "learning_rate": 1e-4, "num_epochs": 1}


def _run(kind, base, snapshot, loss="", **hyper):
    return TrainingRun.objects.create(
        kind=kind,
        loss_type=loss,
        base_model=base,
        snapshot=snapshot,
        hyperparameters={**SMALL, **hyper},
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "rlhf-magic", "loss_type": ""}, "Unknown run kind"),
        ({"loss_type": "wasserstein"}, "Unknown loss"),
        ({"loss_type": "kto"}, "KTO loss trains on a kto snapshot"),
        ({"hyperparameters": {"learning_rat": 1}}, "learning_rat: not a setting of a dpo run"),
        ({"hyperparameters": {"device": "cuda"}}, "device: not a setting of a dpo run"),
        ({"hyperparameters": {"batch_size": 0}}, "batch_size: must be at least 1"),
        ({"kind": "sft"}, "needs a sft snapshot"),
    ],
)
def test_invalid_runs_are_refused_before_anything_is_queued(
    tiny_contestant, pairs, change, message
):
    values = {
        "kind": "dpo",
        "base_model": tiny_contestant,
        "snapshot": pairs,
        "loss_type": "sigmoid",
        "hyperparameters": {},
    } | change
    with pytest.raises(services.RunError, match=message):
        services.training_run_create(**values)
    assert TrainingRun.objects.count() == 0


def test_a_remote_model_or_an_unready_snapshot_cannot_be_trained(tiny_contestant, pairs):
    remote = arena_services.contestant_create(
        name="remote",
        display_name="Remote",
        backend="openai",
        endpoint_url="http://127.0.0.1:9/v1",
        endpoint_model="m",
    )
    with pytest.raises(services.RunError, match="no local weights"):
        services.training_run_create(kind="dpo", base_model=remote, snapshot=pairs)
    pending = _snapshot("preference", [], status="building")
    with pytest.raises(services.RunError, match="not ready"):
        services.training_run_create(kind="dpo", base_model=tiny_contestant, snapshot=pending)


def test_a_valid_run_is_queued_after_commit(
    tiny_contestant, pairs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = services.training_run_create(
            kind="dpo", loss_type="ipo", base_model=tiny_contestant, snapshot=pairs
        )
    assert run.status == RunStatus.QUEUED and len(callbacks) == 1


def test_dpo_run_trains_reports_progress_and_enters_the_arena(tiny_contestant, pairs):
    run = _run("dpo", tiny_contestant, pairs, loss="sigmoid")
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.step == run.total_steps == 4
    assert [m["step"] for m in run.metrics] == [1, 2, 3, 4] and "loss" in run.metrics[0]
    assert run.device == "cpu" and "succeeded" in run.log
    assert "reference pass: done in" in run.log or "reference pass: read from the cache" in run.log
    child = run.result_contestant
    assert child.parent == tiny_contestant and child.backend == "local"
    assert f"snapshot #{pairs.pk}" in child.description
    answer = arena_services.contestant_generate(
        contestant=child, messages=[{"role": "user", "content": "two plus two"}]
    )
    assert answer.completion_tokens >= 1
    assert (Path(child.model_path) / "README.md").is_file()  # the model card


def test_a_run_with_several_processes_trains_under_torchrun(tiny_contestant, pairs, settings):
    settings.TRAINING_PROCESSES = 2
    run = _run("dpo", tiny_contestant, pairs, loss="sigmoid")
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error + run.log
    assert "torchrun: 2 processes per node" in run.log
    assert "rank 1 finished: completed" in run.log
    # Two ranks share the 16 pairs: batch 4 on each makes 2 steps.
    assert run.step == run.total_steps == 2 and [m["step"] for m in run.metrics] == [1, 2]
    assert run.result_contestant.parent == tiny_contestant


def test_reward_run_registers_a_judge(tiny_contestant, pairs):
    run = _run("reward", tiny_contestant, pairs)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    judge = RewardModel.objects.get(run=run)
    assert Path(judge.path).is_dir() and run.result_contestant is None


def test_sft_run_trains_on_demonstrations(tiny_contestant, sft_rows):
    run = _run("sft", tiny_contestant, sft_rows)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result_contestant.name.endswith(f"-sft-{run.pk}")


def test_cancelled_run_stops_and_resumes_from_its_checkpoint(tiny_contestant, pairs):
    run = _run("dpo", tiny_contestant, pairs, loss="sigmoid", batch_size=2, save_every=2)
    # Left by a run with the same id in an earlier database: the first attempt clears it.
    stale = services.run_output_dir(run) / "train" / "stale.txt"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("old")
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    services.training_run_execute(run_id=run.pk)
    assert not stale.exists()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.step < 8
    services.training_run_resume(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and not run.cancel_requested
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and run.step == 8


def test_a_run_whose_worker_went_silent_is_failed_and_can_resume(tiny_contestant, pairs):
    run = _run("dpo", tiny_contestant, pairs)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert jobs_reap(kind=job_kind_of(TrainingRun)) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "no heartbeat" in run.error
    services.training_run_resume(run=run)
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_run_stays_alive_while_its_trainer_reports_nothing(
    tiny_contestant, pairs, settings, monkeypatch
):
    """Loading a model or the reference pass can take minutes without a step: the heartbeat
    comes from a side thread, so the reaper leaves a working run alone."""
    settings.TRAINING_HEARTBEAT_TIMEOUT_S = 4
    run = _run("dpo", tiny_contestant, pairs, loss="sigmoid")
    seen = []

    def silent_trainer(run, reporter, output, resume):
        started = TrainingRun.objects.get(pk=run.pk).heartbeat_at

        def beat_after_start():
            beat = TrainingRun.objects.get(pk=run.pk).heartbeat_at
            return beat if beat - started > timedelta(seconds=2) else None

        later = wait_for(beat_after_start, timeout=60, interval=0.1)
        seen.append((started, later))
        # The reaper's view once the timeout has passed since the trainer last reported.
        past_timeout = started + timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT_S + 1)
        seen.append(jobs_reap(kind=job_kind_of(TrainingRun), now=past_timeout))
        raise RuntimeError("the trainer stops here")

    monkeypatch.setattr(services, "_train", silent_trainer)
    services.training_run_execute(run_id=run.pk)
    (started, later), reaped = seen
    assert later > started and reaped == 0
    assert TrainingRun.objects.get(pk=run.pk).error == "RuntimeError: the trainer stops here"


def test_registering_twice_creates_one_contestant(tiny_contestant, pairs):
    run = _run("dpo", tiny_contestant, pairs)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    services.training_run_register(run=run)
    assert Contestant.objects.filter(parent=tiny_contestant).count() == 1


def test_a_finished_run_is_not_run_again(tiny_contestant, pairs):
    run = _run("dpo", tiny_contestant, pairs)
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert services.training_run_execute(run_id=run.pk) is None
    with pytest.raises(services.RunError, match="nothing to cancel"):
        services.training_run_cancel(run=TrainingRun.objects.get(pk=run.pk))


RL_SMALL = {
    "rollout_batch_size": 4,
    "batch_size": 4,
    "max_steps": 2,
    "max_new_tokens": 4,
    "max_prompt_length": 32,
    "learning_rate": 1e-4,
}


def test_ppo_and_grpo_need_exactly_one_reward_source(tiny_contestant, sft_rows):
    for kind in ("ppo", "grpo"):
        with pytest.raises(services.RunError, match="exactly one reward"):
            services.training_run_create(kind=kind, base_model=tiny_contestant, snapshot=sft_rows)
    with pytest.raises(services.RunError, match="Unknown verifier"):
        services.training_run_create(
            kind="ppo", base_model=tiny_contestant, snapshot=sft_rows, verifier="astrology"
        )
    with pytest.raises(services.RunError, match="Only PPO and GRPO"):
        services.training_run_create(
            kind="sft", base_model=tiny_contestant, snapshot=sft_rows, verifier="exact_match"
        )


@pytest.mark.parametrize(
    ("kind", "verifier", "args"),
    [
        ("ppo", "contains", {"word": "paris"}),
        ("grpo", "exact_match", {}),
    ],
)
def test_online_rl_runs_train_with_a_verifier_and_enter_the_arena(
    tiny_contestant, sft_rows, kind, verifier, args
):
    hyper = RL_SMALL | {"verifier_args": args} | ({"group_size": 2} if kind == "grpo" else {})
    run = services.training_run_create(
        kind=kind,
        base_model=tiny_contestant,
        snapshot=sft_rows,
        verifier=verifier,
        hyperparameters=hyper,
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.step == 2 and any("reward" in key for key in run.metrics[-1])
    assert run.result_contestant.parent == tiny_contestant


def test_ppo_scores_rollouts_with_a_registered_judge(tiny_contestant, pairs, sft_rows):
    reward = _run("reward", tiny_contestant, pairs)
    services.training_run_execute(run_id=reward.pk)
    judge = RewardModel.objects.get(run=reward)
    run = services.training_run_create(
        kind="ppo",
        base_model=tiny_contestant,
        snapshot=sft_rows,
        reward_model=judge,
        hyperparameters=RL_SMALL,
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.judge == judge
