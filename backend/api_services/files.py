"""The backend's file workspace (apicore.services.FilesService) over its workspaces (local or fsspec)."""

from __future__ import annotations

from typing import BinaryIO

from apicore.services import Download, Page
from backend.files.workspace import LocalWorkspaces
from backend.storage.models import User


class BackendFiles:
    def __init__(self, workspaces: LocalWorkspaces):
        self.workspaces = workspaces

    def listing(self, caller: User, limit: int | None, page: str | None) -> Page:
        entries = self.workspaces.list(caller.user_id)
        if page is not None:  # the token is the last path of the previous page: stable under changes
            entries = [entry for entry in entries if entry.path > page]
        more = limit is not None and len(entries) > limit
        entries = entries[:limit] if limit is not None else entries
        return Page({"files": [entry.document() for entry in entries]}, entries[-1].path if more else None)

    def download(self, caller: User, path: str) -> Download:
        return self.workspaces.download(caller.user_id, path)

    def upload(self, caller: User, path: str, body: BinaryIO, length: int | None) -> dict:
        return self.workspaces.write(caller.user_id, path, body, length).document()

    def delete(self, caller: User, path: str) -> None:
        self.workspaces.delete(caller.user_id, path)
