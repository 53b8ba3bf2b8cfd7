import pytest
from django.contrib.auth import get_user_model

from core.roles import user_role_grant
from tests.annotation.factories import ProjectFactory


@pytest.fixture
def project(db):
    # Two judgments per item, no gold mixed in unless a test asks for it.
    return ProjectFactory(overlap=2)


@pytest.fixture
def make_annotator(db):
    """Extra annotators, for overlap and agreement."""
    count = iter(range(1000))

    def make(name: str | None = None):
        user = get_user_model().objects.create_user(username=name or f"a{next(count)}")
        user_role_grant(user=user, role="annotator")
        return user

    return make


@pytest.fixture
def contestants(db):
    """Two registered models; nothing loads them (their answers are written by the test)."""
    from arena.services import contestant_create

    return [
        contestant_create(
            name=name, display_name=name.title(), backend="local", model_path=f"/models/{name}"
        )
        for name in ("alpha-model", "beta-model")
    ]
