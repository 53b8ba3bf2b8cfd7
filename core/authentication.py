"""API token authentication, with the token's user kept briefly in the cache.

Every API call names its token. Its user and the user's roles are read in one prepared
statement, and kept (the user with its role names) in the cache under a hash of the token for
API_TOKEN_CACHE_SECONDS. Deleting a token, saving a user and changing a user's groups drop the
entries of that user's tokens at once; with the default per-process cache, other server
processes notice within that many seconds (with a shared cache such as Redis, at once). 0 turns
the cache off.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from core.roles import user_roles_keep
from core.rows import RowReader, run


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
        name = _cache_key(key) if seconds > 0 else ""
        user = cache.get(name) if name else None
        if user is None:
            user = _token_user(key)
            if name:
                cache.set(name, user, timeout=seconds)
        return user, key


@functools.cache
def _token_statement() -> tuple[str, RowReader]:
    """The user of a token and the user's group names (a row per group), in one statement."""
    User = get_user_model()
    q = connection.ops.quote_name
    pk = q(User._meta.pk.column)
    reader = RowReader(User, [f.name for f in User._meta.concrete_fields], table="u")
    membership = User.groups.through
    user_column = membership._meta.get_field("user").column
    group_column = membership._meta.get_field("group").column
    sql = (
        f"SELECT {', '.join(reader.columns)}, g.{q('name')}"
        f" FROM {q(Token._meta.db_table)} t"
        f" INNER JOIN {q(User._meta.db_table)} u ON u.{pk} = t.{q('user_id')}"
        f" LEFT JOIN {q(membership._meta.db_table)} ug ON ug.{q(user_column)} = u.{pk}"
        f" LEFT JOIN {q(Group._meta.db_table)} g ON g.{q('id')} = ug.{q(group_column)}"
        f" WHERE t.{q('key')} = %s"
    )
    return sql, reader


def _token_user(key: str):
    """The active user a token belongs to, with its role names kept on it (`user_roles`);
    one statement instead of DRF's two (token and user, then roles)."""
    sql, reader = _token_statement()
    rows = run(sql, [key]).rows
    if not rows:
        raise exceptions.AuthenticationFailed(_("Invalid token."))
    user = reader.read(rows[0][: len(reader)])
    if not user.is_active:
        raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
    user_roles_keep(user, [row[-1] for row in rows])
    return user


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
