"""Logging in, sessions, CSRF, the login throttle and who may do what."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from coobill.errors import BadRequest
from coobill.services import users
from coobill.services.context import BillingContext
from coobill.web import api, pages
from coobill.web.sessions import COOKIE
from tests.web.billing_data import PASSWORD
from tests.web.conftest import BASE, log_in


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


class TestLogin:
    async def test_the_login_form_starts_a_session_and_returns_to_the_page_asked_for(
        self, ctx: BillingContext, client: httpx.AsyncClient
    ) -> None:
        """A page asks for a login, the form logs in and goes back to that page."""
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        asked = await client.get("/rates")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/login?next=/rates"
        form = await client.get(asked.headers["location"])
        done = await client.post(
            "/login",
            data={
                "name": "bill",
                "password": PASSWORD,
                "next": "/rates",
                "csrf_token": csrf_in(form.text),
            },
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/rates"
        assert (await client.get("/rates")).status_code == 200

    async def test_the_session_cookie_is_httponly_and_samesite(
        self, ctx: BillingContext, client: httpx.AsyncClient
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        response = await client.post("/api/login", json={"name": "bill", "password": PASSWORD})
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie

    async def test_a_wrong_password_is_refused_without_telling_which_part_was_wrong(
        self, ctx: BillingContext, client: httpx.AsyncClient
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        wrong = await client.post("/api/login", json={"name": "bill", "password": "nope-nope"})
        nobody = await client.post("/api/login", json={"name": "nobody", "password": "nope-nope"})
        assert wrong.status_code == nobody.status_code == 401
        assert wrong.json()["message"] == nobody.json()["message"]
        assert (await client.get("/api/me")).status_code == 401

    async def test_the_login_form_without_its_csrf_token_is_refused(
        self, ctx: BillingContext, client: httpx.AsyncClient
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        await client.get("/login")
        refused = await client.post("/login", data={"name": "bill", "password": PASSWORD})
        assert refused.status_code == 403
        assert (await client.get("/api/me")).status_code == 401

    async def test_a_forged_cookie_is_no_session(self, client: httpx.AsyncClient) -> None:
        client.cookies.set(COOKIE, "eyJ1IjoxLCJjIjoieCIsImkiOjF9.forged")
        assert (await client.get("/api/me")).status_code == 401
        assert (await client.get("/extensions")).status_code == 303

    async def test_logging_out_ends_the_session(self, billing: httpx.AsyncClient) -> None:
        assert (await billing.post("/api/logout")).status_code == 204
        assert (await billing.get("/api/me")).status_code == 401

    async def test_login_never_redirects_to_another_site(
        self, ctx: BillingContext, client: httpx.AsyncClient
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        form = await client.get("/login?next=//evil.example/")
        assert "evil.example" not in form.text
        done = await client.post(
            "/login",
            data={
                "name": "bill",
                "password": PASSWORD,
                "next": "//evil.example/",
                "csrf_token": csrf_in(form.text),
            },
        )
        assert done.headers["location"] == "/extensions"


class TestLoginThrottle:
    async def test_five_failures_lock_the_name_out_from_that_address_even_with_the_right_password(
        self, ctx: BillingContext, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        for _ in range(5):
            failed = await client.post(
                "/api/login", json={"name": "bill", "password": "guess-1234"}
            )
            assert failed.status_code == 401
        locked = await client.post("/api/login", json={"name": "bill", "password": PASSWORD})
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "try again" in locked.json()["message"]
        other = httpx.ASGITransport(app=app, client=("10.0.0.9", 4000))
        async with httpx.AsyncClient(transport=other, base_url="http://portal.test") as elsewhere:
            assert (
                await elsewhere.post("/api/login", json={"name": "bill", "password": PASSWORD})
            ).status_code == 200

    async def test_the_login_form_says_when_it_is_throttled(
        self, ctx: BillingContext, client: httpx.AsyncClient
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        token = csrf_in((await client.get("/login")).text)
        for _ in range(5):
            await client.post("/login", data={"name": "bill", "password": "x", "csrf_token": token})
        page = await client.post(
            "/login", data={"name": "bill", "password": PASSWORD, "csrf_token": token}
        )
        assert page.status_code == 429
        assert "Too many failed logins" in page.text


def unsafe_routes() -> list[tuple[str, str]]:
    """Every POST and DELETE the portal serves, but logging in."""
    found = []
    for router in (*api.ROUTERS, *pages.ROUTERS):
        for route in router.routes:
            if not isinstance(route, APIRoute) or route.path in ("/login", "/api/login"):
                continue
            path = route.path.replace("{", "").replace("}", "")
            found.extend((method, path) for method in route.methods - {"GET", "HEAD"})
    return found


class TestCsrf:
    async def test_every_unsafe_route_refuses_a_request_without_the_token(
        self, billing: httpx.AsyncClient
    ) -> None:
        """Every POST and DELETE, page or API, is refused (403) without the session's token."""
        del billing.headers["X-CSRF-Token"]
        routes = unsafe_routes()
        assert len(routes) > 20
        for method, path in routes:
            response = await billing.request(method, path, json={})
            assert response.status_code == 403, (method, path, response.status_code)
            assert response.json()["error"] == "csrf" if path.startswith("/api") else True

    async def test_a_wrong_token_is_refused_and_the_form_field_is_accepted(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        token = billing.headers.pop("X-CSRF-Token")
        await billing.post("/api/extensions/100", json={}, headers={"X-CSRF-Token": token})
        wrong = await billing.post(
            "/extensions/recharge", data={"ext": "100", "amount": "5", "csrf_token": token + "x"}
        )
        assert wrong.status_code == 403
        right = await billing.post(
            "/extensions/recharge", data={"ext": "100", "amount": "5", "csrf_token": token}
        )
        assert right.status_code == 303

    async def test_without_a_session_an_api_post_asks_for_a_login(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/api/extensions/recharge", json={"extensions": ["1"], "amount": "1"}
        )
        assert response.status_code == 401


class TestRoles:
    async def test_a_billing_user_cannot_add_portal_users(self, billing: httpx.AsyncClient) -> None:
        api = await billing.post(
            "/api/users", json={"name": "eve", "password": PASSWORD, "role": "admin"}
        )
        assert api.status_code == 403
        assert api.json()["error"] == "forbidden"
        assert (await billing.get("/users")).status_code == 403
        assert (
            await billing.post(
                "/users", data={"name": "eve", "password": PASSWORD, "role": "admin"}
            )
        ).status_code == 403
        assert "/users" not in (await billing.get("/extensions")).text

    async def test_an_admin_adds_users_and_does_the_billing_too(
        self, admin: httpx.AsyncClient
    ) -> None:
        added = await admin.post(
            "/api/users", json={"name": "bill2", "password": PASSWORD, "role": "billing"}
        )
        assert added.status_code == 201
        assert added.json()["role"] == "billing"
        again = await admin.post(
            "/users", data={"name": "bill2", "password": PASSWORD, "role": "billing"}
        )
        assert again.status_code == 400
        assert "already exists" in again.text
        assert (await admin.get("/api/extensions")).status_code == 200

    async def test_a_short_password_is_refused_beside_its_field(
        self, admin: httpx.AsyncClient
    ) -> None:
        response = await admin.post(
            "/api/users", json={"name": "x", "password": "short", "role": "billing"}
        )
        assert response.status_code == 400
        assert response.json()["field"] == "password"


class TestUserManagement:
    async def test_an_admin_lists_resets_and_removes_users_on_the_page(
        self, ctx: BillingContext, admin: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        page = (await admin.get("/users")).text
        assert "bill" in page
        assert "(you)" in page
        assert (await admin.post("/users/password",
                                 data={"user": "bill", "new_password": "new secret"})
                ).status_code == 303
        assert await users.authenticate(ctx, "bill", PASSWORD) is None
        assert await users.authenticate(ctx, "bill", "new secret") is not None
        # bill is logged in elsewhere; removing him ends that session
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as bill:
            await log_in(bill, "bill", "new secret")
            assert (await admin.post("/users/remove", data={"user": "bill"})).status_code == 303
            assert (await bill.get("/api/me")).status_code == 401
        assert [u.name for u in await users.list_users(ctx)] == ["root"]

    async def test_a_new_password_ends_the_users_other_sessions(
        self, ctx: BillingContext, admin: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as bill:
            await log_in(bill, "bill")
            assert (await bill.get("/api/me")).status_code == 200
            await admin.put("/api/users/bill/password", json={"password": "new secret"})
            assert (await bill.get("/api/me")).status_code == 401
            await log_in(bill, "bill", "new secret")
            assert (await bill.get("/api/me")).status_code == 200
        # an admin setting their own password on the page stays logged in there
        assert (await admin.post("/users/password",
                                 data={"user": "root", "new_password": "new secret"})
                ).status_code == 303
        assert (await admin.get("/api/me")).json()["name"] == "root"
        # ... and over the API, where the CSRF token it holds keeps working
        await admin.put("/api/users/root/password", json={"password": "another secret"})
        assert (await admin.post("/api/me/language", json={"language": "zh"})).status_code == 200

    async def test_refusals_are_shown_beside_their_fields(self, admin: httpx.AsyncClient) -> None:
        short = await admin.post("/users/password", data={"user": "root", "new_password": "x"})
        assert short.status_code == 400
        assert "at least 8 characters" in short.text
        last = await admin.post("/users/remove", data={"user": "root"})
        assert last.status_code == 400
        assert "cannot remove yourself" in last.text

    async def test_the_api_lists_resets_and_removes_and_keeps_one_admin(
        self, ctx: BillingContext, admin: httpx.AsyncClient
    ) -> None:
        await users.add_user(ctx, "ops", PASSWORD, "admin")
        listed = await admin.get("/api/users")
        assert [u["name"] for u in listed.json()] == ["ops", "root"]
        assert (await admin.put("/api/users/ops/password", json={"password": "new secret"})
                ).json()["name"] == "ops"
        assert (await admin.delete("/api/users/nobody")).status_code == 404
        assert (await admin.delete("/api/users/ops")).status_code == 200
        assert (await admin.delete("/api/users/root")).json()["field"] == "name"
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        with pytest.raises(BadRequest, match="last admin"):
            await users.remove_user(ctx, "root")  # the CLI's way: no acting user

    async def test_a_billing_user_cannot_manage_users(self, billing: httpx.AsyncClient) -> None:
        assert (await billing.get("/api/users")).status_code == 403
        assert (await billing.delete("/api/users/bill")).status_code == 403
        assert (await billing.post("/users/remove", data={"user": "bill"})).status_code == 403


class TestLanguage:
    @pytest.mark.parametrize("label", ["分机", "余额", "信用额度", "支付方式", "总充值金额"])
    async def test_chinese_shows_the_manuals_labels(
        self, billing: httpx.AsyncClient, label: str
    ) -> None:
        switched = await billing.post("/api/me/language", json={"language": "zh"})
        assert switched.json()["language"] == "zh"
        assert label in (await billing.get("/extensions")).text

    async def test_the_language_form_stores_the_choice_in_the_user_row(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        done = await billing.post("/language", data={"language": "zh", "next": "/rates"})
        assert done.status_code == 303
        assert done.headers["location"] == "/rates"
        me = (await billing.get("/api/me")).json()
        assert (await users.get_user(ctx, me["id"])).language == "zh"
        page = (await billing.get("/rates")).text
        assert "费率" in page
        assert "前缀" in page
        assert 'lang="zh-CN"' in page
        await billing.post("/language", data={"language": "en"})
        assert "Prefix" in (await billing.get("/rates")).text

    async def test_an_unknown_language_is_refused(self, billing: httpx.AsyncClient) -> None:
        response = await billing.post("/api/me/language", json={"language": "fr"})
        assert response.status_code == 400
        assert response.json()["field"] == "language"


async def test_a_second_login_gets_a_new_csrf_token(
    ctx: BillingContext, client: httpx.AsyncClient
) -> None:
    await users.add_user(ctx, "bill", PASSWORD, "billing")
    first = await log_in(client, "bill")
    assert first != await log_in(client, "bill")
