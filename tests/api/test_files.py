"""The file workspace (/files) through the real openeo Python client and raw HTTP: round trips, paging,
a large streamed upload, every refused path, the quota, per-user isolation and overlapping uploads."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
from urllib.parse import urlsplit

import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError

from backend.app import create_app
from backend.settings import load_settings
from tests.conftest import LiveServer


def _client(server: LiveServer) -> openeo.Connection:
    return openeo.connect(server.url).authenticate_basic(*server.new_user())


def _workspace(server: LiveServer, connection: openeo.Connection):
    return server.services.files.user_dir(connection.describe_account()["user_id"])


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("quota"), demo_catalog=False,
                             files_quota_bytes=100_000, max_request_bytes=1024)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


def test_client_round_trip_with_folders(live_server, tmp_path):
    con = _client(live_server)
    sources = {"empty.txt": b"", "notes.txt": b"hello\n", "rasters/2024/b04.tif": os.urandom(200_000),  # > max_request_bytes
               "rasters/readme (v2).md": b"# readme\n"}
    for target, content in sources.items():
        source = tmp_path / target.replace("/", "_")
        source.write_bytes(content)
        uploaded = con.upload_file(source, target=target)
        assert (str(uploaded.path), uploaded.metadata["size"]) == (target, len(content))
        assert uploaded.metadata["modified"].endswith("Z")

    listed = con.list_files()
    assert [(str(f.path), f.metadata["size"]) for f in listed] == sorted((p, len(c)) for p, c in sources.items())
    for user_file in listed:
        target = user_file.download(tmp_path / "down" / str(user_file.path))
        assert target.read_bytes() == sources[str(user_file.path)]

    con.get_file("rasters/2024/b04.tif").delete()
    con.get_file("notes.txt").delete()
    con.get_file("empty.txt").delete()
    assert [str(f.path) for f in con.list_files()] == ["rasters/readme (v2).md"]
    assert not (_workspace(live_server, con) / "rasters" / "2024").exists()  # emptied folders go
    con.get_file("rasters/readme (v2).md").delete()
    assert list(con.list_files()) == []
    assert not (_workspace(live_server, con) / "rasters").exists()


def test_upload_replaces_and_default_target_is_the_file_name(live_server, tmp_path):
    con = _client(live_server)
    source = tmp_path / "data.json"
    source.write_bytes(b"[1]")
    assert str(con.upload_file(source).path) == "data.json"
    source.write_bytes(b"[1, 2, 3]")
    con.upload_file(source)
    assert [(str(f.path), f.metadata["size"]) for f in con.list_files()] == [("data.json", 9)]
    assert con.get_file("data.json").download(tmp_path / "back.json").read_bytes() == b"[1, 2, 3]"


def test_large_upload_streams_byte_for_byte(live_server, tmp_path):
    con = _client(live_server)
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(50):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    uploaded = con.upload_file(source, target="big/big.bin")
    assert uploaded.metadata["size"] == 50 * 1024 * 1024
    back = con.get_file("big/big.bin").download(tmp_path / "back.bin")
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest.hexdigest()
    assert list((_workspace(live_server, con) / ".uploads").iterdir()) == []


def test_listing_pages_follow_next_links(live_server):
    headers = live_server.auth_headers()
    names = [f"f{i:02d}.txt" for i in range(7)]
    for name in names:
        requests.put(f"{live_server.url}/files/{name}", data=name.encode(), headers=headers).raise_for_status()
    seen, url = [], f"{live_server.url}/files?limit=3"
    while url:
        page = requests.get(url, headers=headers).json()
        assert len(page["files"]) <= 3
        seen += [entry["path"] for entry in page["files"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert seen == names
    bad = requests.get(f"{live_server.url}/files?limit=0", headers=headers)
    assert (bad.status_code, bad.json()["code"]) == (400, "BadRequest")


def _raw(server: LiveServer, method: str, path: str, headers: dict, body: bytes | None = None) -> tuple[int, dict]:
    """A request whose path goes on the wire exactly as written (requests would resolve '..' itself)."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, parts.path + path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, __import__("json").loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.parametrize("path, reason", [
    ("/files/../secret.txt", "'..'"),
    ("/files/a/../../secret.txt", "'..'"),
    ("/files/a/%2E%2E/%2E%2E/secret.txt", "'..'"),
    ("/files/./a.txt", "'.'"),
    ("/files//etc/passwd", "absolute"),
    ("/files/%2Fetc%2Fpasswd", "absolute"),
    ("/files/C:%5Cwindows", "absolute"),
    ("/files/a%5C..%5Cb", "characters outside"),
    ("/files/bad%0Aname.txt", "characters outside"),
    ("/files/%C3%BCmlaut.txt", "characters outside"),
    ("/files/x$y.txt", "characters outside"),
    ("/files/a%20", "characters outside"),
    ("/files/.bashrc", "starts with a dot"),
    ("/files/a//b.txt", "empty folder name"),
    ("/files/folder/", "empty folder name"),
    ("/files/" + "n" * 256, "longer than 255"),
])
def test_bad_paths_are_refused_for_every_method(live_server, path, reason):
    headers = live_server.auth_headers()
    for method, body in (("PUT", b"data"), ("GET", None), ("DELETE", None)):
        status, error = _raw(live_server, method, path, headers, body)
        assert (status, error.get("code")) == (400, "FilePathInvalid"), (method, path, error)
        assert reason in error["message"]
    assert requests.get(f"{live_server.url}/files", headers=headers).json()["files"] == []


