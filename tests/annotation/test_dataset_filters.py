"""Dataset filters are strictly typed: a value of the wrong type is refused with a message
naming the filter (a 400 from the API), never coerced into something else and stored."""

import pytest

from annotation.datasets import DatasetError, Filters
from annotation.models import DatasetSnapshot


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"guidelines_versions": [1e30]}, "guidelines_versions"),
        ({"guidelines_versions": [0]}, "guidelines_versions"),
        ({"guidelines_versions": [1.5]}, "guidelines_versions"),
        ({"guidelines_versions": [True]}, "guidelines_versions"),
        ({"guidelines_versions": "12"}, "guidelines_versions"),
        ({"accepted_only": "false-ish"}, "accepted_only"),
        ({"accepted_only": 1}, "accepted_only"),
        ({"categories": "abc"}, "categories"),
        ({"categories": [1, 2]}, "categories"),
        ({"min_agreement": True}, "min_agreement"),
        ({"min_agreement": "nan"}, "min_agreement"),
        ({"gold_min": [0.5]}, "gold_min"),
    ],
)
def test_a_filter_of_the_wrong_type_is_refused_naming_it(raw, name):
    with pytest.raises(DatasetError, match=name):
        Filters.parse(raw)


def test_the_text_false_means_false():
    assert Filters.parse({"accepted_only": "false"}).accepted_only is False
    assert Filters.parse({"accepted_only": "true"}).accepted_only is True


def test_well_typed_filters_are_kept():
    filters = Filters.parse(
        {"categories": ["math", "code"], "guidelines_versions": [2, 1.0], "gold_min": 0.5}
    )
    assert filters.categories == ("code", "math")
    assert filters.guidelines_versions == (1, 2)


def test_filters_that_are_not_an_object_are_refused():
    with pytest.raises(DatasetError, match="object"):
        Filters.parse(["accepted_only"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filters",
    [{"guidelines_versions": [1e30]}, {"accepted_only": "nope"}, {"categories": "abc"}],
)
def test_the_api_refuses_a_badly_typed_filter_with_400_and_stores_nothing(
    api_client, researcher, filters
):
    from annotation import services

    project = services.project_create(name="P", slug="p")
    api_client.force_authenticate(researcher)
    body = {"source": "rankings", "project": project.slug, "format": "preference"}
    response = api_client.post(
        "/api/annotation/datasets/", {**body, "filters": filters}, format="json"
    )
    assert response.status_code == 400, response.content
    assert next(iter(filters)) in response.json()["detail"]
    assert DatasetSnapshot.objects.count() == 0
