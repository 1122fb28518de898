"""Users' file workspaces (/files, load_uploaded_files): local (workspace.py) or in an fsspec store (remote.py)."""

from __future__ import annotations

from typing import Any


def open_workspaces(settings: Any):
    """The workspaces the settings name: ``files_url`` when set (``files_dir`` then stages), else ``files_dir``."""
    from backend.files.workspace import LocalWorkspaces

    if settings.files_url:
        from backend.files.remote import FsspecWorkspaces

        return FsspecWorkspaces(settings.files_url, settings.files_storage_options, settings.resolved_files_dir,
                                settings.files_quota_bytes)
    return LocalWorkspaces(settings.resolved_files_dir, settings.files_quota_bytes)
