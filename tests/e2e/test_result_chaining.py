"""Chaining a job's results: the signed ``canonical`` results document, read without a token by pystac,
by the real openEO Python client's load_stac and by this backend's load_stac (issue 9, item 4)."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import openeo
import pystac
import pytest
import rasterio
import requests
import xarray as xr
from openeo.rest import OpenEoApiError

from backend.demo import DEMO_S2_COLLECTION
from tests.e2e.test_sync_processing import AREA
from tests.unit.test_job_assets import SCHEMA_DIR, _validator

pytestmark = [pytest.mark.usefixtures("job_runner"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]  # rioxarray on affine 3
QUIET = dict(max_poll_interval=0.5, print=lambda *_: None)


class FinishedJob:
    def __init__(self, job, result: Path, bands: list[str]):
        self.job, self.result, self.bands = job, result, bands
        self.job_id = job.job_id

    def canonical(self) -> str:
        (href,) = [link["href"] for link in self.job.get_results().get_metadata()["links"]
                   if link["rel"] == "canonical"]
        return href


def run(cube, directory: Path, bands: list[str]) -> FinishedJob:
    job = cube.execute_batch(out_format="GTiff", **QUIET)
    paths = job.get_results().download_files(directory)
    return FinishedJob(job, next(p for p in paths if p.name == "result.tif"), bands)


@pytest.fixture(scope="module")
def owner(live_server) -> openeo.Connection:
    return openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())


@pytest.fixture(scope="module")
def stranger(live_server) -> openeo.Connection:
    """Another user: a canonical URL must work for anyone who has it, and the unsigned URL for nobody else."""
    return openeo.connect(live_server.url).authenticate_basic(*live_server.new_user())


@pytest.fixture(scope="module")
def ndvi_job(owner, tmp_path_factory) -> FinishedJob:
    """A single-band result: the NDVI composite (a band-less cube: its band is named after the cube, NDVI)."""
    cube = owner.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=["2022-06-01", "2022-07-01"],
                                 bands=["B04", "B08"])
    return run(cube.ndvi(nir="B08", red="B04").reduce_dimension("t", "mean"), tmp_path_factory.mktemp("ndvi"),
               ["NDVI"])


@pytest.fixture(scope="module")
def bands_job(owner, tmp_path_factory) -> FinishedJob:
    """A two-band result (one date): one GeoTIFF holding B04 and B08."""
    cube = owner.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=["2022-06-01", "2022-06-03"],
                                 bands=["B04", "B08"])
    return run(cube, tmp_path_factory.mktemp("bands"), ["B04", "B08"])


def pixels(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def expiry(href: str) -> int:
    return int(parse_qs(urlsplit(href).query)["expires"][0])


def with_query(href: str, **changes) -> str:
    url = urlsplit(href)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    query.update(changes)
    return url._replace(query=urlencode({k: v for k, v in query.items() if v is not None})).geturl()


def assert_openeo_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"] and body["id"] and isinstance(body["links"], list)


# --- the canonical document --------------------------------------------------------------------


def test_results_link_a_signed_document_that_needs_no_token(ndvi_job):
    document = ndvi_job.job.get_results().get_metadata()
    (canonical,) = [link for link in document["links"] if link["rel"] == "canonical"]
    assert canonical["type"] == "application/json"
    assert urlsplit(canonical["href"]).path.endswith(f"/jobs/{ndvi_job.job_id}/results/collection.json")

    response = requests.get(canonical["href"])  # no Authorization header
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert requests.head(canonical["href"]).status_code == 200
    signed = response.json()
    assert signed["type"] == "Collection" and signed["id"] == ndvi_job.job_id
    links = {link["rel"]: link["href"] for link in signed["links"]}
    assert links["self"] == links["canonical"] == links["root"] == canonical["href"]
    assert "monitor" not in links and "openeo:usage" not in signed  # nothing that needs a token or is billing
    assert signed["summaries"]["eo:bands"] == [{"name": "NDVI"}]
    assert signed["item_assets"]["result.tif"]["eo:bands"] == [{"name": "NDVI"}]
    # same files as the authenticated document; every link expires with the canonical URL
    assert {name: {**a, "href": None} for name, a in signed["assets"].items()} == \
           {name: {**a, "href": None} for name, a in document["assets"].items()}
    hrefs = [a["href"] for a in signed["assets"].values()] + [l["href"] for l in signed["links"]]
    assert {expiry(href) for href in hrefs} == {expiry(canonical["href"])}

    items = [link for link in signed["links"] if link["rel"] == "item"]
    assert [link["title"] for link in items] == ["result.tif"]  # the quicklook is no item: it has no place
    item = requests.get(items[0]["href"]).json()
    assert item["collection"] == ndvi_job.job_id
    item_links = {link["rel"]: link["href"] for link in item["links"]}
    assert item_links["collection"] == item_links["root"] == item_links["parent"] == canonical["href"]
    assert item_links["self"] == items[0]["href"]
    download = requests.get(item["assets"]["result.tif"]["href"])
    assert download.status_code == 200 and download.content == ndvi_job.result.read_bytes()
    assert expiry(item["assets"]["result.tif"]["href"]) == expiry(canonical["href"])

    if SCHEMA_DIR.is_dir():  # offline STAC 1.0 schemas of ../shared/conformance-assets
        validate = _validator()
        validate(signed, "collection-spec/json-schema/collection.json")
        validate(item, "item-spec/json-schema/item.json")


def test_links_of_a_signed_document_never_outlive_it(live_server, ndvi_job):
    soon = int(time.time()) + 60
    href = live_server.services.result_urls.document_url(live_server.url, ndvi_job.job_id, expires=soon)
    signed = requests.get(href).json()
    item_href = next(link["href"] for link in signed["links"] if link["rel"] == "item")
    item = requests.get(item_href).json()
    hrefs = ([a["href"] for a in signed["assets"].values()] + [link["href"] for link in signed["links"]]
             + [a["href"] for a in item["assets"].values()] + [link["href"] for link in item["links"]])
    assert {expiry(h) for h in hrefs} == {soon}
    assert signed["expires"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon))


def test_pystac_reads_the_results_and_their_items_without_token(ndvi_job, bands_job):
    for finished in (ndvi_job, bands_job):
        collection = pystac.read_file(finished.canonical())  # pystac's own HTTP reader: no token
        assert isinstance(collection, pystac.Collection) and collection.id == finished.job_id
        (item,) = collection.get_items()
        assert item.id == "result.tif" and item.get_collection().id == finished.job_id
        assert [band["name"] for band in item.assets["result.tif"].extra_fields["eo:bands"]] == finished.bands
        # the file itself (rasterio's GDAL reader would hold the GIL against this in-process server)
        assert requests.get(item.assets["result.tif"].href).content == finished.result.read_bytes()


# --- load_stac --------------------------------------------------------------------------------


@pytest.fixture
def client_complaints(caplog, capfd):
    """Warnings and tracebacks the openEO client (or pystac under it) prints while the test runs."""
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def complaints() -> list[str]:
            logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records
                      if r.name.startswith(("openeo", "pystac")) and (r.levelno >= logging.WARNING or r.exc_info)]
            warned = [str(w.message) for w in caught if "openeo" in w.filename or "pystac" in w.filename]
            stderr = capfd.readouterr().err
            return logged + warned + (["traceback on stderr:\n" + stderr] if "Traceback" in stderr else [])

        yield complaints


def test_client_load_stac_of_canonical_url_gives_the_job_result(stranger, ndvi_job, bands_job, tmp_path,
                                                                client_complaints):
    for finished in (ndvi_job, bands_job):
        cube = stranger.load_stac(finished.canonical())  # another user: the signature, not a token, grants access
        assert cube.metadata.band_names == finished.bands
        assert client_complaints() == []  # the client read our documents without a warning or traceback
        cube.download(tmp_path / f"{finished.job_id}.tif", format="GTiff")
        np.testing.assert_array_equal(pixels(tmp_path / f"{finished.job_id}.tif"), pixels(finished.result))


def test_client_load_stac_of_a_signed_item_url_gives_the_job_result(stranger, ndvi_job, bands_job, tmp_path,
                                                                    client_complaints):
    """The client also reads the item's collection (its metadata has the bands): that link must be signed too."""
    for finished in (ndvi_job, bands_job):
        document = finished.job.get_results().get_metadata()
        (href,) = [link["href"] for link in document["links"]
                   if link["rel"] == "item" and link["title"] == "result.tif"]
        cube = stranger.load_stac(href)
        assert client_complaints() == []
        assert cube.metadata.band_names == finished.bands
        cube.download(tmp_path / f"{finished.job_id}.tif", format="GTiff")
        np.testing.assert_array_equal(pixels(tmp_path / f"{finished.job_id}.tif"), pixels(finished.result))


