"""Start a training run from a script, and optionally wait for it.

    python manage.py train --kind dpo --loss sigmoid --base smollm2-135m-helpful \
        --snapshot 3 --set learning_rate=1e-5 --set num_epochs=2 --wait
"""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from arena.models import Contestant
from training import services
from training.models import RewardModel, RunKind, TrainingRun


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class Command(BaseCommand):
    help = "Start a training run on a worker (SFT, reward model, DPO family, PPO or GRPO)."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=RunKind.values)
        parser.add_argument("--loss", default="", help="DPO family: the loss (default sigmoid).")
        parser.add_argument("--base", required=True, help="Name of a local contestant.")
        parser.add_argument("--snapshot", required=True, type=int, help="Dataset snapshot id.")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A hyper-parameter (repeatable); values are JSON or text.",
        )
        parser.add_argument("--judge", default="", help="PPO/GRPO: a reward model's name.")
        parser.add_argument("--verifier", default="", help="PPO/GRPO: a verifier's name.")
        parser.add_argument(
            "--eval-judge",
            default="",
            help="Policy runs: the reward model of the evaluation report (one not trained on "
            "prompts of the snapshot).",
        )
        parser.add_argument(
            "--eval-suite", default="", help="Policy runs: the evaluation suite of the report."
        )
        parser.add_argument("--wait", action="store_true", help="Wait and print progress.")

    def handle(self, *args, **options):
        from annotation.models import DatasetSnapshot

        base = Contestant.objects.filter(name=options["base"]).first()
        snapshot = DatasetSnapshot.objects.filter(pk=options["snapshot"]).first()
        if base is None or snapshot is None:
            raise CommandError("No such base model or snapshot.")
        hyper = {}
        for item in options["set"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--set takes KEY=VALUE; got {item!r}.")
            hyper[key.strip()] = _value(value.strip())
        try:
            run_request = services.run_request_build(
                kind=options["kind"],
                loss_type=options["loss"],
                base_model=base,
                snapshot=snapshot,
                hyperparameters=hyper,
                reward_model=self._judge(options["judge"]),
                verifier=options["verifier"],
                eval_judge=self._judge(options["eval_judge"]),
                eval_suite=self._suite(options["eval_suite"]),
            )
        except services.RunError as exc:
            raise CommandError(str(exc)) from None
        run = services.training_run_create(request=run_request)
        self.stdout.write(f"Run #{run.pk} queued.")
        if options["wait"]:
            self._wait(run)

    def _judge(self, name: str) -> RewardModel | None:
        if not name:
            return None
        judge = RewardModel.objects.filter(name=name).first()
        if judge is None:
            raise CommandError(f"No reward model named {name!r}.")
        return judge

    def _suite(self, name: str):
        from evaluation.models import Suite

        if not name:
            return None
        suite = Suite.objects.filter(name=name).first()
        if suite is None:
            raise CommandError(f"No evaluation suite named {name!r}.")
        return suite

    def _wait(self, run: TrainingRun) -> None:
        last = None
        while run.is_active:
            time.sleep(1)
            run.refresh_from_db()
            if (run.status, run.step) != last:
                self.stdout.write(f"  {run.status} step {run.step}/{run.total_steps}")
                last = (run.status, run.step)
        self.stdout.write(f"Run #{run.pk} {run.status}. {run.error}")
        if run.status != "succeeded":
            raise CommandError(f"Run #{run.pk} ended {run.status}.")