def test_a_nul_character_is_refused_before_the_path_check(live_server):
    """No URL of the API holds one (apicore/flask_support.py refuses it for every route)."""
    headers = live_server.auth_headers()
    for method, body in (("PUT", b"data"), ("GET", None), ("DELETE", None)):
        status, error = _raw(live_server, method, "/files/a%00b.txt", headers, body)
        assert (status, error.get("code")) == (400, "BadRequest") and "NUL character" in error["message"]
    assert requests.get(f"{live_server.url}/files", headers=headers).json()["files"] == []


def test_folder_and_missing_file_errors(live_server):
    headers, url = live_server.auth_headers(), live_server.url
    requests.put(f"{url}/files/dir/a.txt", data=b"a", headers=headers).raise_for_status()
    for method, path, status, code in [
        ("GET", "dir", 400, "FileOperationUnsupported"), ("DELETE", "dir", 400, "FileOperationUnsupported"),
        ("PUT", "dir", 400, "FileOperationUnsupported"), ("GET", "dir/nope.txt", 404, "FileNotFound"),
        ("DELETE", "nope/nope.txt", 404, "FileNotFound"), ("PUT", "dir/a.txt/b.txt", 400, "FilePathInvalid"),
    ]:
        response = requests.request(method, f"{url}/files/{path}", data=b"x" if method == "PUT" else None,
                                    headers=headers)
        assert (response.status_code, response.json()["code"]) == (status, code), (method, path)
    assert requests.get(f"{url}/files/dir/a.txt", headers=headers).content == b"a"
    anonymous = requests.get(f"{url}/files")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "AuthenticationRequired")


