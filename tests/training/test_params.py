"""A run's hyper-parameters are typed and range-checked against one table per run kind,
the same way from the API, the form and `manage.py train`; nothing bad is ever queued."""

import pytest
from django.core.management import CommandError, call_command

from tests.training.test_runs import _snapshot
from training import params, services
from training.models import TrainingRun

NONSENSE = [
    ("learning_rate", "abc"),
    ("learning_rate", -1),
    ("learning_rate", float("inf")),
    ("num_epochs", 1e12),
    ("num_epochs", 1.5),
    ("max_length", -1),
    ("batch_size", True),
    ("batch_size", 0),
    ("max_steps", "many"),
    ("dtype", "int8"),
    ("lora", "x"),
    ("lora", {"r": 0}),
    ("lora", {"rank": 8}),
    ("shuffle", "maybe"),
    ("warmup_ratio", 2),
    ("adam_betas", [0.9]),
    ("seed", -3),
    ("lr_scheduler", "exponential"),
    ("beta", "strong"),
    ("gradient_checkpointing", 1),
]


@pytest.fixture
def pairs(db):
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 4
    return _snapshot("preference", rows)


@pytest.mark.parametrize(("name", "value"), NONSENSE)
def test_the_table_refuses_a_nonsense_value_naming_the_field(name, value):
    with pytest.raises(params.ParamError) as caught:
        params.hyperparameters_clean("dpo", {name: value})
    assert list(caught.value.errors) == [name]


def test_the_table_types_what_it_accepts():
    clean = params.hyperparameters_clean(
        "dpo",
        {"learning_rate": "5e-7", "num_epochs": 2.0, "shuffle": "false", "lora": {"r": 8}},
    )
    assert clean == {"learning_rate": 5e-7, "num_epochs": 2, "shuffle": False, "lora": {"r": 8}}
    assert isinstance(clean["num_epochs"], int)


def test_each_kind_has_its_own_settings():
    assert "group_size" in params.PARAMS["grpo"] and "group_size" not in params.PARAMS["dpo"]
    with pytest.raises(params.ParamError, match="not a setting of a sft run"):
        params.hyperparameters_clean("sft", {"beta": 0.1})
    dpo = params.defaults("dpo")
    # Sized to move a small model: a 17-pair demo snapshot gets 10 steps at 1e-5.
    assert dpo["learning_rate"] == 1e-5 and dpo["warmup_ratio"] == 0.1
    assert -(-17 // dpo["batch_size"]) * dpo["num_epochs"] == 10


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "value"), NONSENSE)
def test_the_api_refuses_a_nonsense_value_with_400_naming_it(
    api_client, admin_user, tiny_contestant, pairs, name, value
):
    if value == float("inf"):
        value = "inf"  # JSON has no infinity; the text form must be refused too
    api_client.force_authenticate(admin_user)
    payload = {
        "kind": "dpo",
        "base_model": "tiny-llama",
        "snapshot": pairs.pk,
        "hyperparameters": {name: value},
    }
    response = api_client.post("/api/training/runs/", payload, format="json")
    assert response.status_code == 400, response.content
    assert f"hyperparameters.{name}" in response.json()
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_the_form_refuses_a_nonsense_value_naming_it(admin_client_, tiny_contestant, pairs):
    response = admin_client_.post(
        "/training/runs/new/",
        {
            "kind": "dpo",
            "base_model": "tiny-llama",
            "snapshot": pairs.pk,
            "hyperparameters": '{"learning_rate": "abc"}',
        },
    )
    assert response.status_code == 400
    assert "learning_rate: must be a number" in response.content.decode()
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_the_command_refuses_a_nonsense_value_naming_it(tiny_contestant, pairs):
    with pytest.raises(CommandError, match="num_epochs: must be at least 1 and at most 100"):
        call_command(
            "train", "--kind", "dpo", "--base", "tiny-llama", "--snapshot", str(pairs.pk),
            "--set", "num_epochs=1e12",
        )  # fmt: skip
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_a_run_stores_its_typed_settings(tiny_contestant, pairs):
    request = services.run_request_build(
        kind="dpo",
        base_model=tiny_contestant,
        snapshot=pairs,
        hyperparameters={"num_epochs": "2", "lora": None},
    )
    run = services.training_run_create(request=request)
    run.refresh_from_db()
    assert run.hyperparameters == {"num_epochs": 2, "lora": None}
