"""Benchmark movie I/O: EER decode (ours vs imagecodecs), K3 LZW TIFF decode, MRC int8 read.

Run from the repository root::

    python benchmarks/bench_io.py [--size ci|realistic] [--repeats 3] [--eer-frames 1000] [--frames 40]
                                  [--cache /tmp/semc_bench_io]

Prints a markdown table (machine, versions, command, figures). Synthetic inputs
are written once into the cache folder and reused:

- EER: 4096², 1 000 detector frames at 0.0182 e/px/frame (Falcon 4, EMPIAR-10500
  dose; algorithms.md §5), 65001, written by ``semc.base.io.write_eer``; grouped
  into 40 fractions of 25 frames and rendered at 4K.
- K3 TIFF: 40 × 4092×5760 uint8 Poisson(1) frames, LZW (algorithms.md §9).
- MRC: 40 × 4096² int8 Poisson(1) frames.

``--size ci`` uses 200 EER frames and 10 TIFF/MRC frames (same frame sizes); ``realistic`` the above.

Each figure is the median of ``--repeats`` runs after one warm-up (files in the
page cache). The two CPU cores of the CI box are shared, so timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import imagecodecs
import numba
import numpy as np
import tifffile
from sizes import size_apply, size_argument

from semc.base.io import FrameGrouping, open_movie, write_eer, write_mrc, write_tiff_movie
from semc.base.io.eer_codec import STRIP_PAD_BYTES, EerCoding, eer_decode_frame

SIZE_DEFAULTS = {"ci": {"repeats": 3, "eer_frames": 200, "frames": 10},
                 "realistic": {"repeats": 3, "eer_frames": 1000, "frames": 40}}

EER_SHAPE = (4096, 4096)
EER_DOSE_PER_PIXEL = 0.0182


def _eer_frames(n_frames: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    n_pixels = EER_SHAPE[0] * EER_SHAPE[1]
    for _ in range(n_frames):
        count = rng.binomial(n_pixels, EER_DOSE_PER_PIXEL)
        pix = np.unique(rng.integers(0, n_pixels, int(count * 1.01)))
        y, x = np.divmod(pix, EER_SHAPE[1])
        sub = rng.integers(0, 16, pix.size)
        yield (x << 2) + (sub & 3), (y << 2) + (sub >> 2)


def _ensure_inputs(cache: str, eer_frames: int, frames: int = 40) -> dict[str, str]:
    os.makedirs(cache, exist_ok=True)
    paths = {"eer": os.path.join(cache, f"falcon4_{eer_frames}.eer"),
             "tiff": os.path.join(cache, f"k3_{frames}_lzw.tif"),
             "mrc": os.path.join(cache, f"int8_4k_{frames}.mrc")}
    rng = np.random.default_rng(2)
    if not os.path.exists(paths["eer"]):
        write_eer(paths["eer"], _eer_frames(eer_frames), pixel_size_angstrom=0.725)
    if not os.path.exists(paths["tiff"]):
        write_tiff_movie(paths["tiff"], (rng.poisson(1.0, (4092, 5760)).astype(np.uint8) for _ in range(frames)),
                         compression="lzw", bigtiff=False)
    if not os.path.exists(paths["mrc"]):
        write_mrc(paths["mrc"], rng.poisson(1.0, (frames, 4096, 4096)).astype(np.int8), pixel_size_angstrom=0.725)
    return paths


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up: page cache, numba compilation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _ours_eer(path: str, grouping: FrameGrouping) -> None:
    with open_movie(path) as movie:
        for _ in movie.iter_groups(grouping):
            pass


def _imagecodecs_eer(path: str, grouping: FrameGrouping, threads: int) -> None:
    """Our pipeline with imagecodecs' decoder in place of ours.

    Same structure as ``EerMovie.iter_groups``: strips read with ``preadv`` into a reused
    buffer, one reused accumulator per thread (uint8 for groups <= 255 frames, which
    imagecodecs also adds into), a float32 copy per group, the same thread count.
    """
    with tifffile.TiffFile(path) as tif:
        strips = [(p.dataoffsets[0], p.databytecounts[0]) for p in tif.pages]
    fd = os.open(path, os.O_RDONLY)
    local = threading.local()

    def group(bounds):
        dtype = np.uint8 if bounds[1] - bounds[0] <= 255 else np.uint16
        if getattr(local, "acc", None) is None or local.acc.dtype != dtype:
            local.acc = np.zeros(EER_SHAPE, dtype)
            local.buf = np.zeros(1 << 21, np.uint8)
        else:
            local.acc.fill(0)
        for i in range(*bounds):
            offset, count = strips[i]
            os.preadv(fd, [memoryview(local.buf)[:count]], offset)
            imagecodecs.eer_decode(local.buf[:count], EER_SHAPE, 7, 2, 2, out=local.acc)
        return local.acc.astype(np.float32)

    try:
        if threads == 1:
            for b in grouping.bounds():
                group(b)
        else:
            with ThreadPoolExecutor(threads) as pool:
                for _ in pool.map(group, grouping.bounds()):
                    pass
    finally:
        os.close(fd)


def _decoder_only(path: str, n_frames: int = 100):
    """The two decoders alone: strips in memory, both adding 100 frames into one uint8 sum, one thread."""
    with tifffile.TiffFile(path) as tif:
        pages = [tif.pages[i] for i in range(n_frames)]
        tif.filehandle.seek(0)
        raw = []
        for page in pages:
            tif.filehandle.seek(page.dataoffsets[0])
            raw.append(tif.filehandle.read(page.databytecounts[0]))
    padded = []
    for strip in raw:
        buf = np.zeros(len(strip) + STRIP_PAD_BYTES, np.uint8)
        buf[: len(strip)] = np.frombuffer(strip, np.uint8)
        padded.append((buf, len(strip)))
    acc = np.zeros(EER_SHAPE, np.uint8)
    coding = EerCoding(7, 2, 2)

    def ours():
        acc.fill(0)
        for buf, n in padded:
            eer_decode_frame(buf, n_bytes=n, sensor_shape=EER_SHAPE, coding=coding, out=acc)

    def theirs():
        acc.fill(0)
        for strip in raw:
            imagecodecs.eer_decode(strip, EER_SHAPE, 7, 2, 2, out=acc)

    return ours, theirs  # callables, timed by the caller


def _tiff_decode(path: str) -> None:
    with open_movie(path) as movie:
        movie.read_frames()


def _mrc_read(path: str) -> None:
    with open_movie(path) as movie:
        movie.read_frames()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_argument(parser)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--eer-frames", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None, help="frames of the K3 TIFF and the MRC")
    parser.add_argument("--cache", default="/tmp/semc_bench_io")
    args = size_apply(parser.parse_args(argv), SIZE_DEFAULTS)
    paths = _ensure_inputs(args.cache, args.eer_frames, args.frames)
    n = args.eer_frames
    grouping = FrameGrouping.fixed(n, n // 40)
    rows = []
    ours_fn, theirs_fn = _decoder_only(paths["eer"])
    t_ours, t_theirs = _median_s(ours_fn, args.repeats), _median_s(theirs_fn, args.repeats)
    rows.append(("EER decoder alone, 100 4K frames in memory summed into one uint8 image, 1 thread",
                 (f"ours {100 / t_ours:.0f} frames/s; imagecodecs {100 / t_theirs:.0f} frames/s; "
                 f"ratio ours/imagecodecs {t_theirs / t_ours:.2f}")))
    for threads in (1, 2):
        os.environ["SEMC_IO_THREADS"] = str(threads)
        ours = _median_s(lambda: _ours_eer(paths["eer"], grouping), args.repeats)
        ref = _median_s(lambda t=threads: _imagecodecs_eer(paths["eer"], grouping, t), args.repeats)
        used = grouping.n_frames_used
        rows.append((f"EER 4096² {n} frames → 40 fractions (read + decode + float32 sums), 4K, {threads} thread(s)",
                     (f"ours {used / ours:.0f} frames/s ({ours:.2f} s); imagecodecs {used / ref:.0f} frames/s "
                     f"({ref:.2f} s); ratio ours/imagecodecs {ref / ours:.2f}")))
    for threads in (1, 2):
        os.environ["SEMC_IO_THREADS"] = str(threads)
        t = _median_s(lambda: _tiff_decode(paths["tiff"]), args.repeats)
        rows.append((f"K3 5760×4092×{args.frames} uint8 LZW TIFF decode, {threads} thread(s)", f"{t:.2f} s"))
    t = _median_s(lambda: _mrc_read(paths["mrc"]), args.repeats)
    rows.append((f"MRC int8 4096²×{args.frames} read (read_frames, page cache warm)", f"{t:.2f} s"))
    size_mb = os.path.getsize(paths["eer"]) / 1e6
    print("# Movie I/O benchmark\n")
    print(f"- machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs "
          f"(shared with other work: timings are noisy), {platform.platform()}")
    print(f"- versions: Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"tifffile {tifffile.__version__}, imagecodecs {imagecodecs.__version__}")
    print(f"- command: python benchmarks/bench_io.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"- median of {args.repeats} runs after a warm-up; EER file {size_mb:.0f} MB\n")
    print("| case | result |\n|---|---|")
    for case, result in rows:
        print(f"| {case} | {result} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
