"""Dates in policies and request contexts, as the Date condition operators read them.

AWS ("IAM JSON policy elements: Condition operators", Date condition operators): a date is
one of the W3C profiles of ISO 8601 (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``,
``YYYY-MM-DDThh:mmTZD``, ``YYYY-MM-DDThh:mm:ssTZD``, ``YYYY-MM-DDThh:mm:ss.sTZD``) or
epoch (UNIX) time. A date or time without a zone is UTC; a partial date stands for its
first instant (``2020-01`` is 2020-01-01T00:00:00Z).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

_EPOCH = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Decision: exactly four digits are a W3C year, not epoch seconds (which would name a
# moment in the first three hours of 1970); AWS does not say how it tells them apart.
_YEAR_MONTH = re.compile(r"([0-9]{4})(?:-([0-9]{2}))?")


@lru_cache(maxsize=4096)
def parse_date(text: str) -> float | None:
    """Seconds since the epoch that ``text`` names, or None if it is not a date."""
    partial = _YEAR_MONTH.fullmatch(text)
    if partial is not None:
        try:
            start = datetime(int(partial.group(1)), int(partial.group(2) or 1), 1, tzinfo=UTC)
        except ValueError:  # year 0000 or month 13
            return None
        return start.timestamp()
    if _EPOCH.fullmatch(text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
