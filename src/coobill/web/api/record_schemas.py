"""The JSON API's rows of the records: recharges, calls, refused calls, by trunk and the
statistics, each list a `RecordPage`."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

Row = TypeVar("Row")


class RechargeRecordOut(BaseModel):
    time: str
    extension: str
    name: str
    balance_before: str
    amount: str
    balance_after: str
    who: str


class CallRecordOut(BaseModel):
    date: str
    extension: str
    name: str
    callee: str
    billable_time: str = Field(description="The billable seconds as mm:ss (h:mm:ss).")
    billable_seconds: int
    trunk: str
    cost: str
    buy_cost: str = Field(description='At the trunk\'s buy rate; "" when none is known.')
    margin: str = Field(description='cost - buy_cost; "" when the buy cost is not known.')
    disposition: str
    uniqueid: str


class RefusedCallOut(BaseModel):
    date: str
    extension: str
    callee: str
    reason: str = Field(description="The gate's COOBILL_REASON.")
    latency_ms: str = Field(description="How long the gate took to decide, milliseconds.")
    uniqueid: str


class TrunkRowOut(BaseModel):
    trunk: str
    calls: int
    answered: int
    total_duration: str
    total_seconds: int
    revenue: str
    buy_cost: str
    margin: str = Field(description="Revenue less buy cost, of the calls whose buy cost is known.")


class StatsRowOut(BaseModel):
    date: str
    extension: str = Field(description='"All" when the row totals every chosen extension.')
    calls: int
    answered: int
    total_duration: str
    total_seconds: int
    average_duration: str
    average_seconds: int
    total_cost: str
    refused: int = Field(0, description="Calls the gate refused (not among `calls`).")


class RecordPage(BaseModel, Generic[Row]):
    total: int
    items: list[Row]
