"""Issue 14's input findings through the real portal: every bad input is a 4xx with a reason
(never a 500), bodies and fields are capped before any work, the throttle's memory is bounded,
password hashing leaves the event loop free, and every response carries security headers."""

from __future__ import annotations

import asyncio
import configparser
import logging
import re
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from coobill.services import balances, extensions, users
from coobill.services.context import BillingContext
from coobill.web.app import create_app
from coobill.web.throttle import LoginThrottle
from tests.conftest import settings_for
from tests.web.billing_data import PASSWORD, add_extension
from tests.web.conftest import BASE

ROOT = Path(__file__).parents[2]
HUGE = "9223372036854775808"  # 2^63

# (method, path, JSON body or None, the statuses allowed, a word the reason must hold)
BAD_INPUTS: list[tuple[str, str, object, tuple[int, ...], str]] = [
    ("GET", "/extensions?page=²", None, (400,), "page"),
    ("GET", "/extensions?page=" + HUGE, None, (400,), "page"),
    ("GET", "/calls?page=８", None, (400,), "page"),
    ("GET", "/calls?date_to=9999-12-31", None, (400,), "9998-12-31"),
    ("GET", "/recharges?date_to=9999-12-31", None, (400,), "9998-12-31"),
    ("GET", "/recharges?date_from=２０２６-01-01", None, (400,), "YYYY-MM-DD"),
    ("GET", "/statistics?date_to=9999-12-31", None, (400,), "9998-12-31"),
    ("GET", "/api/calls?date_to=9999-12-31", None, (400,), "9998-12-31"),
    ("GET", "/api/recharges?date_to=9999-12-31", None, (400,), "9998-12-31"),
    ("GET", "/api/statistics?date_to=9999-12-31", None, (400,), "9998-12-31"),
    ("GET", "/api/extensions?offset=" + HUGE, None, (400,), "offset"),
    ("GET", "/api/calls?offset=" + HUGE, None, (400,), "offset"),
    ("GET", "/api/recharges?offset=" + HUGE, None, (400,), "offset"),
    ("GET", "/api/rates/" + HUGE, None, (404,), HUGE),
    ("DELETE", "/api/rates/" + HUGE, None, (404,), HUGE),
    ("GET", "/rates/" + HUGE + "/edit", None, (404,), HUGE),
    ("GET", "/api/rates/quote?extension=100&number=８８", None, (400,), "number"),
    ("GET", "/api/rates/quote?extension=100&number=0012&seconds=99999999999999999999", None,
     (400,), "seconds"),
    ("POST", "/api/rates", {"prefix": "８８", "rate": "0.1", "extensions": ["*"]}, (400,),
     "prefix"),
    ("POST", "/api/rates", {"prefix": "88", "rate": True, "extensions": ["*"]}, (400,),
     "decimal text"),
    ("POST", "/api/rates", {"prefix": "88", "rate": "0.1", "initial_cost": True,
                            "extensions": ["*"]}, (400,), "decimal text"),
    ("POST", "/api/rates", {"prefix": "88", "rate": "0.1", "period": True,
                            "extensions": ["*"]}, (400,), "whole number"),
    ("POST", "/api/rates", {"prefix": "88", "rate": "0.1", "length": "99999999999999999999",
                            "extensions": ["*"]}, (400,), "length"),
    ("POST", "/api/extensions/recharge", {"extensions": ["100"], "amount": True}, (400,),
     "decimal text"),
    ("POST", "/api/extensions/recharge", {"extensions": ["100"], "amount": 1.0}, (400,),
     "decimal text"),
    ("POST", "/api/extensions/recharge", {"extensions": ["100"], "amount": "１"}, (400,),
     "amount"),
    ("POST", "/api/extensions/recharge", {"extensions": ["100"], "amount": "1000000"}, (400,),
     "max_balance"),
    ("POST", "/api/extensions/100", {"credit_limit": True}, (400,), "decimal text"),
    ("POST", "/api/extensions/100", {"credit_limit": "1000000.0001"}, (400,), "max_balance"),
    ("POST", "/api/extensions/１００", {"name": "x"}, (400,), "extension"),
    ("POST", "/api/live/nope/charge", {"seconds": True}, (400,), "seconds"),
    ("POST", "/api/live/nope/charge", {"seconds": 99999999999999999999}, (400,), "seconds"),
    ("POST", "/api/login", {"name": "x" * 65, "password": "y"}, (400,), "name"),
    ("POST", "/api/login", {"name": "bill", "password": "y" * 1025}, (400,), "password"),
]


