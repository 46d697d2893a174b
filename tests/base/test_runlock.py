"""One controller per run directory: a second is refused with its owner named; a dead owner's lock is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from semc.base.runlock import RunDirLock, RunDirLocked


def _holder(rundir, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from semc.base.runlock import RunDirLock
        with RunDirLock({str(rundir)!r}):
            print("locked", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_second_controller_is_refused_with_the_owner_named(tmp_path):
    holder = _holder(tmp_path, 30)
    try:
        with pytest.raises(RunDirLocked) as info:
            RunDirLock(tmp_path).acquire()
        assert f"pid {holder.pid}" in str(info.value) and str(tmp_path) in str(info.value)
    finally:
        _stop(holder)


def test_the_lock_of_a_killed_controller_is_taken_over(tmp_path):
    holder = _holder(tmp_path, 30)
    _stop(holder)
    lock = RunDirLock(tmp_path)
    with lock:
        assert lock.previous_owner["pid"] == holder.pid
        assert json.loads((tmp_path / ".semc.lock").read_text())["pid"] == os.getpid()


def test_a_clean_release_leaves_no_stale_owner(tmp_path):
    with RunDirLock(tmp_path):
        pass
    lock = RunDirLock(tmp_path)
    with lock:
        assert lock.previous_owner is None
