"""REST endpoints of evaluation, mounted under /api/evaluation/."""

from rest_framework.routers import SimpleRouter

from evaluation.api import views

router = SimpleRouter()
router.include_format_suffixes = False  # one URL per resource
router.register("suites", views.SuiteViewSet, basename="evaluation-suite")
router.register("runs", views.EvaluationRunViewSet, basename="evaluation-run")
router.register("results", views.EvaluationViewSet, basename="evaluation-result")

urlpatterns = router.urls
