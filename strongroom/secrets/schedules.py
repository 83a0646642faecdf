"""Rotation schedules, as RotateSecret's ``RotationRules`` state them: pure logic.

A schedule is ``AutomaticallyAfterDays`` (N days after the last rotation), ``rate(N
hours|days)`` or ``cron(...)``, with an optional ``Duration`` (the rotation window). What
AWS documents (API reference, ``RotationRulesType``; user guide, "Schedule expressions in
Secrets Manager rotation"):

- all times are UTC; a secret rotates at any moment inside its window;
- ``rate()`` windows start at midnight UTC; ``rate(N days)`` and ``AutomaticallyAfterDays``
  count from the previous rotation, and a manual change of the value counts as one;
- a secret may rotate at most every four hours;
- ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``: minutes must be 0, the
  year ``*``, exactly one of day-of-month and day-of-week is ``?``;
- without ``Duration`` a window closes after an hour for schedules in hours, at the end of
  the UTC day for schedules in days; a window never reaches into the next window or the
  next UTC day.

``rate(N hours)`` windows begin at midnight and every N hours after it, starting again each
midnight (as the hours of ``cron(0 0/N * * ? *)``).
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from strongroom.protocol.errors import ServiceError

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MIN_INTERVAL_HOURS = 4
MAX_DAYS = 1000
_SEARCH_DAYS = 366 * 8  # a cron that matches no day in 8 years (Feb 30) matches none


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


@dataclass(frozen=True)
class Window:
    """One rotation window: the rotation starts at a moment in ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Schedule:
    """A parsed ``RotationRules``. ``days`` is set for a schedule counted from the last
    rotation (AutomaticallyAfterDays, rate(N days)); ``hours`` lists the hours of the day
    windows start at, on the days ``matches`` accepts, otherwise."""

    rules: Mapping[str, Any]  # as DescribeSecret echoes them
    duration: timedelta
    days: int | None = None
    hours: tuple[int, ...] = ()
    cron: _Cron | None = None

    def windows_after(self, moment: datetime, anchor: datetime | None) -> Iterator[Window]:
        """The windows that end after ``moment``, in order. ``anchor`` is the last
        rotation (or manual change) a schedule in days counts from."""
        if self.days is not None:
            base = _midnight(anchor or moment) + self.days * DAY
            while True:
                window = Window(base, base + self.duration)
                if window.end > moment:
                    yield window
                base += self.days * DAY
        day = _midnight(moment)
        for _ in range(_SEARCH_DAYS):
            if self.cron is None or self.cron.matches(day.date()):
                for hour in self.hours:
                    window = Window(day + hour * HOUR, day + hour * HOUR + self.duration)
                    if window.end > moment:
                        yield window
            day += DAY

    def next_window(self, moment: datetime, anchor: datetime | None = None) -> Window | None:
        """The first window that is still open at ``moment`` or opens after it."""
        return next(self.windows_after(moment, anchor), None)

    def window_after_rotation(self, rotated: datetime) -> Window | None:
        """The window of the next rotation after one at ``rotated`` (a rotation, or a
        manual change of the value): the first window that opens after it."""
        for window in self.windows_after(rotated, rotated):
            if window.start > rotated:
                return window
        return None


def parse_rules(rules: Mapping[str, Any]) -> Schedule:
    """The schedule ``rules`` states; InvalidParameterException for one AWS refuses."""
    days, expression = rules.get("AutomaticallyAfterDays"), rules.get("ScheduleExpression")
    duration_text = rules.get("Duration")
    if days is not None and expression is not None:
        raise invalid(
            "You cannot specify both rotation frequency and schedule expression together."
        )
    duration = _parse_duration(duration_text) if duration_text is not None else None
    if expression is None:
        if days is None:
            raise invalid("You must specify AutomaticallyAfterDays or ScheduleExpression.")
        if not 1 <= int(days) <= MAX_DAYS:
            raise invalid(f"AutomaticallyAfterDays must be between 1 and {MAX_DAYS} days.")
        return _in_days(int(days), duration, None)
    text = expression.strip()
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+(hours?|days?)\s*\)", text)
    if rate is not None:
        return _rate(text, int(rate.group(1)), rate.group(2), duration)
    if re.fullmatch(r"cron\(.*\)", text):
        return _cron(text, duration)
    raise invalid(
        f"The schedule expression {expression} is not valid. Use rate(N hours), "
        "rate(N days) or cron(Minutes Hours Day-of-month Month Day-of-week Year)."
    )