def test_client_load_stac_from_job_uses_the_canonical_link(owner, ndvi_job, tmp_path, client_complaints):
    cube = owner.load_stac_from_job(ndvi_job.job)
    url = cube.flat_graph()["loadstac1"]["arguments"]["url"]
    assert "/results/collection.json?" in url
    assert client_complaints() == []
    cube.download(tmp_path / "chained.tif", format="GTiff")
    np.testing.assert_array_equal(pixels(tmp_path / "chained.tif"), pixels(ndvi_job.result))


def test_load_stac_of_the_unsigned_results_url_reads_own_jobs_only(live_server, owner, stranger, ndvi_job, tmp_path):
    url = f"{live_server.url}/jobs/{ndvi_job.job_id}/results"  # the spec's name of results on the same backend
    owner.load_stac(url).download(tmp_path / "own.tif", format="GTiff")
    np.testing.assert_array_equal(pixels(tmp_path / "own.tif"), pixels(ndvi_job.result))
    with pytest.raises(OpenEoApiError) as failure:
        stranger.load_stac(url).download(tmp_path / "other.tif", format="GTiff")
    assert failure.value.http_status_code == 404 and failure.value.code == "JobNotFound"


# --- refused links ------------------------------------------------------------------------------


def test_tampered_expired_and_foreign_canonical_urls_are_refused(live_server, owner, ndvi_job, bands_job):
    canonical = ndvi_job.canonical()
    query = parse_qs(urlsplit(canonical).query)
    signature, expires = query["signature"][0], int(query["expires"][0])
    assert_openeo_error(requests.get(with_query(canonical, signature="0" * 64)), 403, "ResultLinkInvalid")
    assert_openeo_error(requests.get(with_query(canonical, expires=expires + 3600)), 403, "ResultLinkInvalid")
    assert_openeo_error(requests.get(with_query(canonical, signature=None)), 403, "ResultLinkInvalid")
    assert_openeo_error(requests.get(with_query(canonical, expires="soon")), 403, "ResultLinkInvalid")
    # this signature for another job (one of the same user, and one that does not exist)
    for job_id in (bands_job.job_id, "0" * 32):
        other = canonical.replace(ndvi_job.job_id, job_id)
        assert_openeo_error(requests.get(other), 403, "ResultLinkInvalid")
    # signatures of one kind are worthless for another: an item's for the document, the document's for files
    item_href = next(link["href"] for link in requests.get(canonical).json()["links"] if link["rel"] == "item")
    item_query = parse_qs(urlsplit(item_href).query)
    assert_openeo_error(requests.get(with_query(canonical, signature=item_query["signature"][0],
                                                expires=item_query["expires"][0])), 403, "ResultLinkInvalid")
    as_asset = canonical.replace("/results/collection.json", "/results/assets/result.tif")
    assert_openeo_error(requests.get(as_asset), 403, "ResultLinkInvalid")

    signer = live_server.services.result_urls
    expired = signer.document_url(live_server.url, ndvi_job.job_id, now=time.time() - signer.ttl - 10)
    assert_openeo_error(requests.get(expired), 410, "ResultLinkExpired")
    with pytest.raises(OpenEoApiError) as failure:  # load_stac passes the reason on
        owner.load_stac(expired).download(format="GTiff")
    assert failure.value.code == "ProcessParameterInvalid" and "ResultLinkExpired" in failure.value.message


