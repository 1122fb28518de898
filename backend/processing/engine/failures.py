"""Whose fault is it? An exception raised by a process implementation → the openEO error to answer.

The classification is explicit, by what signals a user's mistake; everything else is ours:

* our own processes raise ``apicore.errors.OpenEOError`` (passed through by the caller);
* openeo-processes-dask raises subclasses of its ``OpenEOException`` named after openEO error codes
  (``DimensionNotAvailable``, ``ArrayElementNotAvailable`` ...), and in places a plain ``Exception``
  whose message starts with such a code (``"LabelExists - ..."``, ``"DimensionNotAvailable"``) or says
  what to change (``KNOWN_LIBRARY_MESSAGES``): 400 with that code;
* numeric overflow of the user's arithmetic (``OverflowError``: a number beyond 64-bit floating point):
  400 ``ProcessParameterInvalid`` asking for smaller values; a ``MemoryError`` (the user asked for an
  array or cube larger than memory): 400 ``ProcessGraphComplexity`` asking for a smaller request;
* anything else — ``ValueError``, ``KeyError``, ``TypeError``, ``IndexError`` included, since argument
  values were checked against the process's schema before the call — is a defect of this backend or a
  library: 500 ``Internal``, logged with its traceback, and not charged.
"""

from __future__ import annotations

import logging
import re
import traceback

from apicore import errors

log = logging.getLogger(__name__)

LIBRARY_PACKAGE = "openeo_processes_dask"
# "DimensionNotAvailable", "LabelExists - A label ...", "FormatUnsuitable: Data can't ..."
_CODE_PREFIX = re.compile(r"^(?P<code>(?:[A-Z][a-z0-9]+){2,})(?:$|\s*[-:]\s*(?P<rest>.*))", re.DOTALL)
# Plain-Exception messages of openeo-processes-dask that describe a user's mistake without a code.
KNOWN_LIBRARY_MESSAGES = {
    "are not all available in the datacube": "ProcessParameterInvalid",  # filter_bands
    "merge not possible": "ProcessParameterInvalid",  # merge_cubes: dimensions that cannot be merged
    "Provided cubes have incompatible types": "ProcessParameterInvalid",  # merge_cubes
    "Selected resampling method": "ProcessParameterInvalid",  # resample_*: unknown method
    "Unsupported or missing geometry type": "ProcessParameterInvalid",  # mask_polygon
    "Unsupported polygons format": "ProcessParameterInvalid",  # apply_polygon
    "already exists in dataset and contains more than one label": "DimensionExists",  # apply_dimension
}


def process_failure(process_id: str, node_id: str, exc: Exception) -> errors.OpenEOError:
    """The openEO error for ``exc`` raised by process ``process_id`` at node ``node_id``."""
    where = f"Process '{process_id}' (node '{node_id}')"
    user_error = _library_user_error(exc)
    if user_error is not None:
        code, detail = user_error
        error = errors.OpenEOError(f"{where} failed: {detail}")
        error.code, error.status = code, 400
        return error
    if isinstance(exc, OverflowError):
        return errors.ProcessParameterInvalid(
            f"{where}: a number is out of the range this backend computes in (64-bit floating point, about "
            f"±1.8e308): {exc}. Use smaller values (e.g. scale the data first).")
    if isinstance(exc, MemoryError):  # e.g. array_create with repeat=10**12: "Unable to allocate 7.28 TiB"
        return errors.ProcessGraphComplexity(
            f"{where} asks for more memory than this backend has ({exc}). Make the request smaller: a smaller "
            "extent, fewer dates or bands, shorter arrays.")
    log.error("process %s (node %s) raised %s", process_id, node_id, type(exc).__name__, exc_info=exc)
    return errors.Internal(
        message=f"{where} failed unexpectedly ({type(exc).__name__}). This is a fault of the backend, not of "
                "your process graph, and is not charged; report it to the operator with the request or job id.")


def _library_user_error(exc: Exception) -> tuple[str, str] | None:
    """(openEO code, detail) when openeo-processes-dask signalled a user's mistake, else None."""
    from openeo_processes_dask.process_implementations.exceptions import OpenEOException

    if isinstance(exc, OpenEOException):
        return type(exc).__name__, str(exc) or type(exc).__name__
    plain = type(exc) is Exception or isinstance(exc, ValueError)
    if not plain or not _raised_by_library(exc):
        return None
    message = str(exc).strip()
    match = _CODE_PREFIX.match(message)
    if match is not None:
        return match["code"], message
    for fragment, code in KNOWN_LIBRARY_MESSAGES.items():
        if fragment in message:
            return code, message
    return None


def _raised_by_library(exc: BaseException) -> bool:
    """True when the innermost frame of the traceback is openeo-processes-dask's own code."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"{LIBRARY_PACKAGE}/" in frames[-1].filename.replace("\\", "/")
