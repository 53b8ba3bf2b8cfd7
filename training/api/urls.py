"""REST endpoints of training, mounted under /api/training/."""

from rest_framework.routers import SimpleRouter

from training.api import views

router = SimpleRouter()
router.include_format_suffixes = False  # one URL per resource
router.register("runs", views.TrainingRunViewSet, basename="training-run")
router.register("judges", views.JudgeViewSet, basename="judge")

urlpatterns = router.urls
