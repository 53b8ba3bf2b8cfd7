from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from core import login_throttle
from core.authentication import api_token_create, api_token_revoke, token_expired
from core.client import client_address
from core.roles import user_roles


class TokenRequest(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Make a new token (replacing the current one) that stops working after "
        "this many days.",
    )


_TOKEN = inline_serializer("Token", {"token": serializers.CharField()})


class LoginThrottle(AnonRateThrottle):
    """A ceiling on token requests per client address (the password-guessing rules are
    `core.login_throttle`'s)."""

    rate = "20/min"

    def get_ident(self, request):
        return client_address(request)


class TokenView(APIView):
    """Exchange a username and password for an API token (POST); revoke it (DELETE)."""

    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    @extend_schema(request=TokenRequest, responses={200: _TOKEN, 429: None})
    def post(self, request):
        data = TokenRequest(data=request.data)
        data.is_valid(raise_exception=True)
        username, password = data.validated_data["username"], data.validated_data["password"]
        wait = login_throttle.login_wait(request, username)
        if wait:
            return Response(
                {"detail": login_throttle.wait_message(wait)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        user = authenticate(request, username=username, password=password)
        if user is None:
            login_throttle.login_failed(request, username)
            return Response(
                {"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST
            )
        login_throttle.login_succeeded(request, username)
        days = data.validated_data.get("expires_in_days")
        token = Token.objects.filter(user=user).first() if not days else None
        if token is None or token_expired(token):
            token = api_token_create(user=user, expires_in_days=days)
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "Me",
                {
                    "username": serializers.CharField(),
                    "roles": serializers.ListField(child=serializers.CharField()),
                },
            )
        }
    )
    def get(self, request):
        return Response(
            {"username": request.user.username, "roles": sorted(user_roles(request.user))}
        )
