"""`GET /api/usage`: tokens and cost from the daily usage rows, yours or (admins) anyone's.

A user sees their own usage; naming another user answers 404 as for a user that does not exist, so the
answer says nothing of who else uses the server. Admins see everyone's, or one user's with `user=`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from genai_chatbot.api.deps import Caller
from genai_chatbot.auth.users import UnknownUserError
from genai_chatbot.governance.usage_report import MAX_ROWS, read_usage, usage_range
from genai_chatbot.governance.usage_sql import utc_today
from genai_chatbot.governance.usage_store import UsageBy, UsageQuery, UsageRow, UsageStore

router = APIRouter(prefix="/api", tags=["Usage"])


class UsageRowOut(BaseModel):
    key: str = Field(description="The user, group, model or UTC day (YYYY-MM-DD) of the row.")
    requests: int
    failed: int
    cancelled: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = Field(description="US dollars of the requests whose cost is known.")
    unpriced: int = Field(description="Requests of a model without a price, or whose usage was not reported.")
    mean_latency_ms: float

    @classmethod
    def of(cls, row: UsageRow) -> UsageRowOut:
        return cls(
            key=row.key,
            requests=row.requests,
            failed=row.failed,
            cancelled=row.cancelled,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=round(row.cost_usd, 6),
            unpriced=row.unpriced,
            mean_latency_ms=round(row.latency_ms / row.requests, 1) if row.requests else 0.0,
        )


class UsageOut(BaseModel):
    by: UsageBy
    since: dt.date
    until: dt.date
    user: str | None = Field(description="Whose usage this is; null: everyone's (admins only).")
    rows: list[UsageRowOut]
    total: UsageRowOut = Field(description="All the range's requests once each (group rows overlap).")
    truncated: bool = Field(description=f"True when there were more than {MAX_ROWS} rows.")


@router.get("/usage", response_model=UsageOut)
async def usage(
    request: Request,
    caller: Caller,
    by: Annotated[UsageBy, Query(description="Group by user, group, model or day.")] = "model",
    since: Annotated[dt.date | None, Query(description="First UTC day (default: the 1st of this month).")] = None,
    until: Annotated[dt.date | None, Query(description="Last UTC day, included (default: today).")] = None,
    user: Annotated[str | None, Query(max_length=128, description="Whose usage (admins: anyone's).")] = None,
) -> UsageOut:
    """Your usage and its cost this month, or over a range; admins may see anyone's and everyone's."""
    if not caller.is_admin:
        if user is not None and user != caller.user_id:
            raise UnknownUserError(user)
        user = caller.user_id
    first, last = usage_range(since, until, utc_today(time.time()))
    store: UsageStore = request.app.state.usage
    rows, total, truncated = await read_usage(store, UsageQuery(by, first, last, user))
    return UsageOut(
        by=by,
        since=first,
        until=last,
        user=user,
        rows=[UsageRowOut.of(r) for r in rows],
        total=UsageRowOut.of(total),
        truncated=truncated,
    )
