# The annotation fixtures (a project, extra annotators), for the end-to-end training tests.
from tests.annotation.conftest import make_annotator, project  # noqa: F401
