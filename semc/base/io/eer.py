"""EER movies (Falcon 4/4i): a threaded numba reader that renders frame groups at 4K/8K/16K, and a writer.

The container is a (Big)TIFF with one page (one strip) per detector frame; the
first page carries the acquisition XML in private tag 65001. Strips are read
with ``os.pread`` and decoded by :mod:`semc.base.io.eer_codec`; groups are
decoded on :func:`semc.base.parallel.io_threads` threads (the kernel releases
the GIL), at most that many groups in flight, so memory stays at a few group
buffers whatever the number of frames.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tifffile
from numpy.typing import NDArray

from semc.base.errors import CorruptInput, InvalidParameters
from semc.base.io.atomic import atomic_target
from semc.base.io.eer_codec import (
    DECODE_COMPLETE,
    DECODE_OVERRUN,
    STRIP_PAD_BYTES,
    EerCoding,
    coding_for_compression,
    eer_decode_frame,
    eer_encode_frame,
)
from semc.base.io.reader import MovieReader
from semc.base.io.tiff import tiff_pages_complete
from semc.base.parallel import io_threads
from semc.base.units import angstrom_from_metre, metre_from_angstrom

__all__ = ["EerMovie", "write_eer", "eer_metadata_from_xml"]

logger = logging.getLogger(__name__)

_EER_COMPRESSIONS = (65000, 65001, 65002)
_MAX_GROUP_FRAMES = 65535  # uint16 accumulator


def eer_metadata_from_xml(xml: bytes | str) -> dict[str, str]:
    """``{item name: text}`` of an EER ``<metadata>`` block (tag 65001)."""
    text = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else xml
    start = text.find("<metadata")
    root = ET.fromstring(text[start:].rstrip("\x00")) if start >= 0 else None
    if root is None:
        return {}
    return {item.get("name", ""): (item.text or "").strip() for item in root.iter("item")}


class EerMovie(MovieReader):
    """An EER movie rendered at ``upsampling`` 1 (sensor grid), 2 or 4.

    ``read_frames`` returns uint8 event counts per detector frame (0/1);
    ``iter_groups``/``read_grouped`` sum frames into float32 fractions.

    Raises
    ------
    CorruptInput
        Not a TIFF, a page that is not EER, strips past the end of the file
        (``frame`` named), or a strip that does not decode to the full frame.
    InvalidParameters
        An upsampling the stream's sub-pixel bits cannot give.
    """

    format = "eer"

    def __init__(self, path: str | os.PathLike[str], *, upsampling: int = 1, permissive: bool = False,
                 max_run_has_subpixel: bool = True) -> None:
        super().__init__(path)
        self.permissive = permissive
        self.upsampling = int(upsampling)
        self._inspect(max_run_has_subpixel)
        self._level = self.coding.check_upsampling(self.upsampling)
        self.frame_shape = (self.sensor_shape[0] * self.upsampling, self.sensor_shape[1] * self.upsampling)
        self.dtype = np.dtype(np.uint8)
        if self.sensor_pixel_size_angstrom is not None:
            self.pixel_size_angstrom = self.sensor_pixel_size_angstrom / self.upsampling
        self._fd = os.open(self.path, os.O_RDONLY)
        self._local = threading.local()

    def _inspect(self, max_run_has_subpixel: bool) -> None:
        size = os.path.getsize(self.path)
        if size == 0:
            raise CorruptInput("EER file is empty", step="io", path=self.path)
        try:
            with tifffile.TiffFile(self.path) as tif:
                pages = tif.pages
                n = len(pages)
                first = pages[0]
                tags = {code: first.tags.valueof(code) for code in (65007, 65008, 65009)}
                xml = first.tags.valueof(65001)
                self._strips = self._strip_table(tif, n, size, first)
        except CorruptInput:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types for a bad file
            raise CorruptInput(f"not a readable EER/TIFF: {exc}", step="io", path=self.path) from None
        self.compression = int(first.compression)
        self.coding = coding_for_compression(
            self.compression, tags={k: v for k, v in tags.items() if v is not None},
            max_run_has_subpixel=max_run_has_subpixel,
        )
        self.sensor_shape = (int(first.shape[0]), int(first.shape[1]))
        self.n_frames = n
        self.metadata = self._metadata(xml)
        declared = self.metadata.get("numberOfFrames", "")
        if declared.isdigit() and int(declared) > n:
            raise CorruptInput(f"{n} of {declared} EER frames present (truncated file)", step="io",
                               path=self.path, frame=n)
        px = self.metadata.get("sensorPixelSize.width")
        self.sensor_pixel_size_angstrom = angstrom_from_metre(float(px)) if px else None

    def _strip_table(self, tif, n: int, size: int, first) -> NDArray[np.int64]:
        pages = tif.pages
        if int(first.compression) not in _EER_COMPRESSIONS:
            raise CorruptInput(f"TIFF compression {int(first.compression)} is not EER", step="io", path=self.path)
        if tiff_pages_complete(tif, size)[1] == n:
            raise CorruptInput("EER page chain runs past the end of the file", step="io", path=self.path, frame=n)
        table = np.empty((n, 2), dtype=np.int64)
        for i in range(n):
            page = pages[i]
            if page.shape != first.shape or int(page.compression) != int(first.compression):
                raise CorruptInput("EER page differs from page 0", step="io", path=self.path, frame=i)
            offsets, counts = page.dataoffsets, page.databytecounts
            if len(offsets) != 1 or counts[0] == 0 or offsets[0] + counts[0] > size:
                raise CorruptInput("EER frame strip missing or past the end of the file", step="io",
                                   path=self.path, frame=i)
            table[i] = offsets[0], counts[0]
        return table

    def _metadata(self, xml: object) -> dict[str, str]:
        if not isinstance(xml, (bytes, str)):
            return {}
        try:
            return eer_metadata_from_xml(xml)
        except ET.ParseError as exc:
            logger.warning("EER metadata XML does not parse (%s): %s", exc, self.path)
            return {}

    def close(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None
        self._local = threading.local()

    # decoding ------------------------------------------------------------
    def _decode_into(self, index: int, out: NDArray, buf: NDArray[np.uint8]) -> NDArray[np.uint8]:
        offset, count = (int(v) for v in self._strips[index])
        if buf.size < count + STRIP_PAD_BYTES:
            buf = np.zeros(count + STRIP_PAD_BYTES + 65536, dtype=np.uint8)
        got = os.preadv(self._fd, [memoryview(buf)[:count]], offset)
        if got != count:
            raise CorruptInput("EER strip could not be read in full", step="io", path=self.path, frame=index)
        buf[count:count + STRIP_PAD_BYTES] = 0
        _, _events, status = eer_decode_frame(buf, n_bytes=count, sensor_shape=self.sensor_shape,
                                              coding=self.coding, upsampling=self.upsampling, out=out)
        if status != DECODE_COMPLETE:
            what = "runs past the last pixel" if status == DECODE_OVERRUN else "ends before the last pixel"
            if not self.permissive or status == DECODE_OVERRUN:
                raise CorruptInput(f"EER frame {what}", step="io", path=self.path, frame=index)
            warnings.warn(f"EER frame {index} of {self.path} {what}", RuntimeWarning, stacklevel=3)
        return buf

    def _read(self, start: int, stop: int) -> NDArray:
        out = np.zeros((stop - start,) + self.frame_shape, dtype=np.uint8)
        buf = np.zeros(1 << 20, dtype=np.uint8)
        for k, i in enumerate(range(start, stop)):
            buf = self._decode_into(i, out[k], buf)
        return out

    def _group_counts(self, start: int, stop: int) -> NDArray[np.float32]:
        # the smallest accumulator that cannot overflow (at most one event per pixel per frame),
        # kept per thread and reused: fewer bytes to touch than a float32 sum
        dtype = np.uint8 if stop - start <= 255 else np.uint16
        local = self._local
        acc = getattr(local, "acc", None)
        if acc is None or acc.dtype != dtype:
            acc = local.acc = np.zeros(self.frame_shape, dtype=dtype)
            local.buf = np.zeros(1 << 20, dtype=np.uint8)
        else:
            acc.fill(0)
        for i in range(start, stop):
            local.buf = self._decode_into(i, acc, local.buf)
        return acc.astype(np.float32)

    def _iter_group_sums(self, bounds: list[tuple[int, int]]) -> Iterator[NDArray[np.float32]]:
        if max(b - a for a, b in bounds) > _MAX_GROUP_FRAMES:
            raise InvalidParameters(f"EER groups are limited to {_MAX_GROUP_FRAMES} frames", step="io",
                                    path=self.path)
        threads = io_threads()
        if threads == 1:
            for start, stop in bounds:
                yield self._group_counts(start, stop)
            return
        if len(bounds) < threads:  # few, long groups: split each one over the threads
            yield from self._split_group_sums(bounds, threads)
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="eer") as pool:
            pending: deque = deque()
            todo = iter(bounds)
            for start, stop in todo:
                pending.append(pool.submit(self._group_counts, start, stop))
                if len(pending) >= threads:
                    break
            while pending:
                result = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(self._group_counts, *nxt))
                yield result


    def _split_group_sums(self, bounds: list[tuple[int, int]], threads: int) -> Iterator[NDArray[np.float32]]:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="eer") as pool:
            for start, stop in bounds:
                edges = np.linspace(start, stop, min(threads, stop - start) + 1).astype(int)
                parts = pool.map(lambda ab: self._group_counts(*ab), zip(edges[:-1], edges[1:]))
                total = next(parts)
                for part in parts:
                    total += part
                yield total


# writing -----------------------------------------------------------------
_SHORT, _LONG, _UNDEFINED, _LONG8 = 3, 4, 7, 16


def _ifd_bytes(entries: list[tuple[int, int, int, int]], next_offset: int = 0) -> bytes:
    """BigTIFF IFD from ``(tag, type, count, value-or-offset)`` entries (values fit in 8 bytes)."""
    out = [np.uint64(len(entries)).tobytes()]
    for tag, typ, count, value in sorted(entries):
        out.append(np.array([tag, typ], dtype="<u2").tobytes() + np.array([count, value], dtype="<u8").tobytes())
    out.append(np.uint64(next_offset).tobytes())
    return b"".join(out)


def _eer_xml(n_frames: int, sensor_shape: tuple[int, int], pixel_size_angstrom: float | None,
             extra: dict[str, str] | None) -> bytes:
    items = {"numberOfFrames": str(n_frames), "sensorImageWidth": str(sensor_shape[1]),
             "sensorImageHeight": str(sensor_shape[0])}
    units = {}
    if pixel_size_angstrom is not None:
        metres = repr(metre_from_angstrom(float(pixel_size_angstrom)))
        items["sensorPixelSize.width"] = items["sensorPixelSize.height"] = metres
        units = {"sensorPixelSize.width": "m", "sensorPixelSize.height": "m"}
    items.update(extra or {})
    root = ET.Element("metadata")
    for name, value in items.items():
        item = ET.SubElement(root, "item", name=name)
        if name in units:
            item.set("unit", units[name])
        item.text = str(value)
    return ET.tostring(root)


def _frame_events(frame: object, sensor_shape: tuple[int, int], coding: EerCoding, index: int):
    """(pixel index, horizontal sub, vertical sub) of one frame given as counts or positions."""
    ny, nx = sensor_shape
    if isinstance(frame, np.ndarray) and frame.ndim == 2:
        if frame.shape != sensor_shape:
            raise InvalidParameters(f"frame {index}: counts of shape {frame.shape}, not {sensor_shape}", step="io")
        if frame.size and (frame.min() < 0 or frame.max() > 1):
            raise InvalidParameters(f"frame {index}: an EER frame holds 0 or 1 event per pixel", step="io")
        pix = np.flatnonzero(frame)
        zeros = np.zeros(pix.size, dtype=np.int64)
        return pix, zeros, zeros
    try:
        x, y = (np.asarray(a, dtype=np.int64) for a in frame)  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidParameters(f"frame {index}: pass counts (ny, nx) or a pair (x, y) of positions",
                                step="io") from None
    hb, vb = coding.horz_bits, coding.vert_bits
    if x.shape != y.shape or x.ndim != 1:
        raise InvalidParameters(f"frame {index}: x and y must be 1-D of equal length", step="io")
    if x.size and (x.min() < 0 or y.min() < 0 or x.max() >= nx << hb or y.max() >= ny << vb):
        raise InvalidParameters(f"frame {index}: positions outside the sensor", step="io")
    pix = (y >> vb) * nx + (x >> hb)
    order = np.argsort(pix, kind="stable")
    pix = pix[order]
    if pix.size > 1 and np.any(pix[1:] == pix[:-1]):
        raise InvalidParameters(f"frame {index}: two events on one sensor pixel", step="io")
    return pix, (x & ((1 << hb) - 1))[order], (y & ((1 << vb) - 1))[order]


def write_eer(
    path: str | os.PathLike[str],
    frames: Iterable[object],
    *,
    sensor_shape: tuple[int, int] = (4096, 4096),
    compression: int = 65001,
    coding: EerCoding | None = None,
    pixel_size_angstrom: float | None = None,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write detector frames as an EER movie (little-endian BigTIFF, one strip per frame), atomically.

    Parameters
    ----------
    path
        Destination (``.eer``).
    frames
        One entry per detector frame, either a ``(ny, nx)`` array of 0/1 counts
        on the sensor grid (events get sub-pixel 0), or a pair ``(x, y)`` of
        integer arrays of event positions in sub-pixel units (``2**horz_bits``
        per sensor pixel along x, ``2**vert_bits`` along y: a 16K grid for 4K
        with the usual 2+2 bits). At most one event per sensor pixel per frame.
    sensor_shape
        ``(ny, nx)`` of the sensor.
    compression
        65001 (7-bit runs, default), 65000 (8-bit) or 65002 (bit widths from ``coding``,
        written to tags 65007-65009).
    coding
        Bit widths; default follows ``compression``.
    pixel_size_angstrom
        Sensor pixel size, written as ``sensorPixelSize`` (metres) in the tag-65001 XML.
    metadata
        Extra XML items (name -> text), e.g. ``{"totalDose": "20.3"}``.

    Returns
    -------
    int
        Frames written.

    Raises
    ------
    InvalidParameters
        Bad shapes, positions, compression or an empty frame list.
    """
    if compression not in _EER_COMPRESSIONS:
        raise InvalidParameters(f"EER compression must be 65000, 65001 or 65002, got {compression}", step="io")
    coding = coding or coding_for_compression(compression)
    sensor_shape = (int(sensor_shape[0]), int(sensor_shape[1]))
    n_pixels = sensor_shape[0] * sensor_shape[1]
    count = 0
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:
        fh.write(b"II" + np.array([43, 8, 0], dtype="<u2").tobytes() + np.uint64(0).tobytes())
        next_field = 8  # where the offset of the next IFD goes
        xml_entry = 0  # where page 0's tag-65001 entry lies, patched once the frame count is known
        for frame in frames:  # one frame at a time: a generator never needs the movie in memory
            pix, hs, vs = _frame_events(frame, sensor_shape, coding, count)
            strip = eer_encode_frame(pix, horz_sub=hs, vert_sub=vs, n_pixels=n_pixels, coding=coding)
            next_field, entry = _write_page(fh, next_field, strip, count == 0, sensor_shape, compression, coding)
            xml_entry = entry if count == 0 else xml_entry
            count += 1
        if count == 0:
            raise InvalidParameters("no frames to write", step="io")
        _write_xml(fh, xml_entry, _eer_xml(count, sensor_shape, pixel_size_angstrom, metadata))
    logger.debug("wrote EER %s frames=%d compression=%d", path, count, compression)
    return count


