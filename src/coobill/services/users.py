"""Portal users: billing users and admins, with argon2-hashed passwords."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from coobill.errors import BadRequest, UnknownUser
from coobill.services.context import BillingContext
from coobill.services.settings import read_settings
from coobill.storage.tables import User

ROLES = ("billing", "admin")
LANGUAGES = ("en", "zh")
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class PortalUser:
    id: int
    name: str
    role: str
    language: str
    # Changes with the password: a session remembers it, so a new password ends the others.
    credential: str = ""


def _view(u: User) -> PortalUser:
    credential = hashlib.sha256(b"coobill-credential:" + u.password_hash.encode()).hexdigest()
    return PortalUser(u.id, u.name, u.role, u.language, credential[:24])


def _check_password(password: str) -> None:
    if len(password or "") < 8:
        raise BadRequest("password: at least 8 characters", field="password")


async def add_user(ctx: BillingContext, name: str, password: str, role: str) -> PortalUser:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name or ""):
        raise BadRequest("name: letters, digits and _ . @ - only (1-64)", field="name")
    if role not in ROLES:
        raise BadRequest("role: must be billing or admin", field="role")
    _check_password(password)
    async with ctx.uow() as uow:
        if (await uow.session.execute(select(User.id).where(User.name == name))).first():
            raise BadRequest(f"name: user {name} already exists", field="name")
        now = (await read_settings(uow)).local(ctx.clock())
        user = User(name=name, password_hash=_hasher.hash(password), role=role, language="en",
                    created_at=now)
        uow.session.add(user)
        await uow.session.flush()
        await uow.commit()
        return _view(user)


async def authenticate(ctx: BillingContext, name: str, password: str) -> PortalUser | None:
    async with ctx.uow() as uow:
        user = (await uow.session.execute(select(User).where(User.name == name))).scalar_one_or_none()
        if user is None:
            _hasher.hash(password or "x")  # same work either way: no user enumeration by timing
            return None
        try:
            _hasher.verify(user.password_hash, password or "")
        except (VerificationError, InvalidHashError):
            return None
        return _view(user)


async def get_user(ctx: BillingContext, user_id: int) -> PortalUser:
    async with ctx.uow() as uow:
        user = await uow.session.get(User, user_id)
        if user is None:
            raise UnknownUser(f"user {user_id} does not exist")
        return _view(user)


async def set_language(ctx: BillingContext, user_id: int, language: str) -> PortalUser:
    if language not in LANGUAGES:
        raise BadRequest("language: must be en or zh", field="language")
    async with ctx.uow() as uow:
        user = await uow.session.get(User, user_id)
        if user is None:
            raise UnknownUser(f"user {user_id} does not exist")
        user.language = language
        await uow.commit()
        return _view(user)


async def count_users(ctx: BillingContext) -> int:
    async with ctx.uow() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(User))).scalar_one())


async def list_users(ctx: BillingContext) -> list[PortalUser]:
    """Every portal user, by name."""
    async with ctx.uow() as uow:
        found = (await uow.session.execute(select(User).order_by(User.name))).scalars().all()
        return [_view(u) for u in found]


async def _by_name(uow, name: str) -> User:  # type: ignore[no-untyped-def]
    user = (
        await uow.session.execute(select(User).where(User.name == name).with_for_update())
    ).scalar_one_or_none()
    if user is None:
        raise UnknownUser(f"user {name} does not exist", field="name")
    return user  # type: ignore[no-any-return]


async def set_password(ctx: BillingContext, name: str, password: str) -> PortalUser:
    """Give `name` a new password (an admin resetting a forgotten one, or the operator)."""
    _check_password(password)
    async with ctx.uow() as uow:
        user = await _by_name(uow, name)
        user.password_hash = _hasher.hash(password)
        await uow.commit()
        return _view(user)


async def remove_user(ctx: BillingContext, name: str, *, by: int | None = None) -> PortalUser:
    """Remove a portal user; their sessions end with them. `by` (the admin doing it in the
    portal) cannot remove themselves, and the last admin cannot be removed at all: someone
    must be left who can add users."""
    async with ctx.uow() as uow:
        user = await _by_name(uow, name)
        if by is not None and user.id == by:
            raise BadRequest("name: you cannot remove yourself", field="name")
        if user.role == "admin":
            # Every admin row locked (PostgreSQL): two admins removing each other at once
            # cannot both see the other still there.
            admins = (await uow.session.execute(
                select(User.id).where(User.role == "admin").with_for_update())).scalars().all()
            if len(admins) <= 1:
                raise BadRequest(f"name: {name} is the last admin", field="name")
        removed = _view(user)
        await uow.session.execute(delete(User).where(User.id == user.id))
        await uow.commit()
        return removed


FIRST_ADMIN = "admin"


async def make_first_admin(ctx: BillingContext) -> tuple[PortalUser, str] | None:
    """On a ledger with no portal user at all: an admin named `admin` with a random password,
    returned once for the daemon to show (as Jenkins or Portainer do on first start). None when
    a user exists already, or another daemon on the same ledger made one a moment ago."""
    if await count_users(ctx):
        return None
    password = secrets.token_urlsafe(12)
    try:
        user = await add_user(ctx, FIRST_ADMIN, password, "admin")
    except (BadRequest, IntegrityError):  # made meanwhile (another daemon): theirs stands
        return None
    return user, password
