from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from arena import battles, limits, selectors, services
from arena.api.serializers import (
    BattleCreateSerializer,
    BattleSerializer,
    ContestantSerializer,
    GenerationCreateSerializer,
    GenerationSerializer,
    LeaderboardSerializer,
    VoteSerializer,
)
from arena.battles import Actor, BattleError
from arena.models import Battle, Generation
from core.client import client_address
from core.idempotency import idempotent
from core.permissions import HasRole
from core.roles import Role


@contextmanager
def _model_errors_as_400():
    """A model validation error raised by a service is the client's mistake: a 400 naming it."""
    try:
        yield
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None


class ContestantViewSet(viewsets.ModelViewSet):
    """The model registry. Everyone signed in reads names and descriptions; admins also read
    how each model is served and decodes, and change it."""

    serializer_class = ContestantSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"  # names may hold dots (`gpt-4.1`)

    def get_queryset(self):
        return selectors.contestant_list()

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsAuthenticated()]
        return [HasRole.of(Role.ADMIN)()]

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        with _model_errors_as_400():
            serializer.instance = services.contestant_create(**serializer.validated_data)

    def perform_update(self, serializer):
        with _model_errors_as_400():
            serializer.instance = services.contestant_update(
                contestant=serializer.instance, **serializer.validated_data
            )

    @extend_schema(responses={204: None, 409: None})
    def destroy(self, request, *args, **kwargs):
        try:
            services.contestant_delete(contestant=self.get_object())
        except services.ContestantInUse as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Generation.objects.none()
        return selectors.generation_list_for_user(user=self.request.user)

    @extend_schema(request=GenerationCreateSerializer, responses={202: GenerationSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = GenerationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        contestant = values.pop("contestant")
        messages = [dict(m) for m in values.pop("messages")]
        wait = limits.generation_rate_wait(request.user)
        if wait:
            return Response(
                {"detail": limits.rate_message(wait)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        try:
            with transaction.atomic():
                generation = services.generation_request(
                    contestant=contestant, messages=messages, user=request.user, overrides=values
                )
        except ValueError as exc:
            raise ValidationError({"messages": [str(exc)]}) from None
        body = self.get_serializer(generation).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


def _api_actor(request) -> Actor:
    return Actor(user=request.user, ip=client_address(request))


def _refusal(exc: BattleError) -> Response:
    code = status.HTTP_429_TOO_MANY_REQUESTS if isinstance(exc, battles.RateLimited) else 409
    return Response({"detail": str(exc)}, status=code)


class BattleViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Arena battles: start one, poll it, vote once. Model names stay null until the vote."""

    serializer_class = BattleSerializer
    lookup_field = "public_id"

    def get_queryset(self):
        qs = Battle.objects.select_related("contestant_a", "contestant_b")
        if getattr(self, "swagger_fake_view", False):
            return qs.none()
        return qs.filter(user=self.request.user).prefetch_related(
            "turns__generation_a", "turns__generation_b"
        )

    def retrieve(self, request, public_id=None):
        try:
            battle = selectors.battle_get_for_user(public_id=public_id, user_id=request.user.pk)
        except (Battle.DoesNotExist, DjangoValidationError):
            raise NotFound("No battle of yours has this id.") from None
        return Response(BattleSerializer(battle, context={"request": request}).data)

    @extend_schema(request=BattleCreateSerializer, responses={201: BattleSerializer})
    @idempotent
    def create(self, request):
        data = BattleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            battle = battles.battle_start(
                actor=_api_actor(request),
                prompt=values["prompt"],
                mode=values["mode"],
                contestant_a=values.get("contestant_a"),
                contestant_b=values.get("contestant_b"),
            )
        except ValueError as exc:
            raise ValidationError({"prompt": [str(exc)]}) from None
        except BattleError as exc:
            return _refusal(exc)
        return Response(
            BattleSerializer(battle, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=VoteSerializer, responses={200: BattleSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def vote(self, request, public_id=None):
        data = VoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The vote finds, locks and reads one of the user's own battles itself (404 for any
        # other id): reading it here first would cost a query for nothing.
        try:
            battle = battles.battle_vote(
                public_id=public_id,
                actor=_api_actor(request),
                winner=data.validated_data["winner"],
            )
        except (Battle.DoesNotExist, DjangoValidationError):
            raise NotFound("No battle of yours has this id.") from None
        except BattleError as exc:
            return _refusal(exc)
        return Response(BattleSerializer(battle, context={"request": request}).data)

    @extend_schema(request=None, responses={200: BattleSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, public_id=None):
        """Withdraw the last turn's unfinished answers: one in line is never written, one
        being written stops at its next token and keeps its words. 409 when both are done."""
        try:
            battle = selectors.battle_get_for_user(public_id=public_id, user_id=request.user.pk)
            battles.battle_cancel(battle=battle, actor=_api_actor(request))
        except (Battle.DoesNotExist, DjangoValidationError):
            raise NotFound("No battle of yours has this id.") from None
        except BattleError as exc:
            return _refusal(exc)
        battle = selectors.battle_get_for_user(public_id=public_id, user_id=request.user.pk)
        return Response(BattleSerializer(battle, context={"request": request}).data)


def _flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class LeaderboardView(APIView):
    """The newest fitted leaderboard for a category (blank: all) with or without style control."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("category", str, required=False),
            OpenApiParameter("style_control", bool, required=False),
            OpenApiParameter("include_annotation", bool, required=False),
        ],
        responses={200: LeaderboardSerializer},
    )
    def get(self, request):
        snapshot = selectors.leaderboard_latest(
            category=request.query_params.get("category", ""),
            style_control=_flag(request, "style_control"),
            include_annotation=_flag(request, "include_annotation"),
        )
        if snapshot is None:
            return Response({"detail": "No leaderboard for these filters yet."}, status=404)
        return Response(LeaderboardSerializer(snapshot).data)