@pytest.fixture
async def stocked(ctx: BillingContext, billing: httpx.AsyncClient) -> httpx.AsyncClient:
    await add_extension(ctx, "100", "Front desk")
    await balances.recharge(ctx, ["100"], "10")
    return billing


class TestBadInput:
    async def test_every_bad_input_is_a_4xx_with_a_reason_and_changes_nothing(
        self, ctx: BillingContext, stocked: httpx.AsyncClient
    ) -> None:
        for method, path, body, statuses, word in BAD_INPUTS:
            answer = await stocked.request(method, path, json=body)
            assert answer.status_code in statuses, (method, path, body, answer.text[:300])
            reason = answer.json()["message"] if path.startswith("/api/") else answer.text
            assert word in reason, (method, path, reason[:300])
        view = await extensions.show_extension(ctx, "100")
        assert (view.balance, view.credit_limit) == (Decimal("10"), Decimal("0"))

    async def test_a_recharge_that_would_pass_the_ceiling_is_refused_for_every_extension(
        self, ctx: BillingContext, stocked: httpx.AsyncClient
    ) -> None:
        await add_extension(ctx, "101", "Back office")
        answer = await stocked.post("/api/extensions/recharge",
                                    json={"extensions": ["101", "100"], "amount": "999995"})
        assert answer.status_code == 400
        assert "the balance of 100 would be 1000005.0000" in answer.json()["message"]
        assert (await extensions.show_extension(ctx, "101")).balance == Decimal("0")


