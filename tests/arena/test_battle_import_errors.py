"""A battle file that cannot be imported is refused with a message naming the problem, on the
page as in code, and stores nothing."""

import gzip

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from arena import battle_io
from arena.models import Battle, Contestant

pytestmark = pytest.mark.django_db
LONG = "m" * 101


def _csv(*rows: str) -> bytes:
    return ("\n".join(["model_a,model_b,winner", *rows]) + "\n").encode()


def test_a_model_name_longer_than_the_registry_holds_is_refused_naming_its_battle(tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes(_csv("alpha,beta,model_a", f"alpha,{LONG},tie"))
    # The name check of every imported model refuses it first, naming the line.
    with pytest.raises(ValueError, match=r"line 3: model_b .* is not a model name .*at most 100"):
        battle_io.battles_import(path=path)
    assert Battle.objects.count() == 0
    assert Contestant.objects.count() == 0


def test_a_file_named_gz_that_is_not_gzip_is_refused_with_a_message(tmp_path):
    path = tmp_path / "fake.csv.gz"
    path.write_bytes(_csv("alpha,beta,model_a"))
    with pytest.raises(ValueError, match="cannot be read as .gz"):
        battle_io.battles_import(path=path)


def test_a_truncated_gzip_file_is_refused_with_a_message(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(_csv(*["alpha,beta,model_a"] * 200))[:60])
    with pytest.raises(ValueError, match="cannot be read"):
        battle_io.battles_import(path=path)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("fake.csv.gz", _csv("alpha,beta,model_a"), "cannot be read as .gz"),
        ("long.csv", _csv(f"alpha,{LONG},model_b"), "is not a model name"),
    ],
)
def test_the_import_page_answers_a_bad_file_with_400_and_the_reason(
    researcher_client, name, content, message
):
    upload = SimpleUploadedFile(name, content)
    response = researcher_client.post("/arena/battle-files/", {"file": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Battle.objects.count() == 0


def test_the_import_page_lists_unknown_model_names_and_imports_them_only_when_asked(
    researcher_client, tiny_contestant
):
    content = _csv("tiny-llama,newcomer-1,model_a", "newcomer-2,tiny-llama,tie")
    refused = researcher_client.post(
        "/arena/battle-files/", {"file": SimpleUploadedFile("b.csv", content)}
    )
    assert refused.status_code == 400
    assert "2 model names are not registered: newcomer-1, newcomer-2" in refused.content.decode()
    assert Battle.objects.count() == 0 and Contestant.objects.count() == 1
    accepted = researcher_client.post(
        "/arena/battle-files/",
        {"file": SimpleUploadedFile("b.csv", content), "create_unknown": "on"},
    )
    assert accepted.status_code == 200 and "Imported 2 battles." in accepted.content.decode()
    created = Contestant.objects.exclude(name="tiny-llama")
    assert sorted(c.name for c in created) == ["newcomer-1", "newcomer-2"]
    assert not any(c.is_active for c in created)
