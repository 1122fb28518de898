"""Workspace file paths (``/files/{path}``): which ones are accepted, checked before any storage sees them.

A path is relative to the caller's workspace root: folder and file names joined by ``/``. Each name uses
a safe character set (ASCII letters, digits, ``_ - + . ( )`` and inner spaces), does not start with a dot
(no ``.``/``..``, no hidden names: the store keeps its own bookkeeping under dot-names) and is at most
255 characters; the whole path at most 1024. Anything else is a 400 ``FilePathInvalid`` saying why.
"""

from __future__ import annotations

import re

from apicore import errors

MAX_NAME_CHARS = 255
MAX_PATH_CHARS = 1024
MAX_DEPTH = 32
_NAME = re.compile(r"[A-Za-z0-9_+()-](?:[A-Za-z0-9_+().\- ]*[A-Za-z0-9_+().-])?")
ALLOWED = "ASCII letters, digits, '_', '-', '+', '.', '(', ')' and spaces inside a name"


def checked_file_path(path: str) -> str:
    """``path`` as given when it is acceptable; else FilePathInvalid naming the rule it breaks."""
    if not path:
        raise errors.FilePathInvalid(reason="the path is empty; give a file name such as 'folder/data.tif'")
    if path.startswith("/") or path.startswith("\\") or re.match(r"^[A-Za-z]:", path):
        raise errors.FilePathInvalid(reason=f"'{_shown(path)}' is absolute; give a path relative to your "
                                            "workspace, e.g. 'folder/data.tif'")
    if len(path) > MAX_PATH_CHARS:
        raise errors.FilePathInvalid(reason=f"the path is longer than {MAX_PATH_CHARS} characters")
    names = path.split("/")
    if len(names) > MAX_DEPTH:
        raise errors.FilePathInvalid(reason=f"the path has more than {MAX_DEPTH} levels of folders")
    for name in names:
        if name in (".", ".."):
            raise errors.FilePathInvalid(reason=f"'{_shown(path)}' contains '{name}'; relative references are not "
                                                "allowed, give the path from your workspace root")
        if not name:
            raise errors.FilePathInvalid(reason=f"'{_shown(path)}' has an empty folder name ('//' or a trailing '/')")
        if len(name) > MAX_NAME_CHARS:
            raise errors.FilePathInvalid(reason=f"a name is longer than {MAX_NAME_CHARS} characters")
        if name.startswith("."):
            raise errors.FilePathInvalid(reason=f"'{_shown(name)}' starts with a dot; hidden names are not allowed")
        if not _NAME.fullmatch(name):
            raise errors.FilePathInvalid(reason=f"'{_shown(name)}' has characters outside the allowed set ({ALLOWED}; "
                                                "no space at either end)")
    return path


def _shown(text: str) -> str:
    """The offending text, quoted safely in a message (control characters escaped, long text cut)."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 80 else shown[:77] + "..."
