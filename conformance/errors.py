"""The runner's set-up error."""


class RunnerError(RuntimeError):
    """Set-up problem (backend/OIDC server does not start, bad options): exit code 2."""
