"""REST endpoints of annotation, mounted under /api/annotation/."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()
urlpatterns = router.urls
