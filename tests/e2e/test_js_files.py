"""The file workspace through the real openEO JS client (tests/js/file_calls.mjs under Node): the client sees
the features, uploads (its Node uploads are chunked streams), lists, pages, downloads byte for byte, deletes,
and gets the openEO error of a refused path."""

from __future__ import annotations

import json
import os
import subprocess

from tests.e2e.test_js_client import JS_DIR, node  # noqa: F401  (the fixture: Node with the pinned client)

SCRIPT = JS_DIR / "file_calls.mjs"


def test_js_client_file_workspace(node, live_server, tmp_path):  # noqa: F811
    contents = {"small.txt": b"hello from js\n", "nested.bin": os.urandom(10_000), "big.bin": os.urandom(3_000_000)}
    for name, content in contents.items():
        (tmp_path / name).write_bytes(content)
    name, password = live_server.new_user()
    completed = subprocess.run([node, str(SCRIPT), live_server.url, name, password, str(tmp_path)], cwd=JS_DIR,
                               capture_output=True, text=True, timeout=120, env={**os.environ, "NODE_NO_WARNINGS": "1"})
    report = json.loads(completed.stdout)
    assert completed.returncode == 0 and "error" not in report, (report, completed.stderr)

    assert report["features"] == {"listFiles": True, "uploadFile": True, "downloadFile": True, "deleteFile": True}
    sizes = {"small.txt": 14, "deep/er/nested.bin": 10_000, "big.bin": 3_000_000}
    assert [(f["path"], f["size"]) for f in report["listed"]] == sorted(sizes.items())
    assert all(f["modified"].endswith("Z") for f in report["listed"])
    assert report["pages"] == [["big.bin", "deep/er/nested.bin"], ["small.txt"]]
    for local, target in (("small.txt", "small.txt"), ("nested.bin", "deep_er_nested.bin"), ("big.bin", "big.bin")):
        assert (tmp_path / f"down-{target}").read_bytes() == contents[local]
    assert report["after_delete"] == ["big.bin", "small.txt"]
    for bad in (".hidden", "a//b.txt"):
        refused = report[f"refused {bad}"]
        assert (refused["status"], refused["code"]) == (400, "FilePathInvalid"), refused
