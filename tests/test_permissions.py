"""Every URL against every role and an anonymous visitor (GET). A URL missing from MATRIX fails
the test, so that no new page or endpoint goes unchecked."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from annotation import services as annotation_services
from annotation.models import DatasetSnapshot
from arena import battles, services
from training.models import JudgeJob, JudgeJobKind, RewardModel, TrainingRun

ROLES = ("anonymous", "outsider", "annotator", "reviewer", "researcher", "admin")
OK, LOGIN, API_AUTH, FORBIDDEN, NOT_FOUND, NOT_ALLOWED = 200, 302, 401, 403, 404, 405

# name -> expected status per role (a single value: the same for every role).
EVERYONE = {r: OK for r in ROLES}
SIGNED_IN = {"anonymous": LOGIN} | {r: OK for r in ROLES[1:]}
API_SIGNED_IN = {"anonymous": API_AUTH} | {r: OK for r in ROLES[1:]}
RESEARCHERS = {
    "anonymous": LOGIN,
    "outsider": FORBIDDEN,
    "annotator": FORBIDDEN,
    "reviewer": FORBIDDEN,
    "researcher": OK,
    "admin": OK,
}
OWNER_ONLY = {r: NOT_FOUND for r in ROLES} | {"annotator": OK}
POST_ONLY = {r: NOT_ALLOWED for r in ROLES}
ANNOTATORS = {
    "anonymous": LOGIN,
    "outsider": FORBIDDEN,
    "annotator": OK,
    "reviewer": OK,
    "researcher": FORBIDDEN,
    "admin": OK,
}
REVIEWERS = ANNOTATORS | {"annotator": FORBIDDEN}
OVERSEERS = RESEARCHERS | {"reviewer": OK}
ADMINS = {r: FORBIDDEN for r in ROLES} | {"anonymous": LOGIN, "admin": OK}
ADMINS_POST = ADMINS | {"admin": NOT_ALLOWED}
API_RESEARCHERS = {
    "anonymous": API_AUTH,
    "outsider": FORBIDDEN,
    "annotator": FORBIDDEN,
    "reviewer": FORBIDDEN,
    "researcher": OK,
    "admin": OK,
}
API_ADMINS_POST = {
    "anonymous": API_AUTH,
    "outsider": FORBIDDEN,
    "annotator": FORBIDDEN,
    "reviewer": FORBIDDEN,
    "researcher": FORBIDDEN,
    "admin": NOT_ALLOWED,
}
API_ANNOTATORS_POST = {
    "anonymous": API_AUTH,
    "outsider": FORBIDDEN,
    "annotator": NOT_ALLOWED,
    "reviewer": NOT_ALLOWED,
    "researcher": FORBIDDEN,
    "admin": NOT_ALLOWED,
}

MATRIX = {
    "home": EVERYONE,
    "healthz": EVERYONE,
    "login": EVERYONE,
    "logout": POST_ONLY,
    "api-token": SIGNED_IN,
    "arena:battle-new": EVERYONE,
    "arena:side-by-side": EVERYONE,
    "arena:chat": EVERYONE,
    "arena:battle": OWNER_ONLY,
    "arena:vote": POST_ONLY,
    "arena:continue": POST_ONLY,
    "arena:regenerate": POST_ONLY,
    "arena:cancel": POST_ONLY,
    "arena:leaderboard": EVERYONE,
    "arena:battle-files": RESEARCHERS,
    "arena:battle-export": RESEARCHERS,
    "arena:models": SIGNED_IN,
    "arena:generation": {r: NOT_FOUND for r in ROLES}
    | {"anonymous": LOGIN, "annotator": OK, "admin": OK},
    "training:home": RESEARCHERS,
    "training:run-new": ADMINS,
    "training:run": RESEARCHERS,
    "training:run-cancel": POST_ONLY
    | {
        "anonymous": LOGIN,
        "outsider": FORBIDDEN,
        "annotator": FORBIDDEN,
        "reviewer": FORBIDDEN,
        "researcher": FORBIDDEN,
    },
    "training:run-resume": POST_ONLY
    | {
        "anonymous": LOGIN,
        "outsider": FORBIDDEN,
        "annotator": FORBIDDEN,
        "reviewer": FORBIDDEN,
        "researcher": FORBIDDEN,
    },
    "training:judge": RESEARCHERS,
    "training:judge-jobs": POST_ONLY
    | {
        "anonymous": LOGIN,
        "outsider": FORBIDDEN,
        "annotator": FORBIDDEN,
        "reviewer": FORBIDDEN,
        "researcher": FORBIDDEN,
    },
    "training:judge-best-of-n": POST_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "reviewer": FORBIDDEN},
    "training:judge-best-of-n-job": RESEARCHERS,
    "training-run-list": API_RESEARCHERS,
    "training-run-detail": API_RESEARCHERS,
    "training-run-cancel": API_ADMINS_POST,
    "training-run-resume": API_ADMINS_POST,
    "judge-list": API_RESEARCHERS,
    "judge-detail": API_RESEARCHERS,
    "judge-jobs": API_ADMINS_POST,
    # (a GET names no action, so only admins pass the role check; researchers POST to it,
    # see tests/training/test_judges.py)
    "judge-best-of-n": API_ADMINS_POST,
    "judge-job": API_RESEARCHERS,
    "annotation:projects": SIGNED_IN,
    "annotation:my-work": ANNOTATORS,
    "annotation:project": SIGNED_IN,
    "annotation:next": ANNOTATORS | {"annotator": LOGIN},
    # (the annotator holding a task is sent back to it, visitors to the login page: both 302;
    # the others hold none and see the button, a GET reserves nothing)
    "annotation:task": OWNER_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "researcher": FORBIDDEN},
    "annotation:skip": POST_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "researcher": FORBIDDEN},
    "annotation:review": REVIEWERS,
    "annotation:decide": POST_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "researcher": FORBIDDEN},
    "annotation:dashboard": OVERSEERS,
    "annotation:import": ADMINS_POST,
    "annotation:generate": ADMINS_POST,
    "annotation:preview": POST_ONLY | {"anonymous": LOGIN},
    "annotation:datasets": RESEARCHERS,
    # (no snapshot with the world's id exists: researchers and admins get 404, others 403)
    "annotation:dataset": RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "annotation:dataset-download": RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "annotation:dataset-retry": POST_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "reviewer": FORBIDDEN},
    "annotation-api-projects": API_RESEARCHERS,
    "annotation-api-project": API_RESEARCHERS,
    "annotation-api-prompts": API_RESEARCHERS,
    "annotation-api-judgments": API_RESEARCHERS,
    "annotation-api-demonstrations": API_RESEARCHERS,
    "annotation-api-progress": API_RESEARCHERS,
    "annotation-api-agreement": API_RESEARCHERS,
    "annotation-api-leaderboard": API_RESEARCHERS,
    "annotation-api-task-next": API_ANNOTATORS_POST,
    "annotation-api-task-ranking": API_ANNOTATORS_POST,
    "annotation-api-task-demonstration": API_ANNOTATORS_POST,
    "annotation-api-task-skip": API_ANNOTATORS_POST,
    "annotation-api-datasets": API_RESEARCHERS,
    "annotation-api-dataset": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "annotation-api-dataset-download": API_RESEARCHERS
    | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "admin": {r: LOGIN for r in ROLES} | {"admin": OK},
    "api-token-auth": {r: NOT_ALLOWED for r in ROLES},
    "api-me": API_SIGNED_IN,
    "api-schema": EVERYONE,  # the API description is public; the data behind it is not
    "api-docs": EVERYONE,
    "api-leaderboard": {r: NOT_FOUND for r in ROLES},  # public; no snapshot in this test
    "contestant-list": API_SIGNED_IN,
    "contestant-detail": API_SIGNED_IN,
    "generation-list": API_SIGNED_IN,
    "generation-detail": {r: NOT_FOUND for r in ROLES}
    | {"anonymous": API_AUTH, "annotator": OK, "admin": OK},
    "battle-list": API_SIGNED_IN,
    "battle-detail": {r: NOT_FOUND for r in ROLES} | {"anonymous": API_AUTH, "annotator": OK},
    "battle-vote": {r: NOT_ALLOWED for r in ROLES} | {"anonymous": API_AUTH},
    "battle-cancel": {r: NOT_ALLOWED for r in ROLES} | {"anonymous": API_AUTH},
    "api-root": API_SIGNED_IN,
    "openai-chat": {r: NOT_ALLOWED for r in ROLES} | {"anonymous": API_AUTH},
    "openai-models": API_SIGNED_IN,
    # Evaluation: boards are public, suites and runs for researchers; no suite or evaluation
    # with the world's ids exists, so those who may look get 404.
    "evaluation:leaderboard": EVERYONE,
    "evaluation:suite": {r: NOT_FOUND for r in ROLES},
    "evaluation:evaluation": {r: NOT_FOUND for r in ROLES},
    "evaluation:export": {r: NOT_FOUND for r in ROLES},
    "evaluation:suites": RESEARCHERS,
    "evaluation:start": POST_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "reviewer": FORBIDDEN},
    "evaluation:import": POST_ONLY
    | {"anonymous": LOGIN, "outsider": FORBIDDEN, "annotator": FORBIDDEN, "reviewer": FORBIDDEN},
    "evaluation-suite-list": API_RESEARCHERS,
    "evaluation-suite-detail": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "evaluation-suite-leaderboard": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "evaluation-suite-export": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "evaluation-suite-import-alpaca": API_RESEARCHERS
    | {"researcher": NOT_ALLOWED, "admin": NOT_ALLOWED},
    "evaluation-run-list": API_RESEARCHERS,
    "evaluation-run-detail": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "evaluation-result-list": API_RESEARCHERS,
    "evaluation-result-detail": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
    "evaluation-result-judgments": API_RESEARCHERS | {"researcher": NOT_FOUND, "admin": NOT_FOUND},
}


def _names(patterns, namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                yield "admin"
                continue
            yield from _names(p.url_patterns, f"{p.namespace}:" if p.namespace else namespace)
        elif isinstance(p, URLPattern) and p.name:
            yield namespace + p.name


def test_every_url_is_in_the_permission_matrix():
    missing = sorted(set(_names(get_resolver().url_patterns)) - set(MATRIX))
    assert not missing, f"add these URLs to MATRIX: {missing}"


@pytest.fixture
def world(db, annotator, tiny_contestant, tiny_model_dir):
    """Objects owned by the annotator, for the URLs that take an id."""
    services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    battle = battles.battle_start(actor=battles.Actor(user=annotator, session_key="x"), prompt="hi")
    # A model tried on its own: the answers of an unvoted anonymous battle are seen only
    # through the battle (tests/arena/test_anonymity.py).
    generation = services.generation_request(
        contestant=tiny_contestant, messages=[{"role": "user", "content": "hi"}], user=annotator
    )
    project = annotation_services.project_create(name="P", slug="p")
    prompt = annotation_services.prompt_create(
        project=project, messages=[{"role": "user", "content": "q"}]
    )
    answers = [annotation_services.completion_add_human(prompt=prompt, text=t) for t in "xy"]
    annotation_services.ranking_item_create(prompt=prompt, completions=answers)
    assignment = annotation_services.task_next(project=project, user=annotator)
    snapshot = DatasetSnapshot.objects.create(name="s", source="rankings", format="preference")
    run = TrainingRun.objects.create(kind="dpo", base_model=tiny_contestant, snapshot=snapshot)
    judge = RewardModel.objects.create(name="judge", path="/models/judge")
    best_of_n = JudgeJob.objects.create(
        judge=judge, kind=JudgeJobKind.BEST_OF_N, contestant=tiny_contestant, status="succeeded"
    )
    return {
        "public_id": battle.public_id,
        "generation_id": generation.pk,
        "pk": generation.pk,
        "name": tiny_contestant.name,
        "slug": project.slug,
        "assignment_id": assignment.pk,
        "run_id": run.pk,
        "judge_id": judge.pk,
        "job_id": best_of_n.pk,
        "kind": "ranking",
        "work_id": 1,
    }


def _url(name: str, world: dict) -> str:
    if name == "admin":
        return "/admin/"
    if name.startswith("training-run-") and name != "training-run-list":
        return reverse(name, kwargs={"pk": world["run_id"]})
    if name == "judge-job":
        return reverse(name, kwargs={"pk": world["judge_id"], "job_id": world["job_id"]})
    if name.startswith("judge-") and name != "judge-list":
        return reverse(name, kwargs={"pk": world["judge_id"]})
    for kwargs in (
        {},
        {"public_id": world["public_id"]},
        {"generation_id": world["pk"]},
        {"pk": world["pk"]},
        {"name": world["name"]},
        {"slug": world["slug"]},
        {"assignment_id": world["assignment_id"]},
        {"kind": world["kind"], "work_id": world["work_id"]},
        {"run_id": world["run_id"]},
        {"judge_id": world["judge_id"]},
        {"judge_id": world["judge_id"], "job_id": world["job_id"]},
        {"suite_id": 999_999},
        {"evaluation_id": 999_999},
    ):
        try:
            return reverse(name, kwargs=kwargs)
        except Exception:  # noqa: BLE001 - try the next shape of arguments
            continue
    raise AssertionError(f"cannot build a URL for {name}")


@pytest.mark.django_db
def test_each_role_gets_the_expected_status_on_every_url(
    world, client, annotator, reviewer, researcher, admin_user, outsider
):
    from django.test import Client

    users = {
        "outsider": outsider,
        "annotator": annotator,
        "reviewer": reviewer,
        "researcher": researcher,
        "admin": admin_user,
    }
    problems = []
    for role in ROLES:
        browser = Client()
        if role != "anonymous":
            browser.force_login(users[role])
        for name, expected in MATRIX.items():
            url = _url(name, world)
            status = browser.get(url).status_code
            if status != expected[role]:
                problems.append(f"{role:10} GET {url}: {status}, expected {expected[role]}")
    assert not problems, "\n".join(problems)
