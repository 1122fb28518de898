"""load_stac: a STAC Item, a static STAC Collection/Catalog or a STAC API collection as a data cube.

Replaces openeo-processes-dask's load_stac (which validates against JSON schemas downloaded from
the internet and reads any URL it is given). Every document and every asset URL goes through
backend.processing.fetching (host allow-list, public addresses only, size limit, timeout), the asset
pixels too (GDAL reads them through fetching.ranges: the checked addresses only, same-host redirects;
loading/guarded_reads.py); nothing is validated against remote schemas.

What the URL may be:

* a STAC Item: that item;
* a STAC Collection whose root (``rel="root"``) is a STAC API with item search: items by item search
  (pystac-client, bbox and datetime sent to the API; the results checked again here);
* any other Collection or a Catalog: its items through ``item`` and ``child`` links (at most
  ``MAX_DEPTH`` levels), or its ``items`` link (an OGC API Features page chain) when it has none;
  a batch job's signed results document (``canonical`` link) is one of these;
* this backend's own ``/jobs/{id}/results`` (unsigned): the caller's job, read through its signed URL.

A GeoTIFF of ours holding several dates (bands ``<date>/<band>``) comes back as the cube it was made from
(``t`` x ``bands``: backend/processing/loading/dated_bands.py).

The cube follows load_collection exactly (backend/processing/loading/from_items.py): float32, nodata
as NaN, raster:bands scale/offset, dimensions t, bands, y, x on one grid. Bands are named by band
name, common name or asset key.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin

from apicore import errors
from backend.processing.fetching import Fetcher, policy_for
from backend.processing.limits import check_cube_size
from backend.processing.processes.load_collection import _predicate

PROCESS = "load_stac"
MAX_DOCUMENTS = 10_000  # STAC documents (items, catalogs, search pages) one load_stac may read
MAX_DEPTH = 8  # nested child catalogs followed
FETCH_THREADS = 8
ITEM_SEARCH_HINTS = ("item-search", "/search")


def load_stac(url: str, spatial_extent: dict | None = None, temporal_extent: list | None = None,
              bands: list[str] | None = None, properties: dict | None = None, *, run_context) -> Any:
    from backend.processing.loading.dated_bands import dated_layout, load_dated_cube
    from backend.processing.loading.from_items import load_items_cube

    fetcher = Fetcher(policy_for(run_context), PROCESS, "url", max_documents=MAX_DOCUMENTS)
    filters = {name: _predicate(callback) for name, callback in (properties or {}).items()} \
        if isinstance(properties, dict) else properties
    try:
        ref, metadata = open_stac(own_job_results(url, run_context), fetcher)
        max_values = getattr(run_context, "max_pixels", None)
        layout = dated_layout(metadata)  # our multi-date GeoTIFF result: restacked along t
        load = load_dated_cube if layout else load_items_cube
        record = getattr(run_context, "record_items", None)
        cube = load(ref, metadata, *([layout] if layout else []), spatial_extent, temporal_extent, bands,
                    filters or None, check_href=fetcher.check_href, read_timeout=fetcher.policy.timeout,
                    max_values=max_values,
                    on_items=(lambda items: record(url.split("?")[0], items)) if record is not None else None)
    except errors.ProcessParameterInvalid as exc:
        if exc.fields.get("process") == "load_collection":  # the shared loading code names its own process
            raise errors.ProcessParameterInvalid(process=PROCESS, parameter=exc.fields.get("parameter"),
                                                 reason=exc.fields.get("reason")) from None
        raise
    check_cube_size(cube, getattr(run_context, "max_pixels", None), PROCESS)
    if hasattr(run_context, "input_values"):
        run_context.input_values += int(cube.size)
    return cube


def own_job_results(url: str, run_context) -> str:
    """This backend's ``/jobs/{id}/results`` (how the load_stac spec names results on the same backend)
    → the signed URL of that document, when the job is the caller's; other URLs are returned as they are.
    The document itself needs a token, which a process run does not have."""
    root = (getattr(run_context, "api_root", "") or "").rstrip("/")
    services, user_id = getattr(run_context, "services", None), getattr(run_context, "user_id", None)
    if not root or services is None or not user_id or not isinstance(url, str):
        return url
    match = re.fullmatch(re.escape(root) + r"/+jobs/([^/?#]+)/results/?", url.split("?")[0].split("#")[0])
    if match is None:
        return url
    job = services.jobs.get(user_id, match[1])  # another user's job: JobNotFound, as for the API
    if job.status != "finished":
        raise errors.JobNotFinished(f"load_stac of the results of job {match[1]}: the job is '{job.status}'; "
                                    "its results can be loaded once it is 'finished'.")
    return services.result_urls.document_url(root, match[1])


def open_stac(url: str, fetcher: Fetcher):
    """(ItemsRef, collection-like metadata) for a STAC URL; reads no pixels."""
    from backend.processing.loading.from_items import ItemsRef, StaticItems, metadata_for

    document = fetcher.fetch_json(url)
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "Feature":
        item = _item(document, url, fetcher)
        return ItemsRef(url, item.id, StaticItems([item])), metadata_for(None, [item])
    if kind not in ("Collection", "Catalog"):
        raise fetcher.refuse(f"{url} is not a STAC Item, Collection or Catalog (type: {kind!r})")
    if kind == "Collection":
        api_root = _search_api_root(document, url, fetcher)
        if api_root is not None:
            return _api_collection(document, url, api_root, fetcher)
    items = _static_items(document, url, fetcher)
    collection = document if kind == "Collection" else None
    return ItemsRef(url, str(document.get("id")), StaticItems(items)), metadata_for(collection, items)


# --- static STAC ---------------------------------------------------------------------------------


def _item(document: Any, href: str, fetcher: Fetcher):
    import pystac

    if not isinstance(document, dict) or document.get("type") != "Feature":
        raise fetcher.refuse(f"{href} is linked as a STAC item but is not one")
    try:
        return pystac.Item.from_dict(document, href=href, preserve_dict=False)
    except Exception as exc:
        raise fetcher.refuse(f"{href} is not a valid STAC item ({type(exc).__name__}: {exc})") from None


def _links(document: dict, base: str, rel: str) -> list[str]:
    return [urljoin(base, link["href"]) for link in document.get("links") or []
            if isinstance(link, dict) and link.get("rel") == rel and isinstance(link.get("href"), str)]


def _static_items(document: dict, url: str, fetcher: Fetcher) -> list:
    seen = {url}
    items = []
    level = [(document, url)]
    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="load-stac") as pool:
        for depth in range(MAX_DEPTH + 1):
            item_hrefs, child_hrefs = [], []
            for doc, base in level:
                item_hrefs += [h for h in _links(doc, base, "item") if h not in seen]
                child_hrefs += [h for h in _links(doc, base, "child") if h not in seen]
                if not _links(doc, base, "item") and not _links(doc, base, "child"):
                    items += _feature_pages(doc, base, fetcher)
                seen.update(item_hrefs + child_hrefs)
            items += list(pool.map(lambda h: _item(fetcher.fetch_json(h), h, fetcher), item_hrefs))
            if not child_hrefs or depth == MAX_DEPTH:
                break
            level = list(zip(pool.map(fetcher.fetch_json, child_hrefs), child_hrefs))
            level = [(doc, href) for doc, href in level if isinstance(doc, dict)]
    return items


def _feature_pages(document: dict, base: str, fetcher: Fetcher) -> list:
    """Items of an OGC API Features ``items`` link (FeatureCollection pages with ``next`` links)."""
    hrefs = _links(document, base, "items")
    items, seen = [], set()
    href = hrefs[0] if hrefs else None
    while href and href not in seen:
        seen.add(href)
        page = fetcher.fetch_json(href)
        if not isinstance(page, dict) or page.get("type") != "FeatureCollection":
            raise fetcher.refuse(f"{href} (the items link) is not a GeoJSON FeatureCollection")
        for feature in page.get("features") or []:
            self_links = _links(feature, href, "self") if isinstance(feature, dict) else []
            items.append(_item(feature, self_links[0] if self_links else href, fetcher))
        nexts = _links(page, href, "next")
        href = nexts[0] if nexts else None
    return items


# --- STAC API ------------------------------------------------------------------------------------


def _search_api_root(collection: dict, url: str, fetcher: Fetcher) -> str | None:
    """The collection's root if that root is a STAC API with item search, else None."""
    roots = _links(collection, url, "root")
    if not roots or roots[0].rstrip("/") == url.rstrip("/"):
        return None
    has_links = bool(_links(collection, url, "item") or _links(collection, url, "child"))
    try:
        landing = fetcher.fetch_json(roots[0])
    except errors.OpenEOError:
        if has_links:  # a static collection with an unreadable root: its item links suffice
            return None
        raise
    if not isinstance(landing, dict):
        return None
    conforms = " ".join(str(c) for c in landing.get("conformsTo") or [])
    if "item-search" in conforms or _links(landing, roots[0], "search"):
        return roots[0]
    return None


def _api_collection(collection: dict, url: str, api_root: str, fetcher: Fetcher):
    import pystac_client

    from backend.processing.fetching import GuardedStacApiIO
    from backend.processing.loading.from_items import ApiItems, ItemsRef, has_band_metadata, metadata_for

    try:
        client = pystac_client.Client.open(api_root, stac_io=GuardedStacApiIO(fetcher))
    except errors.OpenEOError:
        raise
    except Exception as exc:
        raise fetcher.refuse(f"the STAC API at {api_root} cannot be used ({type(exc).__name__}: {exc})") from None
    ref = ItemsRef(url, str(collection.get("id")), ApiItems(client))
    sample = []
    if not has_band_metadata(collection):
        sample = list(client.search(collections=[ref.stac_id], max_items=1, limit=1).items())
    return ref, metadata_for(collection, sample)
