"""Embedded demo data: a deterministic, SYNTHETIC static STAC catalog generated on first start.

    from backend.demo import ensure_demo_catalog, DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION
    catalog_json = ensure_demo_catalog(data_dir / "demo-catalog")

Collections (DEMO_COLLECTIONS): SENTINEL2_L2A_DEMO (Sentinel-2 L2A-like, 2 tiles in EPSG:32632/
32633, 10 dates in 2022), SENTINEL1_GRD_DEMO (Sentinel-1 GRD-like VV/VH backscatter, tile 1, 13
dates in 2022) and DEM_DEMO (elevation). See spec.py for grids/dates and layout.py for what is where.
"""

from __future__ import annotations

from pathlib import Path

from backend.demo.spec import DEMO_COLLECTIONS, DEMO_DEM_COLLECTION, DEMO_S1_COLLECTION, DEMO_S2_COLLECTION

__all__ = ["DEMO_COLLECTIONS", "DEMO_DEM_COLLECTION", "DEMO_S1_COLLECTION", "DEMO_S2_COLLECTION",
           "ensure_demo_catalog"]


def ensure_demo_catalog(dest: Path) -> Path:
    """Return dest/catalog.json, generating the catalog first if missing or outdated.

    Idempotent and fast (one small file read) when the current version is already there;
    otherwise generation takes ~10-20 s and is written atomically (temp dir + rename).
    """
    from backend.demo.ensure import ensure_built, generator_fingerprint

    def build(tmp: Path) -> None:
        # Imported lazily: the generator pulls in rasterio/pystac, not needed on the fast path.
        from backend.demo.build import build_catalog

        build_catalog(tmp)

    return ensure_built(Path(dest), generator_fingerprint(), build)
