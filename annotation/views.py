from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from annotation.models import Project


@login_required
def project_list(request):
    projects = Project.objects.prefetch_related("contestants")
    return render(request, "annotation/project_list.html", {"projects": projects})


@login_required
def project_detail(request, slug: str):
    project = get_object_or_404(Project.objects.prefetch_related("contestants"), slug=slug)
    prompts = project.prompts.all()
    return render(
        request, "annotation/project_detail.html", {"project": project, "prompts": prompts}
    )
