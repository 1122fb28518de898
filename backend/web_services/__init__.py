"""Secondary web services: XYZ map tiles rendered from a stored process graph.

    tile_bounds(z, x, y)          the tile's web Mercator (EPSG:3857) bounds and pixel size (tiles.py)
    render_tile(parts, service, z, x, y, root)   PNG bytes, charged to the owner (render.py)
    TileCache                     rendered tiles, bounded LRU per process (cache.py)
"""
