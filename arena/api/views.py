from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.response import Response

from arena import selectors, services
from arena.api.serializers import (
    ContestantSerializer,
    GenerationCreateSerializer,
    GenerationSerializer,
)
from arena.models import Generation
from core.permissions import HasRole
from core.roles import Role


class ContestantViewSet(viewsets.ModelViewSet):
    """The model registry. Everyone signed in can read it; admins change it."""

    serializer_class = ContestantSerializer
    lookup_field = "name"

    def get_queryset(self):
        return selectors.contestant_list()

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsAuthenticated()]
        return [HasRole.of(Role.ADMIN)()]


class GenerationViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Ask a contestant for an answer; a worker produces it. Poll the returned id until
    `status` is `succeeded` or `failed`."""

    serializer_class = GenerationSerializer

    def get_queryset(self):
        qs = Generation.objects.select_related("contestant")
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return qs.none()
        return qs if self.request.user.is_staff else qs.filter(requested_by=self.request.user)

    @extend_schema(request=GenerationCreateSerializer, responses={202: GenerationSerializer})
    def create(self, request, *args, **kwargs):
        data = GenerationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        contestant = values.pop("contestant")
        messages = [dict(m) for m in values.pop("messages")]
        try:
            with transaction.atomic():
                generation = services.generation_request(
                    contestant=contestant, messages=messages, user=request.user, overrides=values
                )
        except ValueError as exc:
            raise ValidationError({"messages": [str(exc)]}) from None
        return Response(GenerationSerializer(generation).data, status=status.HTTP_202_ACCEPTED)
