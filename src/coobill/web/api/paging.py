"""The query parameters every paged list of the API takes, declared once."""

from __future__ import annotations

from fastapi import Query

from coobill.services.bounds import MAX_OFFSET

__all__ = ["LIMIT", "OFFSET"]

OFFSET = Query(0, ge=0, le=MAX_OFFSET, description="How many to skip.")
LIMIT = Query(20, ge=1, le=1000, description="How many at most.")