def _write_page(fh, next_field: int, strip: bytes, with_xml: bool, sensor_shape: tuple[int, int],
                compression: int, coding: EerCoding) -> tuple[int, int]:
    """Write one strip and its IFD; return (position of its next-IFD field, position of its 65001 entry)."""
    ny, nx = sensor_shape
    strip_offset = fh.tell()
    fh.write(strip)
    entries = [(256, _LONG, 1, nx), (257, _LONG, 1, ny), (258, _SHORT, 1, 8), (259, _SHORT, 1, compression),
               (262, _SHORT, 1, 1), (273, _LONG8, 1, strip_offset), (277, _SHORT, 1, 1),
               (278, _LONG, 1, ny), (279, _LONG8, 1, len(strip))]
    if compression == 65002:
        entries += [(65007, _SHORT, 1, coding.skip_bits), (65008, _SHORT, 1, coding.horz_bits),
                    (65009, _SHORT, 1, coding.vert_bits)]
    if with_xml:
        entries.append((65001, _UNDEFINED, 0, 0))  # patched by _write_xml
    ifd_offset = fh.tell()
    fh.write(_ifd_bytes(entries))
    end = fh.tell()
    fh.seek(next_field)
    fh.write(np.uint64(ifd_offset).tobytes())
    fh.seek(end)
    xml_entry = ifd_offset + 8 + 20 * sorted(entries).index((65001, _UNDEFINED, 0, 0)) if with_xml else 0
    return end - 8, xml_entry


def _write_xml(fh, entry_position: int, xml: bytes) -> None:
    """Append the XML block and point page 0's tag-65001 entry at it."""
    if len(xml) % 2:
        xml += b" "
    fh.seek(0, os.SEEK_END)
    offset = fh.tell()
    fh.write(xml)
    fh.seek(entry_position + 4)
    fh.write(np.array([len(xml), offset], dtype="<u8").tobytes())
