"""URLs shown to people with their password masked.

A database or tracking URL may carry a password (postgresql://user:pass@host/db). Wherever this
project prints or records such a URL (the run summary, the `make airflow` banner, a message
naming the MLflow store) it goes through mask_url; the URL itself travels only in the
environment of the processes that connect with it.
"""
from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@host: the password is whatever lies between the first ':' after the
# scheme's '//' and the last '@' before the host and path (a password may hold '@' or ':').
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^/]*)@"
                       r"(?P<host>[^@/]*)(?P<rest>(/.*)?)$")
_PASSWORD_PARAM = re.compile(r"(?i)([?&]password=)[^&]*")


def mask_url(url: str) -> str:
    """The URL with its password (user:password@ or a password= query parameter) as ***."""
    if not url:
        return url
    match = _USERINFO.match(url)
    if match:
        url = (f"{match['scheme']}{match['user']}:{MASK}@{match['host']}{match['rest']}")
    return _PASSWORD_PARAM.sub(lambda m: m.group(1) + MASK, url)
