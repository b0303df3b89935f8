"""A synthetic carrier deck: 100,000 rates, prefix lengths 1-12, mixed windows and lengths."""

from __future__ import annotations

import random
from datetime import time
from decimal import Decimal

from coobill.rating import Rate, Tariff, TimeWindow

WINDOWS = [
    (time(0, 0), time(23, 59)),
    (time(8, 0), time(17, 59)),
    (time(18, 0), time(7, 59)),  # crosses midnight
    (time(22, 0), time(6, 0)),
]
EXTENSIONS = frozenset(str(n) for n in range(100, 140))


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
                "extensions": "*"
                if rng.random() < 0.8
                else ",".join(sorted(rng.sample(sorted(EXTENSIONS), 5))),
            }
        )
    return rows


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
            )
        )
    return rates


def deck_csv(rows: list[dict[str, object]]) -> str:
    lines = [
        "enabled,remark,prefix,length,initial_cost,initial_time,rate,period,start,end,extensions"
    ]
    for row in rows:
        start, end = WINDOWS[int(row["window"])]  # type: ignore[call-overload]
        lines.append(
            f"1,,{row['prefix']},{row['number_length']},{row['initial_cost']},{row['initial_seconds']},"
            f'{row["rate"]},{row["period_seconds"]},{start:%H:%M},{end:%H:%M},"{row["extensions"]}"'
        )
    return "\n".join(lines) + "\n"


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
