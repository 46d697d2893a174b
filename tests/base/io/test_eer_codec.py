"""EER kernels against the slow twins in naive.py, against imagecodecs, and on edge cases."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from semc.base.errors import InvalidParameters
from semc.base.io.eer_codec import (
    DECODE_COMPLETE,
    DECODE_OVERRUN,
    DECODE_SHORT,
    STRIP_PAD_BYTES,
    EerCoding,
    eer_decode_frame,
    eer_encode_frame,
)
from tests.base.io.naive import eer_decode_naive, eer_encode_naive, random_events, render_truth

SHAPE = (64, 96)
CODINGS = [EerCoding(7, 2, 2), EerCoding(8, 2, 2), EerCoding(8, 2, 2, True), EerCoding(7, 1, 1),
           EerCoding(6, 2, 2), EerCoding(10, 3, 3)]


def _decode(strip: bytes, coding: EerCoding, upsampling: int = 1, shape=SHAPE):
    buf = np.zeros(len(strip) + STRIP_PAD_BYTES, dtype=np.uint8)
    buf[: len(strip)] = np.frombuffer(strip, dtype=np.uint8)
    out = np.zeros((shape[0] * upsampling, shape[1] * upsampling), dtype=np.uint16)
    return eer_decode_frame(buf, n_bytes=len(strip), sensor_shape=shape, coding=coding,
                            upsampling=upsampling, out=out)


def _events(seed, density, coding):
    return random_events(np.random.default_rng(seed), SHAPE, density, horz_bits=coding.horz_bits,
                         vert_bits=coding.vert_bits)


@pytest.mark.parametrize("coding", CODINGS, ids=str)
@pytest.mark.parametrize("density", [0.0, 0.001, 0.05, 0.5, 1.0])
def test_encoder_writes_the_same_bits_as_the_naive_encoder(coding, density):
    pix, h, v = _events(1, density, coding)
    ours = eer_encode_frame(pix, horz_sub=h, vert_sub=v, n_pixels=SHAPE[0] * SHAPE[1], coding=coding)
    naive = eer_encode_naive(pix, h, v, n_pixels=SHAPE[0] * SHAPE[1], skip_bits=coding.skip_bits,
                             horz_bits=coding.horz_bits, vert_bits=coding.vert_bits,
                             max_run_has_subpixel=coding.max_run_has_subpixel)
    assert ours[: len(naive)] == naive
    assert set(ours[len(naive):]) <= {0}
    assert len(ours) % 2 == 0


@pytest.mark.parametrize("coding", CODINGS, ids=str)
@pytest.mark.parametrize("density", [0.0, 0.003, 0.1, 1.0])
def test_decoder_recovers_every_event_at_every_upsampling(coding, density):
    pix, h, v = _events(2, density, coding)
    strip = eer_encode_frame(pix, horz_sub=h, vert_sub=v, n_pixels=SHAPE[0] * SHAPE[1], coding=coding)
    for up in (1, 2, 4):
        if up > 1 and {2: 1, 4: 2}[up] > min(coding.horz_bits, coding.vert_bits):
            continue
        out, events, status = _decode(strip, coding, up)
        truth = render_truth(pix, h, v, sensor_shape=SHAPE, horz_bits=coding.horz_bits,
                             vert_bits=coding.vert_bits, upsampling=up)
        naive, complete = eer_decode_naive(strip, sensor_shape=SHAPE, skip_bits=coding.skip_bits,
                                           horz_bits=coding.horz_bits, vert_bits=coding.vert_bits,
                                           upsampling=up, max_run_has_subpixel=coding.max_run_has_subpixel)
        assert status == DECODE_COMPLETE and complete
        assert events == pix.size
        np.testing.assert_array_equal(out, truth)
        np.testing.assert_array_equal(out, naive)


@pytest.mark.parametrize("coding", [c for c in CODINGS if not c.max_run_has_subpixel], ids=str)
@pytest.mark.parametrize("superres", [0, 1, 2])
def test_decoder_equals_imagecodecs_eer_decode(coding, superres):
    if superres > min(coding.horz_bits, coding.vert_bits) or coding.code_bits <= 8:
        pytest.skip("imagecodecs does not take this combination")
    pix, h, v = _events(3, 0.02, coding)
    strip = eer_encode_frame(pix, horz_sub=h, vert_sub=v, n_pixels=SHAPE[0] * SHAPE[1], coding=coding)
    up = 1 << superres
    shape = (SHAPE[0] * up, SHAPE[1] * up)
    ref = imagecodecs.eer_decode(strip, shape, coding.skip_bits, coding.horz_bits, coding.vert_bits,
                                 superres=superres)
    ours, _, _ = _decode(strip, coding, up)
    np.testing.assert_array_equal(ours, ref.astype(np.uint16))


def test_8bit_runs_of_255_follow_the_chosen_reading():
    """65000: after a 255 run RELION reads 4 sub-pixel bits, imagecodecs none (infra.md §3)."""
    pix = np.array([10, 900, 901, 3000, 6143])  # gaps > 255 force maximal runs
    h = np.array([1, 2, 3, 0, 1])
    v = np.array([3, 0, 1, 2, 2])
    n = SHAPE[0] * SHAPE[1]
    relion, icodecs = EerCoding(8, 2, 2, True), EerCoding(8, 2, 2, False)
    s_relion = eer_encode_frame(pix, horz_sub=h, vert_sub=v, n_pixels=n, coding=relion)
    s_ic = eer_encode_frame(pix, horz_sub=h, vert_sub=v, n_pixels=n, coding=icodecs)
    assert s_relion != s_ic
    truth = render_truth(pix, h, v, sensor_shape=SHAPE, upsampling=4)
    np.testing.assert_array_equal(_decode(s_relion, relion, 4)[0], truth)
    np.testing.assert_array_equal(_decode(s_ic, icodecs, 4)[0], truth)
    ref = imagecodecs.eer_decode(s_ic, (SHAPE[0] * 4, SHAPE[1] * 4), 8, 2, 2, superres=2)
    np.testing.assert_array_equal(ref, truth.astype(bool))


def test_a_cut_strip_is_reported_short_and_a_run_past_the_end_overrun():
    coding = EerCoding()
    pix, h, v = _events(4, 0.05, coding)
    strip = eer_encode_frame(pix, horz_sub=h, vert_sub=v, n_pixels=SHAPE[0] * SHAPE[1], coding=coding)
    _, events, status = _decode(strip[: len(strip) // 2], coding)
    assert status == DECODE_SHORT and 0 < events < pix.size
    # every event on pixel 0 then a stream of maximal runs: the runs overshoot the frame
    overrun = eer_encode_frame(np.array([0]), horz_sub=np.array([0]), vert_sub=np.array([0]),
                               n_pixels=SHAPE[0] * SHAPE[1] * 4, coding=coding)
    assert _decode(overrun, coding)[2] == DECODE_OVERRUN


def test_wrappers_refuse_what_the_kernels_cannot_take():
    coding = EerCoding(7, 1, 1)
    with pytest.raises(InvalidParameters):
        coding.check_upsampling(4)
    with pytest.raises(InvalidParameters):
        EerCoding(12, 4, 4)
    with pytest.raises(InvalidParameters):  # no padding after the strip
        eer_decode_frame(np.zeros(4, np.uint8), n_bytes=4, sensor_shape=SHAPE, coding=EerCoding())
    with pytest.raises(InvalidParameters):  # two events on one pixel
        eer_encode_frame(np.array([5, 5]), horz_sub=np.zeros(2), vert_sub=np.zeros(2), n_pixels=100,
                         coding=EerCoding())
