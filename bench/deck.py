"""A synthetic carrier deck: 100,000 rates, prefix lengths 1-12, mixed windows and lengths,
and calendars on a share of them: days of the week, holidays only or except, dated decks."""

from __future__ import annotations

import random
from datetime import date, datetime, time
from decimal import Decimal

from coobill.rating import ALWAYS, Calendar, Holidays, Rate, Tariff, TimeWindow, parse_days

WINDOWS = [
    (time(0, 0), time(23, 59)),
    (time(8, 0), time(17, 59)),
    (time(18, 0), time(7, 59)),  # crosses midnight
    (time(22, 0), time(6, 0)),
]
EXTENSIONS = frozenset(str(n) for n in range(100, 140))
# (days, holidays, valid_from, valid_until): most rates have no calendar, as in a real deck.
CALENDARS = [
    ("", "any", None, None),
    ("", "any", None, None),
    ("", "any", None, None),
    ("mon,tue,wed,thu,fri", "except", None, None),
    ("sat,sun", "any", None, None),
    ("", "only", None, None),
    ("", "any", datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ("", "any", datetime(2027, 1, 1), None),
]
HOLIDAYS = Holidays.of(
    [
        (date(2026, 12, 25), True),
        (date(2026, 1, 1), True),
        (date(2026, 11, 26), False),
        (date(2026, 5, 1), True),
    ]
)


def deck_rows(size: int = 100_000, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    seen: set[tuple[str, int, int]] = set()
    while len(rows) < size:
        length = rng.randint(1, 12)
        prefix = "".join(rng.choice("0123456789") for _ in range(length))
        number_length = rng.choice([0, 0, length + rng.randint(0, 8)])
        window = rng.randrange(len(WINDOWS))
        if (prefix, number_length, window) in seen:
            continue
        seen.add((prefix, number_length, window))
        rows.append(
            {
                "prefix": prefix,
                "number_length": number_length,
                "initial_cost": Decimal(rng.randint(0, 500)) / 1000,
                "initial_seconds": rng.choice([0, 30, 60]),
                "rate": Decimal(rng.randint(1, 3000)) / 10000,
                "period_seconds": rng.choice([1, 6, 30, 60]),
                "window": window,
                "calendar": rng.randrange(len(CALENDARS)),
                "extensions": "*"
                if rng.random() < 0.8
                else ",".join(sorted(rng.sample(sorted(EXTENSIONS), 5))),
            }
        )
    return rows


def calendar_of(row: dict[str, object]) -> Calendar:
    days, holidays, valid_from, valid_until = CALENDARS[int(row["calendar"])]  # type: ignore[call-overload]
    if (days, holidays, valid_from, valid_until) == CALENDARS[0]:
        return ALWAYS
    return Calendar(parse_days(days), holidays, valid_from, valid_until)  # type: ignore[arg-type]


def deck_rates(rows: list[dict[str, object]]) -> list[Rate]:
    rates = []
    for i, row in enumerate(rows, start=1):
        start, end = WINDOWS[int(row["window"])]  # type: ignore[call-overload]
        rates.append(
            Rate(
                id=i,
                prefix=str(row["prefix"]),
                number_length=int(row["number_length"]),  # type: ignore[call-overload]
                tariff=Tariff(
                    row["initial_cost"],
                    int(row["initial_seconds"]),
                    row["rate"],  # type: ignore[arg-type, call-overload]
                    int(row["period_seconds"]),
                ),  # type: ignore[call-overload]
                window=TimeWindow(start, end),
                extensions=frozenset(str(row["extensions"]).split(",")),
                calendar=calendar_of(row),
            )
        )
    return rates


def deck_csv(rows: list[dict[str, object]]) -> str:
    lines = [
        "enabled,remark,prefix,length,initial_cost,initial_time,rate,period,start,end,"
        "extensions,days,holidays,valid_from,valid_until,split"
    ]
    for row in rows:
        start, end = WINDOWS[int(row["window"])]  # type: ignore[call-overload]
        days, holidays, valid_from, valid_until = CALENDARS[int(row["calendar"])]  # type: ignore[call-overload]
        moments = ",".join(f"{m:%Y-%m-%d %H:%M}" if m else "" for m in (valid_from, valid_until))
        lines.append(
            f"1,,{row['prefix']},{row['number_length']},{row['initial_cost']},{row['initial_seconds']},"
            f'{row["rate"]},{row["period_seconds"]},{start:%H:%M},{end:%H:%M},"{row["extensions"]}",'
            f'"{days}",{holidays},{moments},0'
        )
    return "\n".join(lines) + "\n"


def call_moments(count: int, seed: int = 5) -> list[datetime]:
    """Local moments over 2026 and 2027, the holidays among them."""
    rng = random.Random(seed)
    first = datetime(2026, 1, 1).timestamp()
    span = 2 * 365 * 86400
    return [
        datetime.fromtimestamp(first + rng.randrange(span)).replace(second=0) for _ in range(count)
    ]


def dialled_numbers(rows: list[dict[str, object]], count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    numbers = []
    for _ in range(count):
        row = rng.choice(rows)
        prefix = str(row["prefix"])
        total = int(row["number_length"]) or len(prefix) + rng.randint(0, 8)  # type: ignore[call-overload]
        numbers.append(
            prefix + "".join(rng.choice("0123456789") for _ in range(total - len(prefix)))
        )
    return numbers
