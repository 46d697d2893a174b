"""Slow, obviously-correct twins of the EER kernels (pure Python bit arithmetic)."""

from __future__ import annotations

import numpy as np


def eer_decode_naive(strip: bytes, *, sensor_shape, skip_bits, horz_bits, vert_bits, upsampling=1,
                     max_run_has_subpixel=False):
    """Decode one strip with Python integers; returns (counts on the rendered grid, complete flag)."""
    ny, nx = sensor_shape
    level = {1: 0, 2: 1, 4: 2}[upsampling]
    out = np.zeros((ny << level, nx << level), dtype=np.int64)
    bits = int.from_bytes(strip, "little")
    total = len(strip) * 8
    pos = 0
    pixel = 0
    mask = (1 << skip_bits) - 1
    while pos + skip_bits <= total:
        run = (bits >> pos) & mask
        pixel += run
        if pixel >= ny * nx:
            return out, pixel == ny * nx
        if run == mask:
            pos += skip_bits + (horz_bits + vert_bits if max_run_has_subpixel else 0)
            continue
        if pos + skip_bits + horz_bits + vert_bits > total:
            break
        h = ((bits >> (pos + skip_bits)) & ((1 << horz_bits) - 1)) ^ horz_bits
        v = ((bits >> (pos + skip_bits + horz_bits)) & ((1 << vert_bits) - 1)) ^ vert_bits
        y, x = divmod(pixel, nx)
        out[(y << level) + (v >> (vert_bits - level)), (x << level) + (h >> (horz_bits - level))] += 1
        pixel += 1
        pos += skip_bits + horz_bits + vert_bits
    return out, False


def eer_encode_naive(pixels, hsub, vsub, *, n_pixels, skip_bits, horz_bits, vert_bits,
                     max_run_has_subpixel=False) -> bytes:
    """Encode events as a bit string built character by character."""
    out = []

    def put(value, n):
        out.extend("1" if (value >> k) & 1 else "0" for k in range(n))

    mask = (1 << skip_bits) - 1
    start = 0
    for p, h, v in zip(pixels, hsub, vsub):
        run = int(p) - start
        while run >= mask:
            put(mask, skip_bits)
            if max_run_has_subpixel:
                put(0, horz_bits + vert_bits)
            run -= mask
        put(run, skip_bits)
        put(int(h) ^ horz_bits, horz_bits)
        put(int(v) ^ vert_bits, vert_bits)
        start = int(p) + 1
    run = n_pixels - start
    while run >= mask:
        put(mask, skip_bits)
        if max_run_has_subpixel:
            put(0, horz_bits + vert_bits)
        run -= mask
    put(run, skip_bits)
    value = sum(1 << i for i, c in enumerate(out) if c == "1")
    return value.to_bytes((len(out) + 7) // 8, "little")


def random_events(rng, sensor_shape, density, *, horz_bits=2, vert_bits=2):
    """Sorted unique pixel indices with random sub-pixel values."""
    n = sensor_shape[0] * sensor_shape[1]
    pix = np.flatnonzero(rng.random(n) < density)
    return pix, rng.integers(0, 1 << horz_bits, pix.size), rng.integers(0, 1 << vert_bits, pix.size)


def render_truth(pix, hsub, vsub, *, sensor_shape, horz_bits=2, vert_bits=2, upsampling=1):
    """Ground-truth rendering of events (independent of any bit stream)."""
    level = {1: 0, 2: 1, 4: 2}[upsampling]
    ny, nx = sensor_shape
    out = np.zeros((ny << level, nx << level), dtype=np.int64)
    y, x = np.divmod(np.asarray(pix), nx)
    np.add.at(out, ((y << level) + (np.asarray(vsub) >> (vert_bits - level)),
                    (x << level) + (np.asarray(hsub) >> (horz_bits - level))), 1)
    return out
