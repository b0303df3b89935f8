"""The portal against the `ctx` ledger (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from coobill.services import users
from coobill.services.context import BillingContext
from coobill.web.app import create_app
from tests.web.billing_data import PASSWORD

BASE = "http://portal.test"


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2, with parameters cheap enough for a test per login (the default costs
    ~0.1 s a hash, twice per test)."""
    monkeypatch.setattr(
        users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def app(ctx: BillingContext) -> FastAPI:
    return create_app(ctx)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """Log in over the API; the client then sends the session's CSRF token on every request."""
    response = await client.post("/api/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token


@pytest.fixture
async def billing(ctx: BillingContext, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client logged in as the billing user "bill"."""
    await users.add_user(ctx, "bill", PASSWORD, "billing")
    await log_in(client, "bill")
    return client


@pytest.fixture
async def admin(ctx: BillingContext, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await users.add_user(ctx, "root", PASSWORD, "admin")
    await log_in(client, "root")
    return client