class TestBodyLimits:
    async def test_a_body_announced_too_large_is_a_413_before_it_is_read(
        self, client: httpx.AsyncClient
    ) -> None:
        answer = await client.post("/api/login", content=b"{" + b" " * 70_000 + b"}",
                                   headers={"content-type": "application/json"})
        assert answer.status_code == 413
        assert "larger than 65536 bytes" in answer.json()["message"]

    async def test_a_streamed_body_is_counted_and_cut_off(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(100):
                yield b"x" * 1024
            yield b'", "password": "y"}'

        answer = await client.post("/api/login", content=chunks(),
                                   headers={"content-type": "application/json"})
        assert answer.status_code == 413

    async def test_the_login_form_refuses_an_over_long_name_before_hashing(
        self, ctx: BillingContext, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text)
        assert token
        page = await client.post("/login", data={"name": "n" * 1000, "password": "x",
                                                 "csrf_token": token[1]})
        assert page.status_code == 400
        assert "at most 64 characters" in page.text
        assert ctx.passwords.peak == 0  # refused before any hash ran
        assert len(app.state.portal.throttle) == 0


class TestNulCharacters:
    """PostgreSQL refuses a NUL in any text it is sent: a NUL in a filter or a free-text
    field was a 500 there (review of issue 18); it is a 400 on both ledgers."""

    async def test_in_a_query_a_form_or_json_it_is_a_400_and_nothing_changes(
        self, ctx: BillingContext, stocked: httpx.AsyncClient
    ) -> None:
        for path, query in [("/calls", {"keyword": "\x00"}), ("/recharges", {"keyword": "a\x00"}),
                            ("/extensions", {"extension": "\x00"}),
                            ("/webhooks", {"extension": "\x00"})]:
            answer = await stocked.get(path, params=query)
            assert answer.status_code == 400, path
            assert "NUL" in answer.json()["message"]
        for path, form in [("/extensions/100/edit", {"name": "Front\x00desk"}),
                           ("/holidays", {"day": "2027-01-01", "name": "\x00"})]:
            answer = await stocked.post(path, data=form)
            assert answer.status_code == 400, path
            assert "NUL" in answer.json()["message"]
        answer = await stocked.post("/api/extensions/100", json={"name": "Front\u0000desk"})
        assert answer.status_code == 400
        assert "NUL" in answer.json()["message"]
        assert (await extensions.show_extension(ctx, "100")).name == "Front desk"

    async def test_split_between_two_chunks_of_a_streamed_form(
        self, stocked: httpx.AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"name=Front%0"
            yield b"0desk"

        answer = await stocked.post("/extensions/100/edit", content=chunks(), headers={
            "content-type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 400
        assert "NUL" in answer.json()["message"]


class TestHeaders:
    async def test_every_response_carries_the_security_headers(
        self, billing: httpx.AsyncClient
    ) -> None:
        for path in ("/login", "/extensions", "/api/me", "/static/portal.css", "/nowhere"):
            answer = await billing.get(path)
            assert answer.headers["content-security-policy"].startswith("default-src 'self'")
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "same-origin"

    async def test_the_pages_have_no_inline_script_or_style_for_the_policy_to_block(self) -> None:
        for template in (ROOT / "src/coobill/web/templates").glob("*.html"):
            text = template.read_text()
            assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", text), \
                template.name

    async def test_api_docs_are_off_unless_configured(self, ctx: BillingContext) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ctx)),
                                     base_url=BASE) as c:
            assert (await c.get("/api/docs")).status_code == 404
            assert (await c.get("/openapi.json")).status_code == 200
        config = ctx.config.model_copy(
            update={"web": ctx.config.web.model_copy(update={"api_docs": True})})
        docs_app = create_app(BillingContext(uow=ctx.uow, config=config, clock=ctx.clock))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=docs_app),
                                     base_url=BASE) as c:
            page = await c.get("/api/docs")
            assert page.status_code == 200
            assert "cdn.jsdelivr.net" in page.headers["content-security-policy"]


