"""Seeded, smooth 2-D noise evaluated at arbitrary pixel-centre coordinates.

Coordinates are in 10 m tile-pixel units, so the same field can be sampled on the 10 m S2 grid
and the 30 m DEM grid and agree. Only element-wise numpy is used (no BLAS), which keeps the
output bit-identical between runs.
"""

from __future__ import annotations

import numpy as np


def rng(*key: int) -> np.random.Generator:
    """A generator fixed by a tuple of ints (tile seed, purpose, date...)."""
    return np.random.default_rng(list(key))


def _corners(pos: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    p = pos / cell
    i0 = np.floor(p).astype(np.intp)
    f = p - i0
    f = f * f * (3.0 - 2.0 * f)  # smoothstep: no visible lattice creases
    return i0, f.astype(np.float32)


def value_noise(key: tuple[int, ...], rows: np.ndarray, cols: np.ndarray, cell: float) -> np.ndarray:
    """Noise on the grid rows x cols (1-D coordinate vectors), roughly N(0, 0.6) per value.

    `cell` is the lattice spacing in 10 m units: the feature size of the noise.
    """
    ri, rf = _corners(np.asarray(rows, dtype=np.float64), cell)
    ci, cf = _corners(np.asarray(cols, dtype=np.float64), cell)
    lattice = rng(*key).standard_normal((int(ri.max()) + 2, int(ci.max()) + 2)).astype(np.float32)
    # Separable: interpolate along cols on the few lattice rows, then gather whole rows.
    across = lattice[:, ci] * (1 - cf) + lattice[:, ci + 1] * cf
    rf2 = rf[:, None]
    return across[ri] * (1 - rf2) + across[ri + 1] * rf2


def fractal_noise(key: tuple[int, ...], rows: np.ndarray, cols: np.ndarray, cell: float,
                  octaves: int = 3) -> np.ndarray:
    """Sum of value noise octaves (halving cell and amplitude), for natural-looking edges."""
    out = np.zeros((len(rows), len(cols)), dtype=np.float32)
    amp = 1.0
    for octave in range(octaves):
        out += amp * value_noise(key + (octave,), rows, cols, cell / 2**octave)
        amp *= 0.5
    return out


def pixel_centres(n: int, res: int = 10) -> np.ndarray:
    """Centres of n pixels of size `res` metres, expressed in 10 m units."""
    return (np.arange(n, dtype=np.float64) + 0.5) * (res / 10.0)
