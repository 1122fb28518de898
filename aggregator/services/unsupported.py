"""Batch jobs until the aggregator's jobs service is plugged in (``build_services(parts, jobs=...)``):
every call answers 501 FeatureUnsupported."""

from __future__ import annotations

from apicore import errors

MESSAGE = "Batch jobs are not offered by this federation yet; use synchronous processing (POST /result)."


class UnsupportedJobs:
    """apicore.services.JobsService, refusing every call."""

    def _refuse(self, *args, **kwargs):
        raise errors.FeatureUnsupported(MESSAGE)

    listing = create = describe = update = delete = start = stop = logs = estimate = results = _refuse

