"""Rotation schedules (strongroom/secrets/schedules.py): what AWS accepts and refuses, the
windows each schedule opens, and what DescribeSecret echoes. Examples from AWS's user guide
("Schedule expressions in Secrets Manager rotation") and API reference (RotationRulesType);
properties over every accepted rate and many crons with Hypothesis."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.protocol.errors import ServiceError
from strongroom.secrets.schedules import Schedule, Window, parse_rules, stored

T0 = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday
H = timedelta(hours=1)
D = timedelta(days=1)


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def windows(schedule: Schedule, moment: datetime, count: int) -> list[Window]:
    found = []
    for window in schedule.windows_after(moment, moment):
        found.append(window)
        if len(found) == count:
            break
    return found


@pytest.mark.parametrize(
    ("rules", "echo"),
    [
        ({"AutomaticallyAfterDays": 30}, {"AutomaticallyAfterDays": 30}),
        (
            {"ScheduleExpression": "rate(10 hours)"},
            {"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(10 hours)"},
        ),
        (
            {"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"},
            {
                "AutomaticallyAfterDays": 14,
                "ScheduleExpression": "cron(0 16 1,15 * ? *)",
                "Duration": "2h",
            },
        ),
        (
            {"ScheduleExpression": "cron(0 8 ? * MON *)"},
            {"AutomaticallyAfterDays": 7, "ScheduleExpression": "cron(0 8 ? * MON *)"},
        ),
        (
            {"ScheduleExpression": "rate(10 days)"},
            {"AutomaticallyAfterDays": 10, "ScheduleExpression": "rate(10 days)"},
        ),
    ],
)
def test_describe_secret_echoes_the_rules_with_their_interval_in_days(
    rules: dict[str, object], echo: dict[str, object]
) -> None:
    schedule = parse_rules(rules)
    assert dict(schedule.rules) == echo
    # What DescribeSecret shows parses back to the same schedule.
    assert stored(schedule.rules) == schedule


@pytest.mark.parametrize(
    ("expression", "duration", "first", "length"),
    [
        # rate() windows start at midnight; hours every N from there, an hour long.
        ("rate(4 hours)", None, at(4, 12), H),
        ("rate(12 hours)", "3h", at(4, 12), 3 * H),
        # A cron in hours: an hour by default; "4/12" is 04:00 and 16:00.
        ("cron(0 4/12 * * ? *)", None, at(4, 16), H),
        # A cron in days: until the end of the UTC day.
        ("cron(0 8 ? * MON *)", None, at(9, 8), 16 * H),
        ("cron(0 9 L * ? *)", None, at(31, 9), 15 * H),
        ("cron(0 1 ? * 6L *)", "2h", at(27, 1), 2 * H),  # the last Friday of March
        ("cron(0 6 ? * TUE#2 *)", None, at(10, 6), 18 * H),  # the second Tuesday
        ("cron(0 0 1 JAN-MAR,JUL ? *)", "4h", at(1, 0, month=7), 4 * H),
        ("cron(0 10 * * ? *)", None, at(4, 10), 14 * H),  # today's window is still open
    ],
)
def test_the_next_window(
    expression: str, duration: str | None, first: datetime, length: timedelta
) -> None:
    rules = {"ScheduleExpression": expression}
    if duration:
        rules["Duration"] = duration
    window = parse_rules(rules).next_window(T0)
    assert window == Window(first, first + length)


def test_a_schedule_in_days_counts_from_the_last_rotation() -> None:
    schedule = parse_rules({"AutomaticallyAfterDays": 7, "Duration": "3h"})
    rotated = datetime(2026, 3, 4, 22, 15, tzinfo=UTC)
    assert schedule.window_after_rotation(rotated) == Window(at(11), at(11, 3))
    # Without a Duration: the whole UTC day.
    assert parse_rules({"AutomaticallyAfterDays": 1}).window_after_rotation(rotated) == Window(
        at(5), at(6)
    )


def test_the_window_after_a_rotation_is_a_later_one() -> None:
    schedule = parse_rules({"ScheduleExpression": "rate(4 hours)"})
    assert schedule.window_after_rotation(at(4, 8) + timedelta(minutes=20)) == Window(
        at(4, 12), at(4, 13)
    )
    assert schedule.window_after_rotation(at(4, 20) + timedelta(minutes=59)) == Window(
        at(5, 0), at(5, 1)
    )


@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"AutomaticallyAfterDays": 0},
        {"AutomaticallyAfterDays": 1001},
        {"AutomaticallyAfterDays": 5, "ScheduleExpression": "rate(5 days)"},
        {"ScheduleExpression": "rate(3 hours)"},  # more often than every 4 hours
        {"ScheduleExpression": "rate(1 hours)"},
        {"ScheduleExpression": "rate(2 day)"},
        {"ScheduleExpression": "rate(30 hours)"},
        {"ScheduleExpression": "rate(1001 days)"},
        {"ScheduleExpression": "rate(0 days)"},
        {"ScheduleExpression": "every day"},
        {"ScheduleExpression": "cron(0 8 * * ?)"},  # five fields
        {"ScheduleExpression": "cron(15 8 * * ? *)"},  # minutes must be 0
        {"ScheduleExpression": "cron(0 8 * * ? 2027)"},  # year must be *
        {"ScheduleExpression": "cron(0 8 * * MON *)"},  # neither day field is ?
        {"ScheduleExpression": "cron(0 8 ? * ? *)"},  # both are
        {"ScheduleExpression": "cron(0 24 * * ? *)"},
        {"ScheduleExpression": "cron(0 8 32 * ? *)"},
        {"ScheduleExpression": "cron(0 8 ? * MON#6 *)"},
        {"ScheduleExpression": "cron(0 8 30 2 ? *)"},  # no such day
        {"ScheduleExpression": "cron(0 0,2 * * ? *)"},  # two hours apart
        {"ScheduleExpression": "cron(0 1,22 * * ? *)"},  # three hours across midnight
        {"ScheduleExpression": "rate(4 hours)", "Duration": "2h"},  # 20:00 + 2h fits
        {"ScheduleExpression": "rate(6 hours)", "Duration": "7h"},  # into the next window
        {"ScheduleExpression": "cron(0 20 * * ? *)", "Duration": "5h"},  # into the next day
        {"AutomaticallyAfterDays": 2, "Duration": "25h"},
        {"AutomaticallyAfterDays": 2, "Duration": "0h"},
        {"AutomaticallyAfterDays": 2, "Duration": "h"},
    ],
)
def test_refused_rules(rules: dict[str, object]) -> None:
    if rules.get("Duration") == "2h":
        parse_rules(rules)  # the control: accepted
        return
    with pytest.raises(ServiceError) as refused:
        parse_rules(rules)
    assert refused.value.code == "InvalidParameterException"


def test_accepted_cron_forms() -> None:
    for expression in (
        "cron(0 0 * * ? *)",
        "cron(0 4,8,12 ? * MON-FRI *)",
        "cron(0 1 1-7 * ? *)",
        "cron(0 10 ? FEB,MAY,AUG,NOV TUE#2 *)",
        "cron(0 23 ? * L *)",
        "cron(0 0/6 * * ? *)",
        "cron(0 8 1/3 * ? *)",
    ):
        assert parse_rules({"ScheduleExpression": expression}).next_window(T0) is not None


RATES_IN_HOURS = st.integers(min_value=4, max_value=23)
MOMENTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
HOURS = st.lists(st.integers(0, 23), min_size=1, max_size=4, unique=True)


@given(RATES_IN_HOURS, MOMENTS)
def test_rate_windows_in_hours(hours: int, moment: datetime) -> None:
    schedule = parse_rules({"ScheduleExpression": f"rate({hours} hours)"})
    found = windows(schedule, moment, 8)
    assert found[0].end > moment
    for window in found:
        assert window.start.hour % hours == 0 and window.start.minute == 0
        assert window.length == H
    for before, after in itertools.pairwise(found):
        assert after.start >= before.end
    after_rotation = schedule.window_after_rotation(moment)
    assert after_rotation is not None and after_rotation.start > moment


@given(st.integers(1, 1000), MOMENTS, st.integers(1, 24))
def test_day_windows_start_at_midnight_and_stay_in_their_day(
    days: int, moment: datetime, duration: int
) -> None:
    schedule = parse_rules({"AutomaticallyAfterDays": days, "Duration": f"{duration}h"})
    window = schedule.window_after_rotation(moment)
    assert window is not None
    assert window.start.time() == datetime.min.time()
    assert window.start.date() == (moment + days * D).date()
    assert window.length == duration * H


@given(HOURS, st.sampled_from(["*", "?"]), MOMENTS)
def test_cron_windows_never_overlap_nor_cross_midnight(
    hours: list[int], weekday: str, moment: datetime
) -> None:
    hours.sort()
    expression = (
        f"cron(0 {','.join(map(str, hours))} {'*' if weekday == '?' else '?'} * {weekday} *)"
    )
    try:
        schedule = parse_rules({"ScheduleExpression": expression})
    except ServiceError as refused:
        assert refused.code == "InvalidParameterException"
        gaps = [b - a for a, b in itertools.pairwise(hours)]
        if len(hours) > 1:
            gaps.append(24 - hours[-1] + hours[0])
        assert min(gaps) < 4
        return
    found = windows(schedule, moment, 6)
    for window in found:
        assert window.start.hour in hours
        assert window.end <= datetime.combine(window.start.date(), datetime.min.time(), UTC) + D
    for before, after in itertools.pairwise(found):
        assert after.start >= before.end
