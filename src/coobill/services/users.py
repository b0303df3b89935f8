"""Portal users: billing users and admins, with argon2-hashed passwords."""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

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


def _view(u: User) -> PortalUser:
    return PortalUser(u.id, u.name, u.role, u.language)


async def add_user(ctx: BillingContext, name: str, password: str, role: str) -> PortalUser:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name or ""):
        raise BadRequest("name: letters, digits and _ . @ - only (1-64)", field="name")
    if role not in ROLES:
        raise BadRequest("role: must be billing or admin", field="role")
    if len(password or "") < 8:
        raise BadRequest("password: at least 8 characters", field="password")
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
