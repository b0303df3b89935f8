"""Sessions end on the server: the cookie of a logged-out or superseded session, replayed
from anywhere, is no login."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from coobill.services import users
from coobill.services.context import BillingContext
from coobill.storage.tables import PortalSession
from coobill.web.sessions import COOKIE, SessionSigner
from tests.conftest import FakeClock
from tests.web.billing_data import PASSWORD
from tests.web.conftest import BASE, log_in


async def session_rows(ctx: BillingContext) -> int:
    async with ctx.uow() as uow:
        return int((await uow.session.execute(
            select(func.count()).select_from(PortalSession))).scalar_one())


def replaying(app: FastAPI, cookie: str) -> httpx.AsyncClient:
    """Another browser holding a copy of the cookie (stolen, or kept from before logout)."""
    copy = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    copy.cookies.set(COOKIE, cookie)
    return copy


class TestLogout:
    async def test_the_old_cookie_after_an_api_logout_is_refused_everywhere(
        self, ctx: BillingContext, billing: httpx.AsyncClient, app: FastAPI
    ) -> None:
        cookie = billing.cookies[COOKIE]
        assert await session_rows(ctx) == 1
        assert (await billing.post("/api/logout")).status_code == 204
        assert await session_rows(ctx) == 0
        async with replaying(app, cookie) as copy:
            assert (await copy.get("/api/me")).status_code == 401
            page = await copy.get("/extensions")
            assert page.status_code == 303
            assert page.headers["location"].startswith("/login")

    async def test_the_old_cookie_after_the_logout_form_is_refused(
        self, ctx: BillingContext, billing: httpx.AsyncClient, app: FastAPI
    ) -> None:
        cookie = billing.cookies[COOKIE]
        form = (await billing.get("/extensions")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        out = await billing.post("/logout", data={"csrf_token": token.group(1)})
        assert out.status_code == 303
        async with replaying(app, cookie) as copy:
            assert (await copy.get("/api/me")).status_code == 401


class TestPasswordChange:
    async def test_a_new_password_deletes_the_users_other_sessions_and_keeps_this_one(
        self, ctx: BillingContext, admin: httpx.AsyncClient, app: FastAPI
    ) -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as other:
            await log_in(other, "root")
            assert await session_rows(ctx) == 2
            changed = await admin.put("/api/users/root/password", json={"password": "new secret"})
            assert changed.status_code == 200
            assert await session_rows(ctx) == 1
            assert (await other.get("/api/me")).status_code == 401
        assert (await admin.get("/api/me")).json()["name"] == "root"

    async def test_a_stale_session_found_after_a_password_change_elsewhere_is_deleted(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await users.set_password(ctx, "bill", "changed by the cli")  # not through the portal
        assert (await billing.get("/api/me")).status_code == 401
        assert await session_rows(ctx) == 0


class TestExpiry:
    async def test_a_session_lapses_after_12_hours_and_lapsed_rows_are_pruned_at_the_next_login(
        self, ctx: BillingContext, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        wall = [1_800_000_000.0]
        app.state.portal.signer = SessionSigner("a test key", clock=lambda: wall[0])
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        await log_in(client, "bill")
        wall[0] += 12 * 3600 + 1
        assert (await client.get("/api/me")).status_code == 401
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as other:
            await log_in(other, "bill", PASSWORD)
        assert await session_rows(ctx) == 1

    async def test_the_billing_clock_moving_on_a_day_does_not_end_a_session(
        self, billing: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        clock.advance(86400)
        assert (await billing.get("/api/me")).status_code == 200
