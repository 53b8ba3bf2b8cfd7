"""Pages of evaluation: the evaluation leaderboard (a tab beside the arena's), the per-prompt
drill-down, suites (list and upload), starting an evaluation, AlpacaEval import and export."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.permissions import role_required
from core.roles import Role
from evaluation import alpaca_formats, imports, selectors, services, suites
from evaluation.forms import AlpacaImportForm, EvaluationStartForm, SuiteUploadForm
from evaluation.models import Evaluation, Suite

WRITE = (Role.RESEARCHER, Role.ADMIN)


@require_GET
def leaderboard_page(request, suite_id: int | None = None):
    if suite_id is None and request.GET.get("suite", "").isdigit():  # the page's suite picker
        suite_id = int(request.GET["suite"])
    suite = (
        get_object_or_404(Suite.objects.select_related("baseline"), pk=suite_id)
        if suite_id
        else selectors.suite_list().filter(evaluations__isnull=False).first()
    )
    context = selectors.leaderboard_view(suite=suite, judge_label=request.GET.get("judge", ""))
    context |= {"start_form": EvaluationStartForm(), "import_form": AlpacaImportForm()}
    return render(request, "evaluation/leaderboard.html", context)


@require_GET
def evaluation_detail(request, evaluation_id: int):
    """One contestant's judgments: each prompt with both answers and the verdict."""
    evaluation = get_object_or_404(
        Evaluation.objects.select_related("suite__baseline", "contestant"), pk=evaluation_id
    )
    judgments = selectors.evaluation_judgments(evaluation=evaluation)
    return render(
        request,
        "evaluation/evaluation.html",
        {"evaluation": evaluation, "judgments": judgments, "suite": evaluation.suite},
    )


@role_required(*WRITE)
@require_http_methods(["GET", "POST"])
def suites_page(request):
    form = SuiteUploadForm(request.POST or None, request.FILES or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            suite = suites.suite_create_from_upload(
                name=data["name"],
                baseline=data["baseline"],
                data=data["file"].read(),
                filename=data["file"].name,
                description=data["description"],
                user=request.user,
            )
        except suites.SuiteRefused as exc:
            error = f"The suite was not created: {exc}"
        else:
            messages.success(request, f"Suite {suite.name}: {suite.prompts.count()} prompts.")
            return redirect("evaluation:suite", suite_id=suite.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "error": error, "suites": selectors.suite_list()}
    return render(request, "evaluation/suites.html", context, status=status)


@role_required(*WRITE)
@require_POST
def evaluation_start(request, suite_id: int):
    suite = get_object_or_404(Suite, pk=suite_id)
    form = EvaluationStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("evaluation:suite", suite_id=suite.pk)
    data = form.cleaned_data
    try:
        run = services.evaluation_run_create(
            suite=suite,
            contestants=list(data["contestants"]),
            imported_generators=data["imported_generators"],
            judge=data["judge"],
            both_orders=data["both_orders"],
            template_version=data["template_version"],
            user=request.user,
        )
    except services.EvaluationRefused as exc:
        messages.error(request, f"The evaluation was not started: {exc}")
    else:
        messages.success(request, f"Evaluation run #{run.pk} queued.")
        if warning := getattr(data["judge"], "heldout_warning", ""):
            messages.warning(request, warning)
    return redirect("evaluation:suite", suite_id=suite.pk)


@role_required(*WRITE)
@require_POST
def alpaca_import(request, suite_id: int):
    suite = get_object_or_404(Suite, pk=suite_id)
    form = AlpacaImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file and what it holds.")
        return redirect("evaluation:suite", suite_id=suite.pk)
    upload = form.cleaned_data["file"]
    importer = (
        imports.annotations_import
        if form.cleaned_data["kind"] == "annotations"
        else imports.model_outputs_import
    )
    try:
        counts = importer(suite=suite, data=upload.read(), filename=upload.name)
    except suites.SuiteRefused as exc:
        messages.error(request, f"Nothing was imported: {exc}")
    else:
        done = ", ".join(f"{g}: {n}" for g, n in sorted(counts.items()))
        messages.success(request, f"Imported {done}.")
    return redirect("evaluation:suite", suite_id=suite.pk)


@require_GET
def leaderboard_csv(request, suite_id: int):
    """The suite's leaderboard under one judge, as AlpacaEval's leaderboard CSV."""
    suite = get_object_or_404(Suite, pk=suite_id)
    labels = selectors.suite_judge_labels(suite=suite)
    label = request.GET.get("judge") or (labels[0] if labels else "")
    rows = selectors.leaderboard_rows(suite=suite, judge_label=label)
    response = HttpResponse(alpaca_formats.leaderboard_csv(rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{suite.name}_leaderboard.csv"'
    return response
