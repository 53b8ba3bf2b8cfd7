"""Pages of annotation: the annotator's shift (next task, ranking, demonstration, skip), the
reviewer's queue, the admin's import, candidate generation and dashboard, and the
researcher's dataset snapshots."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation import datasets, selectors, services
from annotation.forms import (
    DatasetForm,
    DemonstrationForm,
    GenerateForm,
    ImportForm,
    PreviewForm,
    RankingForm,
    ReviewForm,
    SkipForm,
)
from annotation.imports import ImportRefused, parse_file, upload_read
from annotation.models import (
    Assignment,
    DatasetSnapshot,
    Demonstration,
    Project,
    Ranking,
    ReviewStatus,
    SnapshotStatus,
    TaskKind,
)
from annotation.services import TaskError
from core.permissions import role_required
from core.roles import user_has_role

ANNOTATE = ("annotator",)
REVIEW = ("reviewer",)
OVERSEE = ("admin", "researcher", "reviewer")


@login_required
def project_list(request):
    context = {
        "projects": selectors.project_list(),
        "feedback_unseen": selectors.feedback_unseen(user=request.user),
    }
    return render(request, "annotation/project_list.html", context)


@role_required(*ANNOTATE)
def my_work(request):
    """The annotator's history across projects: each piece of work with its review state and
    the reviewer's comment, and per project their agreement with others and gold accuracy.
    Opening it counts as reading the reviews."""
    status = request.GET.get("status", "")
    if status not in ReviewStatus.values:
        status = ""
    context = {
        "rows": selectors.annotator_work(user=request.user, status=status),
        "summary": selectors.annotator_summary(user=request.user),
        "status": status,
        "statuses": ReviewStatus.choices,
    }
    response = render(request, "annotation/my_work.html", context)
    services.feedback_mark_seen(user=request.user)
    return response


@login_required
def project_detail(request, slug: str):
    project = get_object_or_404(Project.objects.prefetch_related("contestants"), slug=slug)
    context = {
        "project": project,
        "prompts": project.prompts.all()[:200],
        "prompt_count": project.prompts.count(),
        "counts": selectors.project_counts(project=project),
        "has_pending": selectors.user_has_pending(project=project, user=request.user),
        "kind": request.session.get(_kind_key(project), ""),
        "sizes": selectors.ranking_sizes(project=project),
        "import_form": ImportForm(),
        "generate_form": GenerateForm(),
    }
    return render(request, "annotation/project_detail.html", context)


@role_required(*ANNOTATE)
@require_http_methods(["GET", "POST"])
def task_next(request, slug: str):
    """POST: claim (or resume) the annotator's next task and open it. GET reserves nothing (a
    link, a prefetch or a crawler must not take work from the queue): it resumes the task the
    annotator holds, or shows a button that asks for one."""
    project = get_object_or_404(Project, slug=slug)
    if request.method == "POST":
        if "kind" in request.POST:
            request.session[_kind_key(project)] = request.POST["kind"]
        return _open_next_task(request, project)
    current = selectors.assignment_current(project=project, user=request.user)
    if current is not None:
        return redirect("annotation:task", assignment_id=current.id)
    context = {"project": project, "kind": request.session.get(_kind_key(project), "")}
    return render(request, "annotation/next.html", context)


def _kind_key(project: Project) -> str:
    """The session key of the task kind the annotator asked for in this project ("" mixed)."""
    return f"annotation-kind-{project.pk}"


def _open_next_task(request, project: Project):
    """Claim the annotator's next task (from a POST, of the kind they asked for) and redirect
    to it."""
    kind = request.session.get(_kind_key(project), "")
    try:
        assignment = services.task_next(project=project, user=request.user, kind=kind)
    except TaskError as exc:
        request.session.pop(_kind_key(project), None)
        messages.error(request, exc.message)
        return redirect("annotation:project", slug=project.slug)
    if assignment is None:
        what = f"No {kind} tasks" if kind else "Nothing"
        messages.info(request, f"{what} left in the queue for you in this project. Thank you!")
        return redirect("annotation:project", slug=project.slug)
    return redirect("annotation:task", assignment_id=assignment.id)


def _own_assignment(request, assignment_id: int) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item__project", "item__prompt"),
        pk=assignment_id,
        user=request.user,
    )


@role_required(*ANNOTATE)
@require_http_methods(["GET", "POST"])
def task_page(request, assignment_id: int):
    assignment = _own_assignment(request, assignment_id)
    if assignment.item.kind == TaskKind.RANKING:
        return _ranking_page(request, assignment)
    return _demonstration_page(request, assignment)


def _task_context(assignment: Assignment, **extra) -> dict:
    project = assignment.item.project
    return {
        "assignment": assignment,
        "project": project,
        "prompt": assignment.item.prompt,
        "skip_form": SkipForm(),
        **extra,
    }


def _ranking_page(request, assignment: Assignment):
    project = assignment.item.project
    form = RankingForm(
        request.POST or None, letters=assignment.letters, schema=project.label_schema
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.ranking_submit(
                assignment=assignment,
                user=request.user,
                order=form.cleaned_data["order"],
                labels=form.labels(),
                rationale=form.cleaned_data["rationale"],
                all_bad=form.cleaned_data["all_bad"],
            )
        except TaskError as exc:
            form.add_error(None, exc.message)
            status = exc.status
        else:
            messages.success(request, "Ranking saved.")
            return _open_next_task(request, project)
    elif request.method == "POST":
        status = 400
    answers = selectors.task_answers(assignment=assignment)
    rows = [{"answer": a, "labels": form.label_fields(a.letter)} for a in answers]
    context = _task_context(assignment, form=form, rows=rows, pairwise=len(answers) == 2)
    return render(request, "annotation/ranking.html", context, status=status)


def _demonstration_page(request, assignment: Assignment):
    start = None
    starts = selectors.demonstration_starting_points(assignment=assignment)
    if request.method == "POST":
        form = DemonstrationForm(request.POST)
    else:
        start = next((c for c in starts if str(c.id) == request.GET.get("start")), None)
        initial = {"text": start.text, "edited_from": start.id} if start else {}
        form = DemonstrationForm(initial=initial)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.demonstration_submit(
                assignment=assignment,
                user=request.user,
                text=form.cleaned_data["text"],
                edited_from=form.cleaned_data["edited_from"],
            )
        except TaskError as exc:
            form.add_error(None, exc.message)
            status = exc.status
        else:
            messages.success(request, "Demonstration saved.")
            return _open_next_task(request, assignment.item.project)
    elif request.method == "POST":
        status = 400
    context = _task_context(assignment, form=form, starts=starts, start=start)
    return render(request, "annotation/demonstration.html", context, status=status)


@role_required(*ANNOTATE)
@require_POST
def task_skip(request, assignment_id: int):
    assignment = _own_assignment(request, assignment_id)
    form = SkipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why you skip this task.")
        return redirect("annotation:task", assignment_id=assignment.id)
    try:
        services.task_skip(
            assignment=assignment, user=request.user, reason=form.cleaned_data["reason"]
        )
    except TaskError as exc:
        messages.error(request, exc.message)
        return redirect("annotation:next", slug=assignment.item.project.slug)
    return _open_next_task(request, assignment.item.project)


@login_required
@require_POST
def markdown_preview(request):
    form = PreviewForm(request.POST)
    text = form.cleaned_data["text"] if form.is_valid() else ""
    return render(request, "annotation/demonstration.html#preview", {"text": text})


# --------------------------------------------------------------------------- review


@role_required(*REVIEW)
def review_page(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    queue = selectors.review_queue(project=project, reviewer=request.user)
    rankings = [
        {
            "work": r,
            "groups": selectors.ranking_display(r),
            "order": selectors.ranking_order_text(r),
        }
        for r in queue["rankings"]
    ]
    context = {"project": project, "rankings": rankings, "demonstrations": queue["demonstrations"]}
    return render(request, "annotation/review.html", context)


@role_required(*REVIEW)
@require_POST
def review_decide(request, kind: str, work_id: int):
    model = {"ranking": Ranking, "demonstration": Demonstration}.get(kind)
    if model is None:
        return HttpResponse("Unknown kind of work.", status=404)
    work = get_object_or_404(model, pk=work_id)
    form = ReviewForm(request.POST)
    error, status = "", 200
    if form.is_valid():
        try:
            services.review_decide(
                work=work,
                reviewer=request.user,
                accept=form.cleaned_data["decision"] == "accept",
                comment=form.cleaned_data["comment"],
            )
        except TaskError as exc:
            error, status = exc.message, exc.status
    else:
        error, status = "Choose accept or reject.", 400
    if request.htmx and error:
        # The form comes back in place with the message; the work stays in the queue.
        comment = request.POST.get("comment", "")
        context = {"work": work, "kind": kind, "error": error, "comment": comment}
        response = render(request, "annotation/_review_form.html", context, status=status)
        response["HX-Retarget"] = f"#review-{kind}-{work.id}"
        response["HX-Reswap"] = "outerHTML"
        return response
    if request.htmx:
        context = {"work": work, "kind": kind}
        return render(request, "annotation/review.html#decided", context)
    if error:
        messages.error(request, error)
    return redirect("annotation:review", slug=work.project.slug)


# --------------------------------------------------------------------------- admin


@role_required("admin")
@require_POST
def prompts_import(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file to import.")
        return redirect("annotation:project", slug=slug)
    upload = form.cleaned_data["file"]
    try:
        rows = parse_file(
            upload_read(upload),
            filename=upload.name,
            declared_format=form.cleaned_data["format"],
            instruction=form.cleaned_data["instruction"],
            answer=form.cleaned_data["answer"],
            category=form.cleaned_data["category"],
        )
    except ImportRefused as exc:
        messages.error(request, f"{upload.name} was refused, nothing was stored: {exc}")
        return redirect("annotation:project", slug=slug)
    result = services.prompts_import(
        project=project, rows=rows, source=upload.name, user=request.user
    )
    note = f" Skipped {len(result.duplicates)} duplicates." if result.duplicates else ""
    messages.success(
        request,
        f"Imported {result.created} prompts and {result.demonstrations} "
        f"demonstrations from {upload.name}.{note}",
    )
    return redirect("annotation:project", slug=slug)


@role_required("admin")
@require_POST
def candidates_generate(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    form = GenerateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give how many prompts to answer (1-1000).")
        return redirect("annotation:project", slug=slug)
    prompts = project.prompts.filter(completions__isnull=True)[: form.cleaned_data["limit"]]
    try:
        items = services.candidates_generate(project=project, prompts=prompts, user=request.user)
    except TaskError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Asked the models for answers to {len(items)} prompts.")
    return redirect("annotation:project", slug=slug)


@role_required(*OVERSEE)
def dashboard(request, slug: str):
    project = get_object_or_404(Project, slug=slug)
    leaderboard = selectors.project_leaderboard(project=project)
    context = {
        "project": project,
        "progress": selectors.project_progress(project=project),
        "agreement": selectors.project_agreement(project=project),
        "annotators": selectors.annotator_stats(project=project),
        "bias": selectors.project_position_bias(project=project),
        "fast": selectors.fast_judgments(project=project, limit=20),
        "leaderboard": leaderboard,
        "arena_rows": selectors.arena_board(models=[row["model"] for row in leaderboard]),
        "arena_url": _arena_leaderboard_url(),
        "is_admin": user_has_role(request.user, "admin"),
    }
    return render(request, "annotation/dashboard.html", context)


def _arena_leaderboard_url() -> str:
    try:
        return reverse("arena:leaderboard")
    except NoReverseMatch:
        return ""


# --------------------------------------------------------------------------- datasets

RESEARCH = ("researcher", "admin")


@role_required(*RESEARCH)
@require_http_methods(["GET", "POST"])
def dataset_list(request):
    """The snapshots, newest first, and the form that asks for a new one."""
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            spec = datasets.Spec(
                source=d["source"],
                format=d["format"],
                project=d["project"],
                style=d["style"],
                pairs=d["pairs"],
                ties=d["ties"],
                filters=datasets.Filters.parse(form.filters()),
            )
            snapshot = datasets.snapshot_create(name=d["name"], spec=spec, user=request.user)
        except datasets.DatasetError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("annotation:dataset", pk=snapshot.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "snapshots": datasets.snapshot_list()[:100]}
    return render(request, "annotation/datasets.html", context, status=status)


@role_required(*RESEARCH)
def dataset_detail(request, pk: int):
    """A snapshot's progress, card, counts, hash and downloads; htmx polls the progress
    fragment until the build is finished."""
    snapshot = get_object_or_404(DatasetSnapshot.objects.select_related("project"), pk=pk)
    template = "annotation/datasets_detail.html"
    if request.htmx:
        template += "#snapshot"
    ready = snapshot.status == SnapshotStatus.READY
    rows = datasets.snapshot_preview(snapshot=snapshot) if ready else []
    columns = list(dict.fromkeys(key for row in rows for key in row))
    preview = {"columns": columns, "rows": [[_cell(r.get(k, "")) for k in columns] for r in rows]}
    return render(request, template, {"snapshot": snapshot, "preview": preview})


def _cell(value) -> str:
    """A preview cell: text as it is, chat messages one `role: content` line each, anything
    else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        return "\n".join(f"{m['role']}: {m.get('content', '')}" for m in value)
    return json.dumps(value, ensure_ascii=False)


@role_required(*RESEARCH)
@require_POST
def dataset_retry(request, pk: int):
    """Build a failed snapshot's request again (a new snapshot; the failed one stays)."""
    snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
    try:
        retry = datasets.snapshot_retry(snapshot=snapshot, user=request.user)
    except datasets.DatasetError as exc:
        messages.error(request, str(exc))
        return redirect("annotation:dataset", pk=snapshot.pk)
    return redirect("annotation:dataset", pk=retry.pk)


@role_required(*RESEARCH)
def dataset_download(request, pk: int):
    """A snapshot's file (`?file=jsonl|parquet|card`), served after the role check rather than
    from MEDIA_URL."""
    snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
    kind = request.GET.get("file", "parquet")
    try:
        path = datasets.snapshot_file(snapshot=snapshot, kind=kind)
    except datasets.DatasetError as exc:
        raise Http404(str(exc)) from None
    name = datasets.snapshot_download_name(snapshot, kind)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=name)  # noqa: SIM115