class TestThrottle:
    def test_five_thousand_long_names_do_not_grow_it_past_its_cap(self) -> None:
        throttle = LoginThrottle(max_entries=1000)
        for i in range(5000):
            throttle.failed(f"{i:04d}" + "n" * 1020, f"10.0.{i // 250}.{i % 250}")
        assert len(throttle) <= 1000
        # Keys hold the address and a 16-byte digest, never the name.
        assert all(len(digest) in (0, 16) for _, digest in throttle._failures)

    def test_failures_are_forgotten_after_the_window(self) -> None:
        now = [0.0]
        throttle = LoginThrottle(window=300, clock=lambda: now[0])
        for i in range(100):
            throttle.failed(f"user{i}", "10.0.0.1")
        assert throttle.retry_after("anyone", "10.0.0.1") > 0  # the address is locked
        now[0] = 301.0
        assert throttle.retry_after("anyone", "10.0.0.1") == 0
        assert len(throttle) == 0

    def test_an_address_spraying_names_is_locked_out(self) -> None:
        throttle = LoginThrottle(max_address_failures=20)
        for i in range(20):
            assert throttle.retry_after(f"user{i}", "10.0.0.1") == 0
            throttle.failed(f"user{i}", "10.0.0.1")
        assert throttle.retry_after("someone-else", "10.0.0.1") > 0
        assert throttle.retry_after("someone-else", "10.0.0.2") == 0

    async def test_failures_and_lockouts_are_logged_as_the_fail2ban_filter_reads_them(
        self, ctx: BillingContext, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        await users.add_user(ctx, "bill", PASSWORD, "billing")
        with caplog.at_level(logging.WARNING, logger="coobill.portal"):
            for _ in range(5):
                await client.post("/api/login", json={"name": "bill", "password": "wrong-one"})
            await client.post("/api/login", json={"name": "bad name\npeer=6.6.6.6",
                                                  "password": "x"})
        lines = [f"WARNING {r.name} {r.getMessage()}" for r in caplog.records]
        assert lines[0] == "WARNING coobill.portal portal.login_failed peer=127.0.0.1 user=bill"
        assert any(" portal.login_locked peer=127.0.0.1 user=bill scope=user" in line
                   for line in lines)
        assert "6.6.6.6" not in lines[-1]
        assert "\n" not in lines[-1]
        failregex = fail2ban_failregex()
        hosts = [m["host"] for line in lines if (m := failregex.search(line))]
        assert hosts == ["127.0.0.1"] * len(lines)
        assert failregex.search("2026-01-01 10:00:00,123 WARNING coobill.portal "
                                "portal.login_failed peer=2001:db8::7 user=~0a1b")["host"] \
            == "2001:db8::7"


def fail2ban_failregex() -> re.Pattern[str]:
    """The shipped filter's failregex, with fail2ban's <HOST> as an IPv4/IPv6 group."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ROOT / "etc/fail2ban/filter.d/coobill.conf")
    pattern = conf["Definition"]["failregex"].strip()
    return re.compile(pattern.replace("<HOST>", r"(?P<host>[0-9]{1,3}(?:\.[0-9]{1,3}){3}|"
                                                r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+)"))


class StalledHasher(PasswordHasher):
    """Real argon2 (cheap parameters), each verify held until the test lets it go: the test
    sees, without timing anything, where verifies run and what the loop does meanwhile."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.loop = loop
        self.release = threading.Event()
        self.started = asyncio.Event()
        self.threads: set[int] = set()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.threads.add(threading.get_ident())
        self.loop.call_soon_threadsafe(self.started.set)
        self.release.wait(timeout=10)
        return super().verify(hash, password)


class TestPasswordHashing:
    async def test_logins_hash_in_a_bounded_number_of_threads_while_the_loop_answers(
        self, ctx: BillingContext, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await add_extension(ctx, "100", "Front desk")
        stalled = StalledHasher(asyncio.get_running_loop())
        monkeypatch.setattr(users, "_hasher", stalled)
        await users._unknown_user_hash(ctx)  # made now, not behind the stalled verifies
        logins = [asyncio.create_task(client.post(
            "/api/login", json={"name": f"nobody{i}", "password": "guess-1234"}))
            for i in range(20)]
        await stalled.started.wait()
        # The hashes (as many as the pool runs at once) are held in their threads; the loop
        # still answers, and no unit of work is open meanwhile (a write goes through at once,
        # even on SQLite).
        running, waiting = ctx.passwords.concurrent, ctx.passwords.waiting
        assert (await client.get("/login")).status_code == 200
        await balances.recharge(ctx, ["100"], "5")
        # Past those running and eight waiting, logins are refused at once: the rest are
        # answered while the hashes are still held.
        refused = []
        for finished in asyncio.as_completed(logins):
            refused.append((await finished).status_code)
            if len(refused) == 20 - running - waiting:
                break
        assert refused == [503] * (20 - running - waiting)
        assert (ctx.passwords.running, ctx.passwords.queued) == (running, waiting)
        stalled.release.set()
        answers = [(await login).status_code for login in logins]
        assert sorted(answers) == [401] * (running + waiting) + [503] * (20 - running - waiting)
        assert ctx.passwords.peak == running
        assert threading.get_ident() not in stalled.threads


def test_the_balance_ceiling_is_configurable() -> None:
    settings = settings_for("sqlite+aiosqlite:///x.db", billing={"max_balance": "500.5"})
    assert settings.billing.max_balance == Decimal("500.5")
