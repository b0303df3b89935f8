"""Rates through the API and the pages: every field, errors beside their field, the quote."""

from __future__ import annotations

import httpx

from coobill.services.context import BillingContext
from tests.web.billing_data import add_extension

LONG_DISTANCE = {
    "remark": "Domestic long distance",
    "prefix": "9",
    "length": 12,
    "initial_cost": "0.2",
    "initial_time": 60,
    "rate": "0.1",
    "period": 30,
    "start": "08:00",
    "end": "20:00",
    "extensions": ["100"],
}


async def office(ctx: BillingContext) -> None:
    await add_extension(ctx, "100", "Alice")
    await add_extension(ctx, "101", "Bob")


class TestRatesApi:
    async def test_add_show_edit_disable_delete(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        added = await billing.post("/api/rates", json=LONG_DISTANCE)
        assert added.status_code == 201
        rate = added.json()
        assert rate == {
            **LONG_DISTANCE,
            "id": rate["id"],
            "enabled": True,
            "initial_cost": "0.2000",
            "rate": "0.1000",
            "days": "", "holidays": "any", "valid_from": None, "valid_until": None,
            "split": False, "trunk": "",
        }
        edited = await billing.post(
            f"/api/rates/{rate['id']}", json={"rate": "0.15", "extensions": ["100", "101"]}
        )
        assert edited.json()["rate"] == "0.1500"
        assert edited.json()["extensions"] == ["100", "101"]
        assert edited.json()["remark"] == "Domestic long distance"
        disabled = await billing.post(f"/api/rates/{rate['id']}", json={"enabled": False})
        assert disabled.json()["enabled"] is False
        assert [r["id"] for r in (await billing.get("/api/rates")).json()] == [rate["id"]]
        assert (await billing.delete(f"/api/rates/{rate['id']}")).status_code == 204
        assert (await billing.get(f"/api/rates/{rate['id']}")).status_code == 404
        assert (await billing.delete(f"/api/rates/{rate['id']}")).status_code == 404

    async def test_each_bad_field_is_named(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        cases = {
            "prefix": {"prefix": "9a"},
            "length": {"length": 0.5},
            "initial_cost": {"initial_cost": "x"},
            "initial_time": {"initial_time": -1},
            "rate": {"rate": "-1"},
            "period": {"period": 0},
            "start": {"start": "25:00"},
            "end": {"end": "noon"},
            "extensions": {"extensions": ["999"]},
            "days": {"days": "mon,funday"},
            "valid_from": {"valid_from": "tomorrow"},
            "valid_until": {"valid_from": "2027-01-01 00:00", "valid_until": "2026-12-31 23:59"},
        }
        for field, bad in cases.items():
            response = await billing.post("/api/rates", json={**LONG_DISTANCE, **bad})
            assert response.status_code == 400, field
            assert response.json()["field"] == field, (field, response.json())
        short = await billing.post(
            "/api/rates", json={**LONG_DISTANCE, "prefix": "900", "length": 2}
        )
        assert short.json()["field"] == "length"
        assert "counts the prefix" in short.json()["message"]

    async def test_a_weekend_and_holiday_rate_and_its_calendar(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        weekend = await billing.post("/api/rates", json={
            **LONG_DISTANCE, "days": "sun,sat", "valid_from": "2027-01-01 00:00", "split": True})
        assert weekend.status_code == 201, weekend.json()
        assert weekend.json()["days"] == "sat,sun"
        assert weekend.json()["split"] is True
        assert weekend.json()["valid_from"] == "2027-01-01 00:00"
        holiday = await billing.post("/api/rates", json={**LONG_DISTANCE, "holidays": "only"})
        assert holiday.json()["holidays"] == "only"
        cleared = await billing.post(f"/api/rates/{weekend.json()['id']}",
                                     json={"valid_from": "", "days": ""})
        assert cleared.json()["valid_from"] is None
        assert cleared.json()["days"] == ""
        added = await billing.post("/api/holidays", json={"day": "2026-12-25", "yearly": True,
                                                          "name": "Christmas"})
        assert added.status_code == 201
        assert (await billing.get("/api/holidays")).json() == [
            {"id": added.json()["id"], "day": "2026-12-25", "yearly": True, "name": "Christmas"}]
        again = await billing.post("/api/holidays", json={"day": "2030-12-25", "yearly": True})
        assert again.status_code == 400
        assert again.json()["field"] == "day"
        bad = await billing.post("/api/holidays", json={"day": "25/12/2026"})
        assert bad.status_code == 400
        assert bad.json()["field"] == "day"
        gone = await billing.delete(f"/api/holidays/{added.json()['id']}")
        assert gone.status_code == 204
        assert (await billing.delete(f"/api/holidays/{added.json()['id']}")).status_code == 404
        assert (await billing.get("/api/holidays")).json() == []

    async def test_the_quote_says_which_rate_applies_and_what_a_minute_costs(
        self, ctx: BillingContext, clock: object, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        await billing.post("/api/extensions/recharge", json={"extensions": ["100"], "amount": "10"})
        rate = (
            await billing.post(
                "/api/rates", json={**LONG_DISTANCE, "start": "00:00", "end": "23:59"}
            )
        ).json()
        quote = (await billing.get("/api/rates/quote?extension=100&number=912345678901")).json()
        assert quote["rate_id"] == rate["id"]
        assert quote["cost"] == "0.2000"
        assert quote["funds"] == "10.0000"
        assert quote["limit_seconds"] > 60
        other = (await billing.get("/api/rates/quote?extension=101&number=912345678901")).json()
        assert other["rate_id"] is None
        assert other["cost"] is None
        bad = await billing.get("/api/rates/quote?extension=100&number=9x")
        assert bad.status_code == 400
        assert bad.json()["field"] == "number"
        assert (await billing.get("/api/rates/quote?extension=999&number=9")).status_code == 404

    async def test_a_quote_at_a_moment_follows_the_days_and_the_dated_decks(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        whole_day = {**LONG_DISTANCE, "start": "00:00", "end": "23:59"}
        weekend = (await billing.post("/api/rates", json={
            **whole_day, "remark": "weekend", "days": "sat,sun"})).json()
        dated = (await billing.post("/api/rates", json={
            **whole_day, "remark": "2027", "days": "mon,tue,wed,thu,fri",
            "valid_from": "2027-01-01 00:00"})).json()

        async def rate_at(at: str) -> int | None:
            found = await billing.get("/api/rates/quote",
                                      params={"extension": "100", "number": "912345678901",
                                              "at": at})
            assert found.status_code == 200, found.text
            return found.json()["rate_id"]  # type: ignore[no-any-return]

        # 2027-01-02 a Saturday, 2027-01-04 a Monday, 2026-12-28 a Monday before the deck
        assert await rate_at("2027-01-02 10:00") == weekend["id"]
        assert await rate_at("2027-01-04 10:00") == dated["id"]
        assert await rate_at("2026-12-28 10:00") is None
        bad = await billing.get("/api/rates/quote",
                                params={"extension": "100", "number": "9", "at": "soon"})
        assert (bad.status_code, bad.json()["field"]) == (400, "at")
        page = (await billing.get("/rates", params={
            "quote_extension": "100", "quote_number": "912345678901",
            "quote_at": "2027-01-04T10:00"})).text
        assert f"Rate #{dated['id']} applies (2027)" in page
        assert "at 2027-01-04 10:00" in page
        wrong = (await billing.get("/rates", params={
            "quote_extension": "100", "quote_number": "912345678901", "quote_at": "x"})).text
        assert 'name="quote_at" value="x" title=' in wrong
        assert "is not a time of day" in wrong


class TestRatePages:
    async def test_a_bad_field_is_shown_beside_it_then_fixed(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        form = {key: str(value) for key, value in LONG_DISTANCE.items() if key != "extensions"}
        bad = await billing.post(
            "/rates/new",
            data={
                **form,
                "initial_cost": "1.234567",
                "extensions": ["100", "101"],
                "enabled": "on",
            },
        )
        assert bad.status_code == 400
        assert 'id="e-initial_cost"' in bad.text
        assert "more than 4 decimal places" in bad.text
        assert 'value="Domestic long distance"' in bad.text
        assert '<option value="101" selected>' in bad.text
        fixed = await billing.post(
            "/rates/new", data={**form, "extensions": ["100", "101"], "enabled": "on"}
        )
        assert fixed.status_code == 303
        listed = (await billing.get("/rates")).text
        assert "Domestic long distance" in listed
        assert "US$0.2000" in listed

    async def test_the_calendar_through_the_form_and_back(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        form = {key: str(value) for key, value in LONG_DISTANCE.items() if key != "extensions"}
        bad = await billing.post("/rates/new", data={
            **form, "days": ["sat", "sun"], "valid_from": "2027-01-01T00:00",
            "valid_until": "2026-01-01T00:00", "extensions": ["100"], "enabled": "on"})
        assert bad.status_code == 400
        assert 'id="e-valid_until"' in bad.text
        assert 'value="sat" checked' in bad.text
        assert 'value="mon" checked' not in bad.text
        saved = await billing.post("/rates/new", data={
            **form, "days": ["sun", "sat"], "holidays": "only", "valid_from": "2027-01-01T00:00",
            "split": "on", "extensions": ["100"], "enabled": "on"})
        assert saved.status_code == 303
        [rate] = (await billing.get("/api/rates")).json()
        assert (rate["days"], rate["holidays"], rate["valid_from"], rate["valid_until"],
                rate["split"]) == ("sat,sun", "only", "2027-01-01 00:00", None, True)
        edit = (await billing.get(f"/rates/{rate['id']}/edit")).text
        assert 'value="2027-01-01T00:00"' in edit
        assert 'value="only" selected' in edit
        assert 'name="split" value="on" checked' in edit
        listed = (await billing.get("/rates")).text
        assert "Sat Sun · Only on holidays · from 2027-01-01 00:00 · split" in listed

    async def test_a_buy_rate_through_the_form_stays_one_when_edited(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        form = {key: str(value) for key, value in LONG_DISTANCE.items() if key != "extensions"}
        saved = await billing.post("/rates/new", data={**form, "trunk": "carrier-a",
                                                        "enabled": "on"})
        assert saved.status_code == 303
        [rate] = (await billing.get("/api/rates")).json()
        assert (rate["trunk"], rate["extensions"]) == ("carrier-a", ["*"])
        edit = (await billing.get(f"/rates/{rate['id']}/edit")).text
        assert 'value="carrier-a"' in edit
        again = await billing.post(f"/rates/{rate['id']}/edit", data={
            **form, "rate": "0.3", "trunk": "carrier-a", "extensions": "*", "enabled": "on"})
        assert again.status_code == 303
        [rate] = (await billing.get("/api/rates")).json()
        assert (rate["trunk"], rate["rate"]) == ("carrier-a", "0.3000")
        bad = await billing.post("/rates/new", data={**form, "trunk": "two words",
                                                      "extensions": "*"})
        assert bad.status_code == 400
        assert 'id="e-trunk"' in bad.text

    async def test_the_holiday_calendar_page(self, billing: httpx.AsyncClient) -> None:
        bad = await billing.post("/holidays", data={"day": "2026-02-30", "name": "x"})
        assert bad.status_code == 400
        assert 'id="e-day"' in bad.text
        assert 'value="x"' in bad.text
        added = await billing.post("/holidays", data={"day": "2026-12-25", "yearly": "on",
                                                       "name": "Christmas"})
        assert added.status_code == 303
        page = (await billing.get("/holidays")).text
        assert "Every year on 12-25" in page
        assert "Christmas" in page
        [holiday] = (await billing.get("/api/holidays")).json()
        removed = await billing.post(f"/holidays/{holiday['id']}/delete")
        assert removed.status_code == 303
        assert "No holidays yet." in (await billing.get("/holidays")).text

    async def test_the_form_lists_the_number_length_help(self, billing: httpx.AsyncClient) -> None:
        page = (await billing.get("/rates/new")).text
        assert "the prefix included; 0 means any length" in page

    async def test_edit_toggle_and_delete_from_the_list(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        rate_id = (await billing.post("/api/rates", json=LONG_DISTANCE)).json()["id"]
        edit_page = await billing.get(f"/rates/{rate_id}/edit")
        assert 'value="0.2000"' in edit_page.text
        form = {key: str(value) for key, value in LONG_DISTANCE.items() if key != "extensions"}
        saved = await billing.post(
            f"/rates/{rate_id}/edit", data={**form, "remark": "Mobile", "extensions": "*"}
        )
        assert saved.status_code == 303
        rate = (await billing.get(f"/api/rates/{rate_id}")).json()
        assert (
            rate["remark"] == "Mobile"
        )
        assert (
            rate["enabled"] is False
        )
        assert (
            rate["extensions"] == ["*"]
        )
        await billing.post(f"/rates/{rate_id}/toggle")
        assert (await billing.get(f"/api/rates/{rate_id}")).json()["enabled"] is True
        await billing.post(f"/rates/{rate_id}/delete")
        assert (await billing.get("/api/rates")).json() == []

    async def test_the_quote_box(self, ctx: BillingContext, billing: httpx.AsyncClient) -> None:
        await office(ctx)
        await billing.post("/api/rates", json={**LONG_DISTANCE, "start": "00:00", "end": "23:59"})
        page = (await billing.get("/rates?quote_extension=100&quote_number=912345678901")).text
        assert "A one-minute call costs US$0.2000" in page
        unknown = (await billing.get("/rates?quote_extension=999&quote_number=9")).text
        assert "extension 999" in unknown


class TestDeckImportPage:
    async def test_a_dated_deck_is_reviewed_then_confirmed(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        await billing.post("/api/rates", json={**LONG_DISTANCE, "length": 0, "extensions": ["*"],
                                                "start": "00:00", "end": "23:59"})
        carrier = ("prefix,description,rate_per_minute,connect_fee,initial_increment,increment\n"
                   "9,Long distance 2027,0.3,,60,30\n0044,UK,0.06,0.01,30,6\n")
        review = await billing.post(
            "/rates/import", data={"from": "2027-01-01T00:00"},
            files={"file": ("carrier.csv", carrier.encode(), "text/csv")})
        assert review.status_code == 200
        assert "1 added, 0 removed, 1 changed, 0 unchanged" in review.text, review.text[-3000:]
        assert "0.2000 for 60 s, then 0.1000 per 30 s" in review.text
        assert "0.3000 for 60 s, then 0.1500 per 30 s" in review.text
        assert "takes effect at 2027-01-01 00:00" in review.text
        assert len((await billing.get("/api/rates")).json()) == 1  # nothing written yet
        confirmed = await billing.post("/rates/import/confirm", data={
            "deck": carrier, "from": "2027-01-01T00:00", "replace": ""})
        assert confirmed.status_code == 303
        assert "notice=rates_imported" in confirmed.headers["location"]
        listed = (await billing.get("/api/rates")).json()
        assert [(r["remark"], r["valid_from"], r["valid_until"]) for r in listed] == [
            ("Domestic long distance", None, "2027-01-01 00:00"),
            ("Long distance 2027", "2027-01-01 00:00", None),
            ("UK", "2027-01-01 00:00", None)]

    async def test_a_bad_deck_is_shown_beside_the_file(self, billing: httpx.AsyncClient) -> None:
        none = await billing.post("/rates/import", data={"from": ""},
                                  files={"file": ("", b"", "text/csv")})
        assert none.status_code == 400
        assert "choose a deck to import" in none.text
        bad = await billing.post("/rates/import", data={},
                                 files={"file": ("d.csv", b"prefix,length\n00,0\n", "text/csv")})
        assert bad.status_code == 400
        assert 'id="e-file"' in bad.text
        assert "missing columns" in bad.text
        late = await billing.post(
            "/rates/import", data={"from": "soon"},
            files={"file": ("d.csv", b"prefix,description,rate_per_minute\n1,x,1\n", "text/csv")})
        assert late.status_code == 400
        assert 'id="e-from"' in late.text

    async def test_the_api_imports_a_deck_after_its_dry_run(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        carrier = "prefix,description,rate_per_minute\n0044,UK,0.06\n"
        dry = await billing.post("/api/rates/import", json={
            "deck": carrier, "from": "2027-01-01 00:00", "dry_run": True})
        assert dry.status_code == 200
        assert dry.json() == {
            "count": 1, "effective": "2027-01-01 00:00", "written": False, "removed": [],
            "changed": [], "unchanged": 0, "added": [{
                "rate": "0044 (any length, 00:00-23:59, *)", "before": None,
                "after": "0.0600 for 60 s, then 0.0600 per 60 s"}]}
        assert (await billing.get("/api/rates")).json() == []
        done = await billing.post("/api/rates/import", json={"deck": carrier})
        assert done.json()["written"] is True
        assert len((await billing.get("/api/rates")).json()) == 1
        bad = await billing.post("/api/rates/import", json={"deck": carrier, "from": "soon"})
        assert bad.status_code == 400
        assert bad.json()["field"] == "from"

    async def test_a_trunk_s_buy_deck_is_reviewed_then_confirmed_replacing_only_its_own(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        sell = {**LONG_DISTANCE, "length": 0, "extensions": ["*"], "start": "00:00",
                "end": "23:59"}
        await billing.post("/api/rates", json=sell)
        await billing.post("/api/rates", json={**sell, "prefix": "0044", "remark": "old buy",
                                                "trunk": "carrier-a"})
        deck = "prefix,description,rate_per_minute\n0044,UK,0.04\n"
        form = await billing.get("/rates/import")
        assert 'name="trunk"' in form.text
        review = await billing.post(
            "/rates/import", data={"trunk": "carrier-a", "replace": "on"},
            files={"file": ("buy.csv", deck.encode(), "text/csv")})
        assert review.status_code == 200
        # the sell rate to 9 is no part of the trunk's deck: replacing changes only its buy rate
        assert "0 added, 0 removed, 1 changed, 0 unchanged" in review.text
        assert 'name="trunk" value="carrier-a"' in review.text
        confirmed = await billing.post("/rates/import/confirm", data={
            "deck": deck, "from": "", "replace": "on", "trunk": "carrier-a"})
        assert confirmed.status_code == 303
        listed = (await billing.get("/api/rates")).json()
        assert sorted((r["remark"], r["trunk"], r["rate"]) for r in listed) == [
            ("Domestic long distance", "", "0.1000"), ("UK", "carrier-a", "0.0400")]
        bad = await billing.post(
            "/rates/import", data={"trunk": "two words"},
            files={"file": ("buy.csv", deck.encode(), "text/csv")})
        assert bad.status_code == 400
        assert 'id="e-trunk"' in bad.text

    async def test_the_api_imports_a_trunk_s_buy_deck(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        deck = "prefix,description,rate_per_minute\n0044,UK,0.04\n"
        dry = await billing.post("/api/rates/import",
                                 json={"deck": deck, "trunk": "carrier-a", "dry_run": True})
        assert [a["rate"] for a in dry.json()["added"]] == ["0044 (any length, 00:00-23:59, *)"]
        assert (await billing.get("/api/rates")).json() == []
        done = await billing.post("/api/rates/import", json={"deck": deck, "trunk": "carrier-a"})
        assert done.json()["written"] is True
        [rate] = (await billing.get("/api/rates")).json()
        assert (rate["trunk"], rate["extensions"], rate["rate"]) == ("carrier-a", ["*"], "0.0400")
        bad = await billing.post("/api/rates/import", json={"deck": deck, "trunk": "a b"})
        assert (bad.status_code, bad.json()["field"]) == (400, "trunk")

    async def test_the_deck_downloaded_imports_back_with_every_field(
        self, ctx: BillingContext, billing: httpx.AsyncClient
    ) -> None:
        await office(ctx)
        await billing.post("/api/rates", json={
            **LONG_DISTANCE, "days": "sat,sun", "holidays": "except",
            "valid_from": "2027-01-01 00:00", "valid_until": "2028-01-01 00:00", "split": True})
        await billing.post("/api/rates", json={**LONG_DISTANCE, "prefix": "0044",
                                                "extensions": ["*"], "trunk": "carrier-a"})
        page = await billing.get("/rates")
        assert 'href="/api/rates.csv"' in page.text
        download = await billing.get("/api/rates.csv")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert 'filename="rates.csv"' in download.headers["content-disposition"]
        before = (await billing.get("/api/rates")).json()
        for rate in before:
            await billing.delete(f"/api/rates/{rate['id']}")
        done = await billing.post("/api/rates/import", json={"deck": download.text})
        assert done.json()["count"] == 2
        after = (await billing.get("/api/rates")).json()
        assert [{k: v for k, v in r.items() if k != "id"} for r in after] == [
            {k: v for k, v in r.items() if k != "id"} for r in before]
