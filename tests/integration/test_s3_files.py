"""The file workspace in S3 (``files_url``): a real S3 server (moto's), the real openeo client, and
load_uploaded_files reading from it."""

from __future__ import annotations

import os

import numpy as np
import openeo
import pytest
import rasterio
from openeo.rest import OpenEoApiError

from backend.app import create_app
from backend.settings import load_settings
from tests.api.test_load_uploaded_files import _band_difference, _geotiff, _load, _save
from tests.conftest import LiveServer
from tests.support.s3_server import serve_s3

pytestmark = pytest.mark.slow
BUCKET, PREFIX = "workspaces", "openeo/files"


@pytest.fixture(scope="module")
def s3_backend(tmp_path_factory):
    with serve_s3() as s3:
        s3.client.create_bucket(Bucket=BUCKET)
        settings = load_settings(data_dir=tmp_path_factory.mktemp("s3-files"), demo_catalog=False,
                                 files_url=f"s3://{BUCKET}/{PREFIX}", files_storage_options=s3.options,
                                 files_quota_bytes=5_000_000)
        server = LiveServer(create_app(settings))
        yield server, s3
        server.stop()


def test_round_trip_quota_and_isolation_in_s3(s3_backend, tmp_path):
    server, s3 = s3_backend
    con = openeo.connect(server.url).authenticate_basic(*server.new_user())
    user_id = con.describe_account()["user_id"]
    contents = {"a.txt": b"alpha", "deep/folder/b.bin": os.urandom(3_000_000)}
    for target, content in contents.items():
        (tmp_path / "src").write_bytes(content)
        assert con.upload_file(tmp_path / "src", target=target).metadata["size"] == len(content)
    assert s3.keys(BUCKET, f"{PREFIX}/{user_id}/") == [f"{PREFIX}/{user_id}/a.txt",
                                                        f"{PREFIX}/{user_id}/deep/folder/b.bin"]
    listed = con.list_files()
    assert [(str(f.path), f.metadata["size"]) for f in listed] == sorted((p, len(c)) for p, c in contents.items())
    assert all(f.metadata["modified"].endswith("Z") for f in listed)
    for target, content in contents.items():
        assert con.get_file(target).download(tmp_path / "down").read_bytes() == content

    (tmp_path / "big").write_bytes(os.urandom(2_500_000))  # 3 MB stored + 2.5 MB > 5 MB
    with pytest.raises(OpenEoApiError) as caught:
        con.upload_file(tmp_path / "big", target="big.bin")
    assert (caught.value.http_status_code, caught.value.code) == (400, "StorageQuotaExceeded")
    assert f"{PREFIX}/{user_id}/big.bin" not in s3.keys(BUCKET, PREFIX)
    for target, code in (("deep/folder", "FileOperationUnsupported"), ("a.txt/c.txt", "FilePathInvalid")):
        with pytest.raises(OpenEoApiError) as caught:
            con.upload_file(tmp_path / "src", target=target)
        assert caught.value.code == code

    other = openeo.connect(server.url).authenticate_basic(*server.new_user())
    assert list(other.list_files()) == []
    with pytest.raises(OpenEoApiError) as caught:
        other.get_file("a.txt").download(tmp_path / "stolen")
    assert (caught.value.http_status_code, caught.value.code) == (404, "FileNotFound")

    con.get_file("deep/folder/b.bin").delete()
    con.get_file("a.txt").delete()
    assert list(con.list_files()) == [] and s3.keys(BUCKET, f"{PREFIX}/{user_id}/") == []


def test_load_uploaded_files_reads_from_s3(s3_backend, tmp_path):
    server, _ = s3_backend
    con = openeo.connect(server.url).authenticate_basic(*server.new_user())
    data = (np.arange(2 * 20 * 30, dtype="uint16").reshape(2, 20, 30) % 3000) + 1
    _geotiff(tmp_path / "scene.tif", data)
    con.upload_file(tmp_path / "scene.tif", target="in/scene.tif")
    graph = {"load": _load("in/scene.tif", "GTiff"), "diff": _band_difference("load"), "save": _save("diff")}
    for version in (1, 2):  # a replaced file is read anew
        con.download(graph, tmp_path / "diff.tif")
        with rasterio.open(tmp_path / "diff.tif") as result:
            np.testing.assert_array_equal(result.read(1), data[1].astype("float32") - data[0].astype("float32"))
        data = data[::-1].copy()
        _geotiff(tmp_path / "scene.tif", data)
        con.upload_file(tmp_path / "scene.tif", target="in/scene.tif")