def test_canonical_url_of_a_deleted_job_is_gone(owner, tmp_path):
    cube = owner.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=["2022-06-01", "2022-06-03"],
                                 bands=["B04"])
    finished = run(cube, tmp_path, ["B04"])
    canonical = finished.canonical()
    assert requests.get(canonical).status_code == 200
    finished.job.delete()
    assert_openeo_error(requests.get(canonical), 404, "JobNotFound")


# --- dates survive the round trip ----------------------------------------------------------------


@pytest.mark.parametrize("dates", [["2022-06-01", "2022-06-20"], ["2022-06-01", "2022-06-05"]],
                         ids=["several-dates", "one-date"])
def test_load_stac_gives_back_the_saved_cube_with_its_dates(owner, stranger, tmp_path, dates):
    """A GeoTIFF job result holding several dates (bands ``<date>/<band>``) or one (its date kept as a tag)
    read with load_stac is the cube the job saved: same dates on t, same bands, same values. The federation
    relies on it when it runs part of a graph as a job on one backend and reads it on another."""
    cube = owner.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=dates, bands=["B04", "B08"])
    cube.download(tmp_path / "direct.nc", format="netCDF")
    job = cube.execute_batch(out_format="GTiff", **QUIET)
    (canonical,) = [link["href"] for link in job.get_results().get_metadata()["links"] if link["rel"] == "canonical"]
    chained = stranger.load_stac(canonical, spatial_extent=AREA, temporal_extent=dates, bands=["B04", "B08"])
    chained.download(tmp_path / "chained.nc", format="netCDF")
    whole = stranger.load_stac(canonical)  # no selection: all dates and bands
    whole.download(tmp_path / "whole.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "direct.nc") as direct, xr.open_dataset(tmp_path / "chained.nc") as chained_ds, \
            xr.open_dataset(tmp_path / "whole.nc") as whole_ds:
        assert [str(t)[:10] for t in direct["t"].values] == \
            (["2022-06-02"] if dates[1] == "2022-06-05" else ["2022-06-02", "2022-06-12", "2022-06-17"])
        for result in (chained_ds, whole_ds):
            assert list(result["t"].values) == list(direct["t"].values)
            for band in ("B04", "B08"):
                np.testing.assert_array_equal(result[band].values, direct[band].values)
        assert np.isfinite(direct["B08"].values).mean() > 0.5  # real pixels, not an all-NaN cube


def test_load_stac_of_a_netcdf_result_is_refused_with_what_to_change(owner, tmp_path):
    """GDAL opens a multi-variable netCDF as subdatasets without bands: say so instead of a 500 at read time."""
    cube = owner.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=["2022-06-01", "2022-06-03"],
                                 bands=["B04", "B08"])
    job = cube.execute_batch(out_format="netCDF", **QUIET)
    with pytest.raises(OpenEoApiError) as caught:
        owner.load_stac_from_job(job).download(tmp_path / "chained.nc", format="netCDF")
    assert (caught.value.http_status_code, caught.value.code) == (400, "ProcessParameterInvalid")
    assert "asset 'result.nc' is application/x-netcdf" in caught.value.message
    assert "save the job's result as GTiff" in caught.value.message
