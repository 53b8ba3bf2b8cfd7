"""API token authentication, with the token's user kept briefly in the cache.

Every API call names its token; reading the token, its user and the user's roles costs two
queries a request, more than the rest of a vote. The user (with its role names) is therefore
cached under a hash of the token for API_TOKEN_CACHE_SECONDS. Deleting a token, saving a user
and changing a user's groups drop the entries of that user's tokens at once; with the default
per-process cache, other server processes notice within that many seconds (with a shared cache
such as Redis, at once). 0 turns the cache off.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from core.roles import user_roles


def _cache_key(key: str) -> str:
    return "api-token:" + hashlib.sha256(key.encode()).hexdigest()


class BearerTokenAuthentication(TokenAuthentication):
    """API tokens sent as `Authorization: Bearer <key>`, the header OpenAI clients send.

    `Authorization: Token <key>` (DRF's own keyword) is accepted too.
    """

    keyword = "Bearer"
    accepted = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.accepted:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as 'Authorization: Bearer <key>'."
            )
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token has invalid characters.") from None
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key):
        seconds = settings.API_TOKEN_CACHE_SECONDS
        if seconds <= 0:
            return super().authenticate_credentials(key)
        name = _cache_key(key)
        user = cache.get(name)
        if user is None:
            user, token = super().authenticate_credentials(key)
            user_roles(user)  # computed once, kept on the cached user
            cache.set(name, user, timeout=seconds)
            return user, token
        return user, key


def _forget_tokens_of(user_id) -> None:
    keys = Token.objects.filter(user_id=user_id).values_list("key", flat=True)
    cache.delete_many([_cache_key(key) for key in keys])


@receiver(post_delete, sender=Token, dispatch_uid="core.auth.token_deleted")
def _token_deleted(sender, instance, **kwargs) -> None:
    cache.delete(_cache_key(instance.key))


@receiver(post_save, sender=get_user_model(), dispatch_uid="core.auth.user_saved")
def _user_saved(sender, instance, created, **kwargs) -> None:
    if not created:
        _forget_tokens_of(instance.pk)


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="core.auth.groups")
def _groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:
        _forget_tokens_of(instance.pk)
    elif action == "pre_clear":  # a group loses all its members
        for user_id in instance.user_set.values_list("pk", flat=True):
            _forget_tokens_of(user_id)
    else:
        for user_id in pk_set or ():
            _forget_tokens_of(user_id)
