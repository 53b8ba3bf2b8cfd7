from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.permissions import role_required
from core.roles import Role
from training import judges, selectors, services
from training.forms import BestOfNForm, JudgeJobForm, RunForm
from training.models import RewardModel, RunKind, RunStatus, TrainingRun

VIEW = (Role.RESEARCHER, Role.ADMIN)


@role_required(*VIEW)
@require_GET
def training_home(request):
    """Runs (filterable), the model tree, and what a new run can start from."""
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    context = {
        "runs": selectors.run_list(status=status, kind=kind)[:200],
        "tree": selectors.model_tree(),
        "judges": selectors.judge_list(),
        "statuses": RunStatus.choices,
        "kinds": RunKind.choices,
        "status": status,
        "kind": kind,
    }
    return render(request, "training/home.html", context)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def run_new(request):
    form = RunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run_request = services.run_request_build(
                kind=data["kind"],
                loss_type=data["loss_type"],
                base_model=data["base_model"],
                snapshot=data["snapshot"],
                hyperparameters=data["hyperparameters"],
                reward_model=data["reward_model"],
                verifier=data["verifier"],
                eval_judge=data["eval_judge"],
                eval_suite=data["eval_suite"],
            )
        except services.RunSettingsError as exc:
            form.add_error("hyperparameters", [f"{k}: {v}" for k, v in exc.errors.items()])
        except services.RunError as exc:
            form.add_error(None, str(exc))
        else:
            run = services.training_run_create(request=run_request, user=request.user)
            return redirect("training:run", run_id=run.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "training/run_new.html",
        {"form": form},
        status=status,
    )


@role_required(*VIEW)
@require_GET
def run_detail(request, run_id: int):
    run = get_object_or_404(
        TrainingRun.objects.select_related(
            "base_model",
            "snapshot",
            "result_contestant",
            "eval_judge__run",
            "eval_suite",
            "evaluation",
        ),
        pk=run_id,
    )
    context = {
        "run": run,
        "charts": selectors.run_charts(run),
        "settings": selectors.run_settings(run),
        "arena": selectors.run_arena(run),
    }
    template = "training/run.html#progress" if request.htmx else "training/run.html"
    return render(request, template, context)


def _control(request, run_id: int, action) -> object:
    run = get_object_or_404(TrainingRun, pk=run_id)
    try:
        action(run=run)
    except services.RunError as exc:
        messages.error(request, str(exc))
    return redirect("training:run", run_id=run.pk)


@role_required(Role.ADMIN)
@require_POST
def run_cancel(request, run_id: int):
    return _control(request, run_id, services.training_run_cancel)


@role_required(Role.ADMIN)
@require_POST
def run_resume(request, run_id: int):
    return _control(request, run_id, services.training_run_resume)


# --- Judges -------------------------------------------------------------------------------------
def _judge_page(
    request,
    judge: RewardModel,
    *,
    job_form=None,
    bon_form=None,
    bon_job=None,
    error: str = "",
    status: int = 200,
):
    context = {
        "judge": judge,
        "summary": selectors.judge_summary(judge=judge),
        "job_form": job_form or JudgeJobForm(),
        "bon_form": bon_form or BestOfNForm(),
        "bon_job": bon_job,
        "error": error,
        "threshold": judges.DEFAULT_FLAG_THRESHOLD,
    }
    return render(request, "training/judge.html", context, status=status)


@role_required(*VIEW)
@require_GET
def judge_detail(request, judge_id: int):
    """A judge: agreement with arena votes, scored candidates, jobs, flags, best-of-n."""
    judge = get_object_or_404(RewardModel.objects.select_related("run", "base_model"), pk=judge_id)
    if request.htmx:
        return render(
            request,
            "training/judge.html#jobs",
            {"judge": judge, "summary": selectors.judge_summary(judge=judge)},
        )
    return _judge_page(request, judge)


@role_required(Role.ADMIN)
@require_POST
def judge_job_start(request, judge_id: int):
    judge = get_object_or_404(RewardModel, pk=judge_id)
    form = JudgeJobForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            judges.judge_job_create(
                judge=judge,
                kind=data["kind"],
                project=data["project"],
                threshold=data["threshold"],
                user=request.user,
            )
        except judges.JudgeError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Queued; this page shows the job's progress.")
            return redirect("training:judge", judge_id=judge.pk)
    return _judge_page(request, judge, job_form=form, status=400)


@role_required(*VIEW)
@require_POST
def judge_best_of_n(request, judge_id: int):
    """Queue n samples and their scores on the gpu worker; the fragment that answers polls the
    job until the ranked samples are there (htmx), or the page shows where to find them."""
    judge = get_object_or_404(RewardModel, pk=judge_id)
    form = BestOfNForm(request.POST)
    job, error = None, ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            job = judges.judge_best_of_n_start(
                judge=judge,
                contestant=data["contestant"],
                prompt=data["prompt"],
                n=data["n"],
                temperature=data["temperature"],
                max_new_tokens=data["max_new_tokens"],
                seed=data["seed"] or 0,
                user=request.user,
            )
        except judges.JudgeError as exc:
            error = str(exc)
    else:
        error = " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    if job is not None and not request.htmx:
        return redirect("training:judge-best-of-n-job", judge_id=judge.pk, job_id=job.pk)
    status = 400 if error else 202
    if request.htmx:
        context = {"judge": judge, "bon_job": job, "error": error}
        response = render(request, "training/judge.html#best-of-n", context, status=status)
        if job is not None:
            response["HX-Trigger"] = "judge-jobs-changed"  # the jobs table lists it
        return response
    return _judge_page(request, judge, bon_form=form, error=error, status=status)


@role_required(*VIEW)
@require_GET
def judge_best_of_n_job(request, judge_id: int, job_id: int):
    """One best-of-n request: waiting, failed, or its samples best first."""
    judge = get_object_or_404(RewardModel, pk=judge_id)
    job = get_object_or_404(selectors.best_of_n_jobs(judge=judge), pk=job_id)
    if request.htmx:
        context = {"judge": judge, "bon_job": job}
        response = render(request, "training/judge.html#best-of-n", context)
        if job.is_finished:
            response["HX-Trigger"] = "judge-jobs-changed"  # its result shows in the jobs table
        return response
    return _judge_page(request, judge, bon_job=job)
