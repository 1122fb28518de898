"""The admin API's errors (openEO error JSON; a failed self-check also lists every check)."""

from __future__ import annotations

from typing import Any

from apicore.errors import OpenEOError


class SelfCheckFailed(OpenEOError):
    code = "SelfCheckFailed"
    status = 409
    template = "{reason}"

    def __init__(self, message: str, report: dict):
        self.report = report
        super().__init__(message)

    def to_dict(self, request_id: str | None) -> dict[str, Any]:
        return {**super().to_dict(request_id), "self_check": self.report}


class BackendExists(OpenEOError):
    code = "BackendExists"
    status = 409
    template = "{reason}"


class BackendRemovalRefused(OpenEOError):
    code = "BackendRemovalRefused"
    status = 409
    template = "{reason}"


class BackendNotFound(OpenEOError):
    code = "BackendNotFound"
    status = 404
    template = "{reason}"
