"""XYZ tile geometry (web Mercator, EPSG:3857, 256 px tiles) and the image of a tile's data as PNG."""

from __future__ import annotations

import struct
import zlib

import numpy as np

TILE_SIZE = 256
HALF_WORLD = 20037508.342789244  # metres from the centre to the edge of the web Mercator square
MAX_ZOOM = 24


def tile_bounds(z: int, x: int, y: int) -> tuple[tuple[float, float, float, float], float]:
    """((west, south, east, north) in EPSG:3857, pixel size in metres) of tile z/x/y (y counted from the north)."""
    span = 2 * HALF_WORLD / 2 ** z
    west, north = -HALF_WORLD + x * span, HALF_WORLD - y * span
    return (west, north - span, west + span, north), span / TILE_SIZE


def valid_tile(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z


def to_rgba(bands: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(1 or 3, H, W) floats → (H, W, 4) uint8: one band as grey, three as RGB, each stretched linearly
    from ``value_range`` to 0..255; a pixel with NaN in any band is transparent."""
    low, high = value_range
    scale = 255.0 / (high - low) if high > low else 0.0
    with np.errstate(invalid="ignore"):
        stretched = np.clip((bands - low) * scale, 0, 255)
    missing = np.isnan(bands).any(axis=0)
    channels = np.nan_to_num(stretched, nan=0.0).round().astype(np.uint8)
    if channels.shape[0] == 1:
        channels = np.repeat(channels, 3, axis=0)
    alpha = np.where(missing, 0, 255).astype(np.uint8)
    return np.dstack([channels[0], channels[1], channels[2], alpha])


def encode_png(rgba: np.ndarray) -> bytes:
    """(H, W, 4) uint8 as an 8-bit RGBA PNG (no imaging library needed for this one format)."""
    height, width, _ = rgba.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgba.reshape(height, width * 4)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def transparent_tile() -> bytes:
    return encode_png(np.zeros((TILE_SIZE, TILE_SIZE, 4), np.uint8))
