"""A snapshot's preference Parquet trains a tiny model with TRL's trainers, unchanged."""

from __future__ import annotations

import math

import pytest
from datasets import load_dataset

from annotation import datasets
from annotation.datasets import Spec
from annotation.models import Ranking
from tests.annotation.factories import CompletionFactory, PromptFactory
from tests.support.tiny_model import build_tokenizer

WORDS = [
    "the capital of france is paris",
    "two plus two is four",
    "yes good answer",
    "bad answer no",
    "a helpful assistant answers clearly",
]


@pytest.fixture
def preference_parquet(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    for n in range(6):
        prompt = PromptFactory(
            project=project, messages=[{"role": "user", "content": f"what is {WORDS[n % 5]}"}]
        )
        answers = [CompletionFactory(prompt=prompt, text=WORDS[(n + k) % 5]) for k in range(3)]
        Ranking.objects.create(
            project=project,
            prompt=prompt,
            annotator=annotator,
            groups=[[answers[0].pk], [answers[1].pk, answers[2].pk]],
        )
    snapshot = datasets.snapshot_create(
        name="trl", spec=Spec(source="rankings", format="preference", project=project)
    )
    snapshot = datasets.snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == "ready", snapshot.error
    return str(datasets.snapshot_file(snapshot=snapshot, kind="parquet"))


def _common(tmp_path):
    return dict(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=2,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
        max_length=64,
    )


def test_dpo_trainer_trains_on_a_snapshot(preference_parquet, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    train = load_dataset(
        "parquet", data_files=preference_parquet, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert train.num_rows == 12
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(**_common(tmp_path)),
        train_dataset=train,
        processing_class=build_tokenizer(),
    )
    result = trainer.train()
    assert result.global_step == 2
    assert math.isfinite(result.training_loss)


def test_reward_trainer_trains_on_a_snapshot(preference_parquet, tiny_model_dir, tmp_path):
    from transformers import AutoConfig, LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    train = load_dataset(
        "parquet", data_files=preference_parquet, split="train", cache_dir=str(tmp_path / "hf")
    )
    tokenizer = build_tokenizer()
    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=1)
    config.pad_token_id = tokenizer.pad_token_id
    model = LlamaForSequenceClassification(config)
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**_common(tmp_path)),
        train_dataset=train,
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 2
    assert math.isfinite(result.training_loss)
