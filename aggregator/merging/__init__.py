"""Pure merges of the backends' JSON documents into the federation's answers (no Flask, no HTTP).

    collections.py    GET /collections, GET /collections/{id}; CollectionIndex for routing
    processes.py      GET /processes; each backend's process ids for routing
    file_formats.py   GET /file_formats
    resource_maps.py  GET /udf_runtimes, GET /service_types
    cube.py, extents.py, links.py, common.py: the parts they share

Every merge returns its conflicts (``Conflict.to_dict()``) for the operator endpoint.
"""
