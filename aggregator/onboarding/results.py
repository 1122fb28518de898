"""What a self-check says: one ``CheckResult`` per check, gathered in a ``SelfCheckReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """``detail``: what was seen; for a failure, also what the partner has to change."""

    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "passed", detail)


def failed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "failed", detail)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "skipped", detail)


@dataclass(frozen=True)
class SelfCheckReport:
    url: str
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """No check failed (skipped ones say why they could not run)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if check.status == "failed"]

    def by_name(self) -> dict[str, CheckResult]:
        return {check.name: check for check in self.checks}

    def to_dict(self) -> dict:
        return {"url": self.url, "passed": self.passed, "seconds": round(self.seconds, 3),
                "checks": [check.to_dict() for check in self.checks]}

    def summary(self) -> str:
        """The failed checks in one line each (for error messages)."""
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failures)

    def render(self) -> str:
        """A table for the CLI: status, name, detail."""
        width = max((len(check.name) for check in self.checks), default=0)
        lines = [f"{check.status.upper():<8} {check.name:<{width}}  {check.detail}" for check in self.checks]
        verdict = "all checks passed" if self.passed else f"{len(self.failures)} check(s) failed"
        skipped_count = sum(check.status == "skipped" for check in self.checks)
        if skipped_count:
            verdict += f", {skipped_count} skipped"
        return "\n".join([*lines, f"{self.url}: {verdict} ({self.seconds:.1f} s)"])