def stored(rules: Mapping[str, Any]) -> Schedule:
    """The schedule of rules as DescribeSecret shows them (with the AutomaticallyAfterDays
    computed next to a ScheduleExpression)."""
    if rules.get("ScheduleExpression") is not None:
        rules = {k: v for k, v in rules.items() if k != "AutomaticallyAfterDays"}
    return parse_rules(rules)


def _parse_duration(text: str) -> timedelta:
    found = re.fullmatch(r"(\d+)h", text)
    if found is None or int(found.group(1)) < 1:
        raise invalid(
            f"The rotation window duration {text} is not valid. Use whole hours, e.g. 3h."
        )
    return int(found.group(1)) * HOUR


def _in_days(days: int, duration: timedelta | None, expression: str | None) -> Schedule:
    if duration is not None and duration > DAY:
        raise invalid(
            "The rotation window duration can't extend into the next UTC day: a window of a "
            "schedule in days starts at midnight UTC and can last at most 24h."
        )
    rules: dict[str, Any] = {"AutomaticallyAfterDays": days}
    if expression is not None:
        rules["ScheduleExpression"] = expression
    if duration is not None:
        rules["Duration"] = f"{duration // HOUR}h"
    return Schedule(rules, duration or DAY, days=days)


def _rate(text: str, value: int, unit: str, duration: timedelta | None) -> Schedule:
    if value < 1 or (value == 1) != (not unit.endswith("s")):
        raise invalid(
            f"The schedule expression {text} is not valid: use rate(1 hour), rate(1 day), or "
            "a plural unit for a value greater than 1."
        )
    if unit.startswith("day"):
        if value > MAX_DAYS:
            raise invalid(f"The schedule expression {text} is not valid: at most {MAX_DAYS} days.")
        return _in_days(value, duration, text)
    if value < MIN_INTERVAL_HOURS:
        raise invalid(
            f"The schedule expression {text} is not valid: a secret can rotate at most every "
            f"{MIN_INTERVAL_HOURS} hours."
        )
    if value >= 24:
        if value % 24:
            raise invalid(
                f"The schedule expression {text} is not valid: an interval of a day or more "
                "must be a whole number of days."
            )
        return _in_days(value // 24, duration, text)
    # Every N hours from midnight, starting again each midnight: the gap from the day's last
    # window to the next midnight is the schedule's own, not a shorter interval.
    hours = tuple(range(0, 24, value))
    return _in_hours(text, hours, duration, every_day=False, cron=None)


def _in_hours(
    text: str,
    hours: tuple[int, ...],
    duration: timedelta | None,
    *,
    every_day: bool,
    cron: _Cron | None,
) -> Schedule:
    gaps = [b - a for a, b in itertools.pairwise(hours)]
    if every_day and len(hours) > 1:
        gaps.append(24 - hours[-1] + hours[0])
    if gaps and min(gaps) < MIN_INTERVAL_HOURS:
        raise invalid(
            f"The schedule expression {text} is not valid: a secret can rotate at most every "
            f"{MIN_INTERVAL_HOURS} hours."
        )
    in_hours = len(hours) > 1
    window = duration or (HOUR if in_hours else DAY - hours[-1] * HOUR)
    between = [b - a for a, b in itertools.pairwise(hours)]
    if between and window > min(between) * HOUR:
        raise invalid(
            f"The rotation window duration {window // HOUR}h is longer than the interval "
            f"between rotations of {text}: a window can't extend into the next rotation window."
        )
    if hours[-1] * HOUR + window > DAY:
        raise invalid(
            f"The rotation window duration {window // HOUR}h of {text} extends into the next "
            "UTC day: the start hour plus the duration must be at most 24."
        )
    days = 1 if cron is None else cron.min_gap_days()
    rules: dict[str, Any] = {"AutomaticallyAfterDays": days, "ScheduleExpression": text}
    if duration is not None:
        rules["Duration"] = f"{duration // HOUR}h"
    return Schedule(rules, window, hours=hours, cron=cron)


# cron --------------------------------------------------------------------------------------

_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS = {name.upper(): i for name, i in _MONTHS.items()}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@dataclass(frozen=True)
class _Cron:
    months: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?" (the weekday field decides)
    last_day_of_month: bool
    weekdays: frozenset[int] | None  # 1 = Sunday .. 7 = Saturday; None: "?"
    nth_weekdays: frozenset[tuple[int, int]]  # (weekday, n): the nth such day of the month
    last_weekdays: frozenset[int]  # "5L": the month's last Thursday

    def matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.weekdays is None and not self.nth_weekdays and not self.last_weekdays:
            last = calendar.monthrange(day.year, day.month)[1]
            return (self.days_of_month is not None and day.day in self.days_of_month) or (
                self.last_day_of_month and day.day == last
            )
        weekday = (day.isoweekday() % 7) + 1  # Sunday 1 .. Saturday 7
        if self.weekdays is not None and weekday in self.weekdays:
            return True
        if (weekday, (day.day - 1) // 7 + 1) in self.nth_weekdays:
            return True
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday in self.last_weekdays and day.day + 7 > last

    def min_gap_days(self) -> int:
        """The fewest whole days between two matching days (what DescribeSecret reports as
        AutomaticallyAfterDays next to a cron expression), over two years from 2024."""
        day, previous, gap = date(2024, 1, 1), None, None
        for _ in range(366 * 2):
            if self.matches(day):
                if previous is not None:
                    step = (day - previous).days
                    gap = step if gap is None else min(gap, step)
                previous = day
            day += timedelta(days=1)
        return gap or 1


def _cron(text: str, duration: timedelta | None) -> Schedule:
    fields = text[len("cron(") : -1].split()
    if len(fields) != 6:
        raise invalid(
            f"The schedule expression {text} is not valid: a cron expression has six fields, "
            "Minutes Hours Day-of-month Month Day-of-week Year."
        )
    minutes, hours_field, dom, month, dow, year = fields
    if minutes != "0":
        raise invalid(
            f"The schedule expression {text} is not valid: rotation windows start on the hour, "
            "so the Minutes field must be 0."
        )
    if year != "*":
        raise invalid(f"The schedule expression {text} is not valid: the Year field must be *.")
    if (dom == "?") == (dow == "?"):
        raise invalid(
            f"The schedule expression {text} is not valid: exactly one of Day-of-month and "
            "Day-of-week must be ?."
        )
    try:
        hours = tuple(sorted(_values(hours_field, 0, 23, {})))
        months = frozenset(_values(month, 1, 12, _MONTHS))
        days_of_month, last_dom = _days_of_month(dom)
        weekdays, nth, last_weekdays = _days_of_week(dow)
    except ValueError as problem:
        raise invalid(f"The schedule expression {text} is not valid: {problem}.") from None
    cron = _Cron(months, days_of_month, last_dom, weekdays, nth, last_weekdays)
    every_day = months == frozenset(range(1, 13)) and ((dom == "*") or (dow == "*" and dom == "?"))
    if not any(cron.matches(date(2024, 1, 1) + timedelta(days=i)) for i in range(366 * 4)):
        raise invalid(f"The schedule expression {text} is not valid: it matches no day.")
    return _in_hours(text, hours, duration, every_day=every_day, cron=cron)


def _number(text: str, names: Mapping[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number or name")
    return int(text)


def _values(field: str, low: int, high: int, names: Mapping[str, int]) -> set[int]:
    """The values of a cron field made of ``*``, ``a``, ``a-b`` and ``/step`` parts."""
    found: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step_text and (not step_text.isdigit() or step < 1):
            raise ValueError(f"{part!r} has an invalid increment")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _number(a, names), _number(b, names)
        else:
            first = _number(base, names)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        found.update(range(first, last + 1, step))
    return found


def _days_of_month(field: str) -> tuple[frozenset[int] | None, bool]:
    if field == "?":
        return None, False
    if field == "L":
        return frozenset(), True
    return frozenset(_values(field, 1, 31, {})), False


def _days_of_week(
    field: str,
) -> tuple[frozenset[int] | None, frozenset[tuple[int, int]], frozenset[int]]:
    if field == "?":
        return None, frozenset(), frozenset()
    if "#" in field:
        day, _, nth = field.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ValueError(f"{field!r}: the week after # must be 1-5")
        weekday = _number(day, _WEEKDAYS)
        if not 1 <= weekday <= 7:
            raise ValueError(f"{field!r} is outside 1-7")
        return frozenset(), frozenset({(weekday, int(nth))}), frozenset()
    if field == "L":
        return frozenset({7}), frozenset(), frozenset()
    if field.endswith("L"):
        weekday = _number(field[:-1], _WEEKDAYS)
        if not 1 <= weekday <= 7:
            raise ValueError(f"{field!r} is outside 1-7")
        return frozenset(), frozenset(), frozenset({weekday})
    return frozenset(_values(field, 1, 7, _WEEKDAYS)), frozenset(), frozenset()


def _midnight(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
