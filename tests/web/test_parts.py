"""The portal's small parts: signed sessions, the throttle, money and chart, the schema."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import httpx

import coobill.web
from coobill.config import WebConfig
from coobill.services.reports import StatsRow
from coobill.web.chart import build_chart
from coobill.web.formatting import duration, money
from coobill.web.i18n import catalogue
from coobill.web.render import NAVIGATION, NOTICES
from coobill.web.sessions import MAX_AGE_SECONDS, SessionSigner, session_secret
from coobill.web.throttle import LoginThrottle

TRANSLATED = re.compile(r"""\bt\((["'])(.+?)\1""")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TestSessions:
    def test_a_cookie_reads_back_only_with_the_same_key_and_in_time(self) -> None:
        clock = Clock()
        signer = SessionSigner("k1", clock)
        session = signer.new(7)
        cookie = signer.dumps(session)
        assert signer.loads(cookie) == session
        assert SessionSigner("k2", clock).loads(cookie) is None
        assert signer.loads(cookie.replace(".", "x.", 1)) is None
        clock.now += MAX_AGE_SECONDS + 1
        assert signer.loads(cookie) is None

    def test_the_configured_key_is_used_else_a_random_one(self) -> None:
        assert session_secret(WebConfig(secret_key="s3cret")) == "s3cret"
        assert session_secret(WebConfig()) != session_secret(WebConfig())


class TestThrottle:
    def test_failures_expire_after_the_window_and_success_forgets_them(self) -> None:
        clock = Clock()
        throttle = LoginThrottle(max_failures=2, window=300, clock=clock)
        throttle.failed("Bill", "1.2.3.4")
        assert throttle.retry_after("bill", "1.2.3.4") == 0
        throttle.failed("bill", "1.2.3.4")
        assert 0 < throttle.retry_after("bill", "1.2.3.4") <= 301
        assert throttle.retry_after("bill", "5.6.7.8") == 0
        clock.now += 301
        assert throttle.retry_after("bill", "1.2.3.4") == 0
        throttle.failed("bill", "1.2.3.4")
        throttle.succeeded("bill", "1.2.3.4")
        throttle.failed("bill", "1.2.3.4")
        assert throttle.retry_after("bill", "1.2.3.4") == 0


def test_money_and_durations_read_as_the_appliance_shows_them() -> None:
    assert money(Decimal("1.2"), "US$") == "US$1.2000"
    assert money(Decimal("-3.5"), "¥") == "-¥3.5000"
    assert (duration(0), duration(61), duration(3600), duration(3725)) == (
        "00:00",
        "01:01",
        "1:00:00",
        "1:02:05",
    )


def test_the_chart_scales_cost_and_minutes_to_their_own_axes() -> None:
    chart = build_chart(
        [
            StatsRow("2026-11-20", "*", 2, 2, 600, Decimal(3)),
            StatsRow("2026-11-21", "*", 1, 1, 60, Decimal("0.5")),
        ]
    )
    assert chart is not None
    assert [b.label for b in chart.bars] == ["2026-11-20", "2026-11-21"]
    assert chart.bars[0].height > chart.bars[1].height > 0
    assert chart.cost_ticks[-1][1] == "5"
    assert chart.minute_ticks[-1][1] == "10"
    assert build_chart([]) is None


def test_every_page_text_has_a_chinese_translation() -> None:
    """Each t("...") in the templates and pages, the menu and the notices are in zh.json."""
    root = Path(coobill.web.__file__).parent
    texts = {label for _, label in NAVIGATION} | set(NOTICES.values())
    for path in [*root.glob("templates/*.html"), *root.glob("pages/*.py")]:
        texts |= {text for _, text in TRANSLATED.findall(path.read_text(encoding="utf-8"))}
    assert not sorted(t for t in texts if t not in catalogue("zh"))


async def test_the_api_is_documented_by_its_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/login",
        "/api/extensions",
        "/api/extensions/recharge",
        "/api/extensions/batch-edit",
        "/api/rates",
        "/api/rates/quote",
        "/api/recharges.csv",
        "/api/calls",
        "/api/statistics",
        "/api/settings",
        "/api/live/{uniqueid}/charge",
        "/api/users",
    ):
        assert path in paths, path
    assert not any(p.startswith(("/extensions", "/login")) for p in paths)
    assert "X-CSRF-Token" in schema["info"]["description"]
    assert (await client.get("/static/portal.css")).status_code == 200


async def test_an_unknown_page_is_a_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.get("/api/nowhere")).json()["error"] == "http"
