"""Log formats against the real MotionCor2 logs in shared/realdata/motioncor2_logs."""


import numpy as np
import pytest

from semc.motioncorrection.motioncor2_log import format_global_shifts
from tests.realdata import REALDATA

LOGS = REALDATA / "motioncor2_logs"


def _block(text, start, stop):
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip() == start)
    j = next(k for k in range(i, len(lines)) if lines[k].startswith(stop) or not lines[k].strip())
    return lines[i:j]


@pytest.mark.skipif(not LOGS.exists(), reason="shared/realdata not present")
def test_1_6_4_table_reproduces_the_real_log_byte_for_byte():
    real = _block((LOGS / "motioncor2_1.6.4_log.txt").read_text(), "Full-frame alignment", "Global")
    rows = np.array([[float(w) for w in line.split()[1:]] for line in real[2:]])
    ours = format_global_shifts(rows, reference_frame=0, version="1.6.4").splitlines()
    assert ours == real


@pytest.mark.skipif(not LOGS.exists(), reason="shared/realdata not present")
def test_1_5_0_table_reproduces_the_real_log_byte_for_byte():
    real = _block((LOGS / "motioncor2_1.5.0_log.txt").read_text(), "Full-frame alignment shift", "Global")
    rows = np.array([[float(w) for w in line.split("shift:")[1].split()] for line in real[1:]])
    ref = int(np.flatnonzero(np.all(rows == 0, axis=1))[0])
    ours = format_global_shifts(rows, reference_frame=ref, version="1.5.0").splitlines()
    assert ours == real
