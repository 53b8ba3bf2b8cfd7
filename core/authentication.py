"""API token authentication: the token's user kept briefly in the shared cache, revocation
seen at once by every server process, optional expiry.

Every API call names its token. Its user, the user's roles and the token's expiry are read in
one prepared statement, and kept in the cache under a hash of the token for
API_TOKEN_CACHE_SECONDS (0 turns this off). Each entry carries the token's generation, a value
kept in the same cache beside it and read with it (one `get_many`): revoking the token, saving
its user, changing the user's groups or password give the token a new generation, so an entry
written before (even by a request that read the database a moment before the revocation and
wrote the cache a moment after) is never served again. The cache is shared by every process
(Redis, or the database), so this holds across all of them at once.

Setting a new password (`set_password`, whatever calls it: the password forms, the admin,
`changepassword`) deletes all the user's tokens. A token expires API_TOKEN_TTL_DAYS after its
creation when that is set, or at its own `TokenExpiry` when it was created with one, whichever
comes first.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from core.models import TokenExpiry
from core.roles import user_roles_keep
from core.rows import RowReader, run


def _cache_keys(key: str) -> tuple[str, str]:
    """The cache entry of a token and its generation."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return "api-token:" + digest, "api-token-gen:" + digest


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
            user, created, own = _token_user(key)
        else:
            name, generation = _cache_keys(key)
            found = cache.get_many([name, generation])
            entry = found.get(name)
            if entry is not None and entry[0] == found.get(generation):
                user, created, own = entry[1:]
            else:
                user, created, own = _token_user(key)
                cache.set(name, (found.get(generation), user, created, own), timeout=seconds)
        ends = token_expiry(created=created, own=own)
        if ends is not None and ends <= timezone.now():
            raise exceptions.AuthenticationFailed("The token has expired; create a new one.")
        return user, key


@functools.cache
def _token_statement() -> tuple[str, RowReader, RowReader, RowReader]:
    """A token's user, its creation and expiry, and the user's group names (a row per group),
    in one statement."""
    User = get_user_model()
    q = connection.ops.quote_name
    pk = q(User._meta.pk.column)
    reader = RowReader(User, [f.name for f in User._meta.concrete_fields], table="u")
    created = RowReader(Token, ["created"], table="t")
    expiry = RowReader(TokenExpiry, ["expires_at"], table="e")
    membership = User.groups.through
    user_column = membership._meta.get_field("user").column
    group_column = membership._meta.get_field("group").column
    token_column = TokenExpiry._meta.get_field("token").column
    sql = (
        f"SELECT {', '.join(reader.columns + created.columns + expiry.columns)}, g.{q('name')}"
        f" FROM {q(Token._meta.db_table)} t"
        f" INNER JOIN {q(User._meta.db_table)} u ON u.{pk} = t.{q('user_id')}"
        f" LEFT JOIN {q(TokenExpiry._meta.db_table)} e ON e.{q(token_column)} = t.{q('key')}"
        f" LEFT JOIN {q(membership._meta.db_table)} ug ON ug.{q(user_column)} = u.{pk}"
        f" LEFT JOIN {q(Group._meta.db_table)} g ON g.{q('id')} = ug.{q(group_column)}"
        f" WHERE t.{q('key')} = %s"
    )
    return sql, reader, created, expiry


def _token_user(key: str):
    """The active user a token belongs to, with its role names kept on it (`user_roles`), the
    token's creation and its own expiry (None: none); one statement instead of DRF's two
    (token and user, then roles)."""
    sql, reader, created, expiry = _token_statement()
    rows = run(sql, [key]).rows
    if not rows:
        raise exceptions.AuthenticationFailed(_("Invalid token."))
    n = len(reader)
    user = reader.read(rows[0][:n])
    if not user.is_active:
        raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
    user_roles_keep(user, [row[-1] for row in rows])
    own = expiry.read(rows[0][n + 1 : n + 2]).expires_at
    return user, created.read(rows[0][n : n + 1]).created, own


def token_expiry(*, created: datetime.datetime, own: datetime.datetime | None):
    """When a token created at `created`, with its own expiry `own` (or None), stops working."""
    ends = [own] if own is not None else []
    if settings.API_TOKEN_TTL_DAYS:
        ends.append(created + datetime.timedelta(days=settings.API_TOKEN_TTL_DAYS))
    return min(ends, default=None)


def token_expired(token: Token) -> bool:
    """Whether `token` (a row read by the ORM) no longer works."""
    own = TokenExpiry.objects.filter(token=token).values_list("expires_at", flat=True).first()
    ends = token_expiry(created=token.created, own=own)
    return ends is not None and ends <= timezone.now()


@transaction.atomic
def api_token_create(*, user, expires_in_days: int | None = None) -> Token:
    """A new API token for `user`, replacing (revoking) the one it had; with
    `expires_in_days`, it stops working that many days from now."""
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user)
    if expires_in_days:
        expires_at = timezone.now() + datetime.timedelta(days=expires_in_days)
        TokenExpiry.objects.create(token=token, expires_at=expires_at)
    return token


def api_token_revoke(*, user) -> int:
    """Revoke the user's API tokens, at once in every process; how many there were."""
    return Token.objects.filter(user=user).delete()[1].get(Token._meta.label, 0)


def _new_generation(keys) -> None:
    """Entries of these tokens written so far are never served again. Done at once and again
    after commit: a request that reads the database between the two still sees the token."""

    def bump():
        seconds = settings.API_TOKEN_CACHE_SECONDS
        if seconds <= 0:
            return
        names = [_cache_keys(key) for key in keys]
        # The generation outlives every entry written under the previous one.
        cache.set_many({gen: uuid.uuid4().hex for _, gen in names}, timeout=seconds + 60)
        cache.delete_many([name for name, _ in names])

    keys = list(keys)
    if keys:
        bump()
        transaction.on_commit(bump)


def _forget_tokens_of(user_id) -> None:
    _new_generation(Token.objects.filter(user_id=user_id).values_list("key", flat=True))


@receiver(post_delete, sender=Token, dispatch_uid="core.auth.token_deleted")
def _token_deleted(sender, instance, **kwargs) -> None:
    _new_generation([instance.key])


@receiver(post_save, sender=get_user_model(), dispatch_uid="core.auth.user_saved")
def _user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created:
        return
    # set_password() leaves the new password in `_password` until save() returns (a hash
    # upgrade at login clears it first: not a new password).
    if getattr(instance, "_password", None) is not None:
        Token.objects.filter(user_id=instance.pk).delete()
    else:
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