def test_symbolic_links_are_never_followed(live_server, tmp_path):
    con = _client(live_server)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"operator's secret")
    source = tmp_path / "mine.txt"
    source.write_bytes(b"mine")
    con.upload_file(source, target="mine.txt")
    workspace = _workspace(live_server, con)
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    (workspace / "linkdir").symlink_to(outside)
    headers = {"Authorization": f"Bearer {con.auth.bearer}"}

    assert [str(f.path) for f in con.list_files()] == ["mine.txt"]
    for method, path in (("GET", "link.txt"), ("GET", "linkdir/secret.txt"), ("PUT", "linkdir/new.txt"),
                         ("PUT", "link.txt"), ("DELETE", "link.txt"), ("DELETE", "linkdir/secret.txt")):
        response = requests.request(method, f"{live_server.url}/files/{path}", headers=headers,
                                    data=b"overwrite" if method == "PUT" else None)
        assert (response.status_code, response.json()["code"]) == (400, "FilePathInvalid"), (method, path)
        assert "symbolic link" in response.json()["message"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"operator's secret"


def test_users_never_see_each_others_files(live_server, tmp_path):
    alice, bob = _client(live_server), _client(live_server)
    source = tmp_path / "secret.txt"
    source.write_bytes(b"alice's secret")
    alice.upload_file(source, target="private/secret.txt")

    assert list(bob.list_files()) == []
    for call in (lambda: bob.get_file("private/secret.txt").download(tmp_path / "stolen"),
                 lambda: bob.get_file("private/secret.txt").delete()):
        with pytest.raises(OpenEoApiError) as caught:
            call()
        assert (caught.value.http_status_code, caught.value.code) == (404, "FileNotFound")
    source.write_bytes(b"bob's version")
    bob.upload_file(source, target="private/secret.txt")
    assert alice.get_file("private/secret.txt").download(tmp_path / "a").read_bytes() == b"alice's secret"
    assert bob.get_file("private/secret.txt").download(tmp_path / "b").read_bytes() == b"bob's version"


def test_quota_refuses_with_nothing_half_written(quota_server, tmp_path):
    con = _client(quota_server)
    workspace = _workspace(quota_server, con)
    first = tmp_path / "first.bin"
    first.write_bytes(os.urandom(60_000))
    con.upload_file(first, target="keep/first.bin")

    too_big = tmp_path / "second.bin"
    too_big.write_bytes(os.urandom(50_000))
    with pytest.raises(OpenEoApiError) as caught:
        con.upload_file(too_big, target="keep/second.bin")
    assert (caught.value.http_status_code, caught.value.code) == (400, "StorageQuotaExceeded")
    assert "quota of 97.7 KiB" in caught.value.message and "'keep/second.bin' (48.8 KiB)" in caught.value.message

    # Streamed without Content-Length (chunked): refused while streaming, nothing kept either.
    headers = {"Authorization": f"Bearer {con.auth.bearer}"}
    chunked = requests.put(f"{quota_server.url}/files/new/streamed.bin", headers=headers,
                           data=(os.urandom(10_000) for _ in range(5)))
    assert (chunked.status_code, chunked.json()["code"]) == (400, "StorageQuotaExceeded")

    # Replacing a file only counts the difference: 60 kB -> 95 kB fits in 100 kB.
    replacement = os.urandom(95_000)
    fits = requests.put(f"{quota_server.url}/files/keep/first.bin", headers=headers, data=replacement)
    assert fits.status_code == 200, fits.text
    over = requests.put(f"{quota_server.url}/files/keep/first.bin", headers=headers, data=os.urandom(100_001))
    assert (over.status_code, over.json()["code"]) == (400, "StorageQuotaExceeded")

    assert [(str(f.path), f.metadata["size"]) for f in con.list_files()] == [("keep/first.bin", 95_000)]
    assert con.get_file("keep/first.bin").download(tmp_path / "back").read_bytes() == replacement
    assert list((workspace / ".uploads").iterdir()) == []
    assert not (workspace / "new").exists()


def test_overlapping_uploads_of_one_path_leave_one_whole_body(live_server, tmp_path):
    con = _client(live_server)
    headers = {"Authorization": f"Bearer {con.auth.bearer}"}
    bodies = [bytes([i]) * (3 * 1024 * 1024) for i in range(6)]
    start = threading.Barrier(len(bodies))
    statuses = []

    def upload(body: bytes) -> None:
        start.wait()
        response = requests.put(f"{live_server.url}/files/shared/same.bin", headers=headers, data=body)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=upload, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(bodies)
    stored = con.get_file("shared/same.bin").download(tmp_path / "same.bin").read_bytes()
    assert stored in bodies  # one upload whole, never a mix
    assert [str(f.path) for f in con.list_files()] == ["shared/same.bin"]
    assert list((_workspace(live_server, con) / ".uploads").iterdir()) == []


def test_capabilities_list_the_file_endpoints(live_server):
    endpoints = requests.get(f"{live_server.url}/").json()["endpoints"]
    assert {"path": "/files", "methods": ["GET"]} in endpoints
    assert {"path": "/files/{path}", "methods": ["DELETE", "GET", "PUT"]} in endpoints


def test_overlapping_uploads_never_exceed_the_quota_together(quota_server):
    headers = quota_server.auth_headers()
    start = threading.Barrier(4)
    statuses: dict[str, tuple[int, str | None]] = {}

    def upload(name: str) -> None:
        start.wait()
        response = requests.put(f"{quota_server.url}/files/{name}", headers=headers, data=os.urandom(45_000))
        statuses[name] = (response.status_code, None if response.ok else response.json()["code"])

    threads = [threading.Thread(target=upload, args=(f"part{i}.bin",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = requests.get(f"{quota_server.url}/files", headers=headers).json()["files"]
    assert sum(entry["size"] for entry in stored) <= 100_000
    assert sorted(entry["path"] for entry in stored) == sorted(n for n, (code, _) in statuses.items() if code == 200)
    assert 1 <= len(stored) <= 2  # 45 kB each in 100 kB: at most two fit; the refused ones said why
    assert all(status == (400, "StorageQuotaExceeded") for status in statuses.values() if status[0] != 200)


def test_downloads_answer_head_and_ranges(live_server):
    headers, url = live_server.auth_headers(), live_server.url
    content = os.urandom(100_000)
    requests.put(f"{url}/files/r/range.bin", data=content, headers=headers).raise_for_status()
    head = requests.head(f"{url}/files/r/range.bin", headers=headers)
    assert (head.status_code, int(head.headers["Content-Length"])) == (200, 100_000)
    assert head.headers["Accept-Ranges"] == "bytes"
    part = requests.get(f"{url}/files/r/range.bin", headers={**headers, "Range": "bytes=1000-1999"})
    assert (part.status_code, part.content) == (206, content[1000:2000])
    assert part.headers["Content-Range"] == "bytes 1000-1999/100000"
    beyond = requests.get(f"{url}/files/r/range.bin", headers={**headers, "Range": "bytes=200000-"})
    assert beyond.status_code == 416
