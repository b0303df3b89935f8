"""Portal users: billing users and admins, with argon2-hashed passwords."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from coobill.errors import BadRequest, UnknownUser
from coobill.services.context import BillingContext
from coobill.services.settings import billing_settings
from coobill.storage.tables import User

ROLES = ("billing", "admin")
LANGUAGES = ("en", "zh")
# argon2id, 7 MiB and 5 passes in one lane: of the OWASP Password Storage Cheat Sheet's
# argon2id settings, which it rates as one level of defence (46 MiB x 1 ... 7 MiB x 5), the one
# of least memory. The hash runs in one thread (services/passwords.py) on the portal's CPU; at
# argon2-cffi's 64 MiB it swept the caches the gate shares on the other CPU, and a login flood
# put 3-6 ms on the gate's p99 where 7 MiB puts 0.2-3 (docs/benchmarks.md, 2026-12-04).
# Existing hashes keep verifying (their parameters are in them) and are rehashed at login.
_hasher = PasswordHasher(parallelism=1, memory_cost=7168, time_cost=5)


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


# Longer fields are refused before any hashing: argon2 reads all of a password it is given.
MAX_NAME = 64
MAX_PASSWORD = 1024
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def _check_password(password: str) -> None:
    if len(password or "") < 8:
        raise BadRequest("password: at least 8 characters", field="password")
    if len(password) > MAX_PASSWORD:
        raise BadRequest(f"password: at most {MAX_PASSWORD} characters", field="password")


def is_user_name(name: str) -> bool:
    """A name add_user would take: safe to write in a log line as it is."""
    return _NAME.fullmatch(name or "") is not None


def check_login_fields(name: str, password: str) -> None:
    """A login's fields within their caps (a name nobody can have is still a wrong login)."""
    if len(name or "") > MAX_NAME:
        raise BadRequest(f"name: at most {MAX_NAME} characters", field="name")
    if len(password or "") > MAX_PASSWORD:
        raise BadRequest(f"password: at most {MAX_PASSWORD} characters", field="password")


async def _hash(ctx: BillingContext, password: str) -> str:
    hasher = _hasher  # read now: tests swap in cheaper parameters
    return await ctx.passwords.run(lambda: hasher.hash(password))


def _verify(hasher: PasswordHasher, stored: str, password: str) -> tuple[bool, bool]:
    """(matches, wants a new hash with the current parameters)."""
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, hasher.check_needs_rehash(stored)


# A hash of nothing anyone can type, per hasher parameters: an unknown name is verified
# against it, so it costs what a known name costs (no user enumeration by timing).
_UNKNOWN_USER_HASHES: dict[tuple[int, int, int], str] = {}


async def _unknown_user_hash(ctx: BillingContext) -> str:
    hasher = _hasher
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _UNKNOWN_USER_HASHES:
        _UNKNOWN_USER_HASHES[key] = await ctx.passwords.run(
            lambda: hasher.hash(secrets.token_urlsafe(32)))
    return _UNKNOWN_USER_HASHES[key]


async def add_user(ctx: BillingContext, name: str, password: str, role: str) -> PortalUser:
    if not is_user_name(name):
        raise BadRequest("name: letters, digits and _ . @ - only (1-64)", field="name")
    if role not in ROLES:
        raise BadRequest("role: must be billing or admin", field="role")
    _check_password(password)
    async with ctx.uow() as uow:
        if (await uow.session.execute(select(User.id).where(User.name == name))).first():
            raise BadRequest(f"name: user {name} already exists", field="name")
    password_hash = await _hash(ctx, password)  # no unit of work open meanwhile
    async with ctx.uow() as uow:
        now = (await billing_settings(uow)).local(ctx.clock())
        user = User(name=name, password_hash=password_hash, role=role, language="en",
                    created_at=now)
        uow.session.add(user)
        try:
            await uow.session.flush()
        except IntegrityError:  # the same name added while this one hashed
            raise BadRequest(f"name: user {name} already exists", field="name") from None
        await uow.commit()
        return _view(user)


async def authenticate(ctx: BillingContext, name: str, password: str) -> PortalUser | None:
    """The user whose name and password these are; None for a wrong name or password."""
    check_login_fields(name, password)
    async with ctx.uow.read() as uow:
        found = await uow.session.execute(select(User).where(User.name == name))
        user = found.scalar_one_or_none()
    # The unit of work is closed: argon2 runs with no transaction (and no SQLite lock) open.
    stored = user.password_hash if user is not None else await _unknown_user_hash(ctx)
    hasher = _hasher
    matches, stale = await ctx.passwords.run(lambda: _verify(hasher, stored, password or ""))
    if user is None or not matches:
        return None
    if stale:
        await _rehash(ctx, user, password)
    return _view(user)


async def _rehash(ctx: BillingContext, user: User, password: str) -> None:
    """The hasher's parameters changed since this password was set: store a new hash, unless
    the password itself changed meanwhile (then the newer one stands)."""
    fresh = await _hash(ctx, password)
    async with ctx.uow() as uow:
        done = await uow.session.execute(
            update(User)
            .where(User.id == user.id, User.password_hash == user.password_hash)
            .values(password_hash=fresh)
        )
        await uow.commit()
    if done.rowcount:  # type: ignore[attr-defined]
        user.password_hash = fresh


async def get_user(ctx: BillingContext, user_id: int) -> PortalUser:
    async with ctx.uow.read() as uow:
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
    password_hash = await _hash(ctx, password)  # before the row is locked, not while
    async with ctx.uow() as uow:
        user = await _by_name(uow, name)
        user.password_hash = password_hash
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
            admins = (
                (
                    await uow.session.execute(
                        select(User.id).where(User.role == "admin").with_for_update()
                    )
                )
                .scalars()
                .all()
            )
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
