"""API tokens: created once (only a SHA-256 digest is stored), accepted from a header or the ``access_token``
query parameter, compared in constant time; failed attempts rate-limited per client address.

A token looks like ``semc_<prefix>_<secret>``: the 8-character prefix is public (it identifies the
token in ``semc token list`` and selects the candidate rows), the 43-character secret carries 256 bits
of randomness, so a plain SHA-256 digest is enough (a slow password hash protects low-entropy secrets).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction

from semc.base.errors import InvalidParameters
from semc.web.models import ApiToken

__all__ = [
    "TOKEN_RE",
    "USERNAME_RE",
    "AuthResult",
    "client_address",
    "failure_record",
    "failures_exceeded",
    "token_authenticate",
    "token_create",
    "token_from_request",
    "token_list",
    "token_revoke",
]

logger = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^semc_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_AUTH_HEADER_RE = re.compile(r"^(?:Bearer|Token)\s+(\S+)\s*$", re.IGNORECASE)
#: user names (Leginon's and Django's): no path separators, no leading dot or dash
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}$")
_DUMMY_DIGEST = hashlib.sha256(b"semc: no such token").hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now()


def token_create(*, username: str, label: str = "", expires_days: float | None = None,
                 staff: bool = False) -> tuple[ApiToken, str]:
    """A new token for ``username`` (the Django user is created, without a password, if missing);
    returns the row and the token, which is never shown again."""
    if not USERNAME_RE.match(username or ""):
        raise InvalidParameters(f"invalid user name {username!r}: letters, digits and _.@+- only")
    if expires_days is not None and expires_days <= 0:
        raise InvalidParameters(f"expiry must be positive, got {expires_days} days")
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
        if staff and not user.is_staff:
            user.is_staff = True
        user.save()
        while True:
            prefix = secrets.token_hex(4)
            token = f"semc_{prefix}_{secrets.token_urlsafe(32)}"
            if not ApiToken.objects.filter(prefix=prefix).exists():
                break
        expires = _now() + dt.timedelta(days=expires_days) if expires_days else None
        row = ApiToken.objects.create(user=user, label=label[:100], prefix=prefix, digest=_digest(token),
                                      expires_at=expires)
    return row, token


def token_list(username: str | None = None) -> list[ApiToken]:
    query = ApiToken.objects.select_related("user")
    if username is not None:
        query = query.filter(user__username=username)
    return list(query.order_by("user__username", "created_at"))


def token_revoke(*, prefix: str | None = None, username: str | None = None) -> int:
    """Revoke one token (by its prefix) or every token of a user; returns how many were revoked."""
    if not prefix and not username:
        raise InvalidParameters("name a token prefix or a user")
    query = ApiToken.objects.filter(revoked_at__isnull=True)
    if prefix:
        query = query.filter(prefix=prefix.removeprefix("semc_").split("_")[0])
    if username:
        query = query.filter(user__username=username)
    return query.update(revoked_at=_now())


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The user a request authenticated as (None: no or bad credentials) and how."""

    user: object | None
    method: str  # "token", "session" or "" (none)
    presented: bool  # whether credentials were presented at all
    token: ApiToken | None = None


def token_authenticate(token: str):
    """The active user whose token this is, or None. Constant time in the secret: the digest is compared
    with ``hmac.compare_digest`` even when no row has the prefix."""
    match = TOKEN_RE.match(token or "")
    candidates = list(ApiToken.objects.select_related("user").filter(prefix=match.group(1))) if match else []
    digest = _digest(token or "")
    found = None
    for row in candidates or [None]:
        expected = row.digest if row is not None else _DUMMY_DIGEST
        if hmac.compare_digest(expected, digest) and row is not None:
            found = row
    if found is None or found.revoked_at is not None or not found.user.is_active:
        return None
    moment = _now()
    if found.expires_at is not None and found.expires_at <= moment:
        return None
    if found.last_used_at is None or (moment - found.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=moment)  # at most once a minute
    return found


def token_from_request(request) -> str | None:
    """The token a request presents: ``Authorization: Bearer|Token <token>``, the ``access_token`` header
    (as the USC service reads it) or the ``access_token`` query parameter (for compatibility; it ends up in
    access logs, prefer the header)."""
    header = request.headers.get("Authorization", "")
    if header:
        match = _AUTH_HEADER_RE.match(header)
        return match.group(1) if match else header
    return request.headers.get("access-token") or request.GET.get("access_token") or None


def client_address(request) -> str:
    """The peer address (REMOTE_ADDR; forwarded headers are not trusted: a client could forge them)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _failure_key(request) -> str:
    return "semc-auth-failures:" + hashlib.sha256(client_address(request).encode()).hexdigest()[:32]


def _limits() -> tuple[int, int]:
    return (int(getattr(settings, "SEMC_AUTH_FAILURES_MAX", 20)),
            int(getattr(settings, "SEMC_AUTH_FAILURES_WINDOW_S", 300)))


def failures_exceeded(request) -> int | None:
    """Seconds to wait when this client has failed too often within the window, else None."""
    limit, window = _limits()
    count = cache.get(_failure_key(request), 0)
    return window if count >= limit else None


def failure_record(request) -> None:
    """Count a failed authentication for this client (the window restarts with the first failure)."""
    _, window = _limits()
    key = _failure_key(request)
    logger.warning("failed API authentication from %s", client_address(request))
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
