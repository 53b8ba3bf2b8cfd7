"""The apps stand on each other in one direction: core is the base, arena builds on core,
annotation on arena, training and evaluation on both, and home (the front page and the demo)
on all of them. An import against that order is a cycle in the making."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["core", "arena", "annotation", "training", "evaluation", "home"]
# What each app may import, besides itself and third-party code.
ALLOWED = {
    "core": set(),
    "arena": {"core"},
    "annotation": {"core", "arena"},
}


def _imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names & set(APPS)


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_an_app_imports_only_the_apps_below_it(app):
    wrong = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and (found := _imported_apps(path) - ALLOWED[app] - {app})
    }
    assert not wrong, wrong
