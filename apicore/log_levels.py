"""openEO log levels (error > warning > info > debug), shared by job logs and the job field checks."""

from __future__ import annotations

from typing import Any

from apicore import errors

LEVELS = ("debug", "info", "warning", "error")


def level_rank(level: str) -> int:
    return LEVELS.index(level)


def check_level(level: Any, parameter: str = "level") -> str:
    if level not in LEVELS:
        raise errors.BadRequest(reason=f"'{parameter}' must be one of {', '.join(LEVELS)}, not {level!r}")
    return level
