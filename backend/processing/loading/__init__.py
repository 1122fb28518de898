"""Loading collections into data cubes (the data part of openEO ``load_collection``), no Flask here.

    cube = load_collection_cube(ref, metadata, spatial_extent, temporal_extent, bands, properties)
    estimate = estimate_load(ref, metadata, spatial_extent, temporal_extent, bands, properties)

Modules: extents (bbox/interval normalisation, densified reprojection), bands (name resolution),
item_search (static catalog / STAC API items), grid (output grid rules), odc_load (odc-stac load
and decoding), cube (the two entry points and "no data" errors).
"""

from backend.processing.loading.cube import LoadPlan, estimate_load, load_collection_cube, plan_load
from backend.processing.loading.odc_load import DEFAULT_CHUNK_SIZE, load_chunk_size

__all__ = ["DEFAULT_CHUNK_SIZE", "LoadPlan", "estimate_load", "load_chunk_size", "load_collection_cube", "plan_load"]
