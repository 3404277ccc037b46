"""Text that is dates: the layouts spreadsheets, databases and R or pandas exports write a
calendar day in, with or without a time of day, for column_roles' rule 3b.

A value is a date when it reads as a real day (month 1 to 12, a day the month has: '12/34/56'
is a code, not a date) in one of:

- year first: 2009-10-16, 2009/10/16, 2009.10.16, optionally with a time (2009-10-16 14:05,
  2009-10-16T14:05:09.5Z);
- year last: 10/16/2009 and 16/10/2009 (slashes, also with a two-digit year: 10/16/09),
  16.10.2009 and 16-10-2009 (a four-digit year only: '1.2.10' is more often a version than a
  day), optionally with a time (10/16/2009 2:05 PM);
- a month's English name: 16-Oct-2009, 16 October 2009, Oct 16, 2009;
- two of those joined by '-' or 'to' (a period: breaches' '06/15/2012 - 10/01/2012').

A column is dates when at least a given share of its values are. A year-last day is month
first or day first, and the column says which: the order under which that share of its values
are days, so values with a day above 12 in the second place (10/16/2009) say month first, in
the first place (16/10/2009) day first, and a column where neither appears is said to be
either (its values are dates all the same).
"""
from __future__ import annotations

import collections
import datetime
import re
from typing import Iterable

YEAR_MONTH_DAY = "year-month-day"
MONTH_DAY_YEAR = "month/day/year"
DAY_MONTH_YEAR = "day/month/year"
_ANY_ORDER = frozenset({YEAR_MONTH_DAY, MONTH_DAY_YEAR, DAY_MONTH_YEAR})
_CLOCK = (r"(?:(?:[ T]|, )\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?"
          r"(?:\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?)?")
_YEAR_FIRST = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _CLOCK)
_YEAR_LAST = (re.compile(r"(\d{1,2})(/)(\d{1,2})/(\d{4}|\d{2})" + _CLOCK),
              re.compile(r"(\d{1,2})([-.])(\d{1,2})\2(\d{4})" + _CLOCK))
_DAY_NAMED_MONTH = re.compile(r"(\d{1,2})[- ]([A-Za-z]{3,9})\.?[- ](\d{4})" + _CLOCK)
_NAMED_MONTH_DAY = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})" + _CLOCK)
_MONTHS = {name: number for number, names in enumerate(
    (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
     ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
     ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1)
    for name in names}
# A period: two days joined by a dash or 'to' (a day's own dashes are tried as joints too).
_JOINT = re.compile(r"\s*(?:-|–|\bto\b)\s*")
_PERIOD_CHARS = 80  # longer values are not tried as periods (free text has dashes too)


def _is_day(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year if year >= 100 else 2000 + year, month, day)
    except ValueError:
        return False
    return True


def _day_orders(text: str) -> frozenset[str]:
    """The orders under which text is one calendar day (frozenset() when it is none)."""
    match = _YEAR_FIRST.fullmatch(text)
    if match:
        return frozenset({YEAR_MONTH_DAY}) if _is_day(
            int(match[1]), int(match[3]), int(match[4])) else frozenset()
    for pattern in _YEAR_LAST:
        match = pattern.fullmatch(text)
        if match:
            first, second, year = int(match[1]), int(match[3]), int(match[4])
            return frozenset(order for order, month, day in (
                (MONTH_DAY_YEAR, first, second), (DAY_MONTH_YEAR, second, first))
                if _is_day(year, month, day))
    # A month written by name fits every column's order.
    return _ANY_ORDER if _is_named_month_day(text) else frozenset()


def _is_named_month_day(text: str) -> bool:
    match = _DAY_NAMED_MONTH.fullmatch(text)
    if match:
        day, month, year = match[1], match[2], match[3]
    else:
        match = _NAMED_MONTH_DAY.fullmatch(text)
        if not match:
            return False
        month, day, year = match[1], match[2], match[3]
    number = _MONTHS.get(month.lower())
    return number is not None and _is_day(int(year), number, int(day))


def date_orders(value: str) -> frozenset[str]:
    """The orders under which value is a day, or a period of two days (both read alike)."""
    text = value.strip()
    orders = _day_orders(text)
    if orders or len(text) > _PERIOD_CHARS:
        return orders
    for joint in _JOINT.finditer(text):
        both = _day_orders(text[:joint.start()]) & _day_orders(text[joint.end():])
        if both:
            return both
    return frozenset()


def dates_layout(values: Iterable[str], share: float) -> str:
    """How the values write their days ('month/day/year', 'year-month-day', ...) when at least
    `share` of them are days read in one order; '' otherwise."""
    counts = collections.Counter(values)
    total = sum(counts.values())
    if not total:
        return ""
    by_order: collections.Counter = collections.Counter()
    days = 0
    for value, cells in counts.items():
        orders = date_orders(value)
        days += cells if orders else 0
        for order in orders:
            by_order[order] += cells
    if days < share * total:
        return ""
    fitting = [order for order in (YEAR_MONTH_DAY, MONTH_DAY_YEAR, DAY_MONTH_YEAR)
               if by_order[order] >= share * total]
    if len(fitting) == len(_ANY_ORDER):
        return "the month by name"
    if fitting == [MONTH_DAY_YEAR, DAY_MONTH_YEAR]:
        return "month/day/year or day/month/year (no day above 12 tells which)"
    # Days in both orders (10/16/2009 beside 16/10/2009) are dates all the same.
    return fitting[0] if fitting else "in more than one order"
