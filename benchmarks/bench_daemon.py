"""Daemon benchmarks: planner cost on a 100,000-exposure session, and a live replay's latency.

    python benchmarks/bench_daemon.py planner [--size ci|realistic] [--exposures 100000]
    python benchmarks/bench_daemon.py replay [--size ci|realistic] [--exposures 100 --interval 2] [--json FILE]

``--size ci``: planner on 10,000 exposures, replay of 12 exposures one every 3 s; ``realistic``: 100,000
exposures, and 100 exposures one every 2 s (issue 8's figures). ``--json`` also writes the figures (and,
for the replay, each exposure's arrival and latency) as JSON.

Both run against a throw-away SEMC home (SQLite) and print a markdown table; ``--out`` appends
it to a results file. The replay simulates a session in real time (a separate ``semc simulate session``
process writes an exposure every ``--interval`` seconds, files and Leginon rows) while the daemon processes it
with motion correction and CTF chained on a local cluster, then reports latency from arrival
(the exposure row) to stored, throughput and the controller's CPU time per exposure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sizes import figure_table_emit, size_apply, size_argument, standalone_home_setup

SIZE_DEFAULTS = {"ci": {"planner": 10_000, "replay": 12, "interval": 3.0},
                 "realistic": {"planner": 100_000, "replay": 100, "interval": 2.0}}


def planner(n: int) -> list[str]:
    from semc import models as m
    from semc.base.calc import plan_batch
    from semc.base.retrieve import exposure_ids_list, rejected_ids

    user = m.UserData.objects.create(username="bench")
    session = m.SessionData.objects.create(name="bench", user=user, image_path="/x", frame_path="/y")
    preset = m.PresetData.objects.create(session=session, name="enn")
    t0 = time.perf_counter()
    batch = [m.AcquisitionImageData(session=session, preset=preset, filename=f"bench_{i:06d}enn")
             for i in range(n)]
    m.AcquisitionImageData.objects.bulk_create(batch, batch_size=5000)
    insert_s = time.perf_counter() - t0
    rows = exposure_ids_list(session_id=session.pk, preset="enn")
    last = rows[-1][0]
    m.AcquisitionImageData.objects.create(session=session, preset=preset, filename="bench_new")
    polls = []
    for _ in range(20):
        t = time.perf_counter()
        new = exposure_ids_list(session_id=session.pk, preset="enn", after_id=last)
        ids = [pk for pk, _ in rows] + [pk for pk, _ in new]
        plan_batch(ids, done=set(ids[: n // 2]), waiting=(), in_flight=set(ids[-4:]), rejected=(), limit=8,
                   live=True)
        polls.append(time.perf_counter() - t)
    reconciles = []
    for _ in range(3):
        t = time.perf_counter()
        exposure_ids_list(session_id=session.pk, preset="enn")
        rejected_ids(image_ids=ids)
        reconciles.append(time.perf_counter() - t)
    return [
        f"| exposures in the session | {n:,} |",
        f"| bulk insert (setup) | {insert_s:.1f} s |",
        f"| incremental poll + plan, median of 20 | {1000 * statistics.median(polls):.1f} ms |",
        f"| full reconcile (all ids + rejections), median of 3 | {statistics.median(reconciles):.2f} s |",
    ]


def _microscope_prerendered(plan, written, interval_s: float, staging: Path) -> threading.Thread:
    """The microscope as an acquisition PC does it: files that already exist elsewhere appear in the frame
    path at the cadence (an atomic rename, as a transfer tool finishes a file), then Leginon's rows."""
    from django.db import connections

    from semc.simulation.session import session_rows_write

    staged = []
    for files in written:
        target = staging / files.movie.name
        os.replace(files.movie, target)
        staged.append(target)

    def run() -> None:
        try:
            start = time.monotonic()
            for k, (exp, files, source) in enumerate(zip(plan.exposures, written, staged)):
                wait = k * interval_s - (time.monotonic() - start)
                if wait > 0:
                    time.sleep(wait)
                os.replace(source, files.movie)
                session_rows_write(plan, exp, files, acquired_at=time.time())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="microscope", daemon=True)
    thread.start()
    return thread


def replay(n: int, interval_s: float, data: dict | None = None, *, render_live: bool = False) -> list[str]:
    from semc import models as m
    from semc.cluster import cluster_open
    from semc.ctfestimation.task import ctf_task_config
    from semc.loop import Controller, LoopParams
    from semc.models.semc import ExposureStep
    from semc.motioncorrection.task import MotionCorrectionTaskConfig
    from semc.motioncorrection.types import MotionCorrectionParams
    from semc.pipeline import PipelineConfig
    from semc.simulation.session import SessionSpec, session_plan, session_run

    home = Path(os.environ["SEMC_HOME"])
    spec = {"name": "replay", "root": home / "sessions", "n_exposures": n, "camera": "small", "seed": 5}
    plan = session_plan(SessionSpec(**spec))
    written = session_run(plan, realtime=False, rows_writer=None)  # files only (and warm caches)
    writer = thread = None
    if render_live:  # another process renders each movie at the cadence: it competes for the cores
        for path in plan.frame_path.iterdir():
            path.unlink()
        writer = subprocess.Popen([sys.executable, "-m", "semc", "simulate", "session", "--name", "replay",
                                   "--root", str(spec["root"]), "--exposures", str(n), "--camera", "small",
                                   "--seed", "5", "--interval", str(interval_s)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        staging = home / "staging"
        staging.mkdir()
        thread = _microscope_prerendered(plan, written, interval_s, staging)
    rundir = str(home / "runs" / "replay1")
    steps = ("motioncorrection", "ctfestimation")
    params = LoopParams(session="replay", preset="enn", steps=steps, rundir=rundir, runname="replay1",
                        pipeline=PipelineConfig(steps=steps, motioncorrection=MotionCorrectionTaskConfig(
                            params=MotionCorrectionParams(patches_xy=(0, 0)), rundir=rundir),
                            ctfestimation=ctf_task_config(rundir=rundir, box=256)),
                        wait=True, idle_exit_s=3 * interval_s + 20, poll_interval_s=0.5, max_in_flight=2)
    with cluster_open("local", n_workers=1) as cluster:
        controller = Controller(params, cluster)
        while not m.SessionData.objects.filter(name="replay").exists():  # Leginon writes the session row first
            time.sleep(0.2)
        cpu0 = time.thread_time()  # the controller's own thread: the simulator writes from another
        wall0 = time.perf_counter()
        controller.prepare()
        controller.run_loop()
        controller.shutdown(failed=False)
        wall = time.perf_counter() - wall0
        cpu1 = time.thread_time()
    if writer is not None:
        writer.wait()
    if thread is not None:
        thread.join()
    lines = list(ExposureStep.objects.filter(step="ctfestimation", state="done"))
    latency = sorted((x.stored_at - x.arrived_at).total_seconds() for x in lines)
    motion = {x.exposure_id: x.durations.get("total", 0.0) for x in ExposureStep.objects.filter(
        step="motioncorrection", state="done")}
    busy = [motion.get(x.exposure_id, 0.0) + sum(x.durations.values()) for x in lines]
    cpu = (cpu1 - cpu0) / max(1, len(lines))
    p95 = statistics.quantiles(latency, n=20, method="inclusive")[-1] if len(latency) > 1 else latency[0]
    if data is not None:  # per exposure, for the suite's plot: arrival (s from the first) and latency (s)
        first = min(x.arrived_at for x in lines)
        data["exposures"] = sorted(((x.arrived_at - first).total_seconds(), (x.stored_at - x.arrived_at)
                                    .total_seconds()) for x in lines)
        data["interval_s"] = interval_s
    return [
        f"| exposures, cadence | {len(lines)} of {n}, one every {interval_s:g} s |",
        f"| latency arrival → stored p50 / p95 / max | {statistics.median(latency):.1f} / {p95:.1f} / {latency[-1]:.1f} s |",
        f"| processing time per exposure on the worker (motion correction + CTF, median) | {statistics.median(busy):.2f} s |",
        f"| throughput | {len(lines) / wall * 60:.1f} exposures/min over {wall:.0f} s |",
        f"| controller CPU per exposure | {1000 * cpu:.0f} ms |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["planner", "replay"])
    size_argument(parser)
    parser.add_argument("--exposures", type=int, default=None)
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--render-live", action="store_true",
                        help="replay: render each movie at the cadence in another process (on the same cores) "
                             "instead of moving pre-rendered files into place")
    parser.add_argument("--out", default=None, help="append the table to this markdown file")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = size_apply(parser.parse_args(argv), {size: {"interval": d["interval"], "exposures": d[
        parser.parse_known_args(argv)[0].what]} for size, d in SIZE_DEFAULTS.items()})
    home = Path(tempfile.mkdtemp(prefix="semc-bench-"))
    standalone_home_setup(home)
    data: dict = {"what": args.what, "size": args.size}
    if args.what == "planner":
        rows = planner(args.exposures)
        title = "Planner cost (SQLite)"
    else:
        rows = replay(args.exposures, args.interval, data, render_live=args.render_live)
        title = "Live replay, motion correction + CTF chained, local cluster (1 worker)"
    if args.json:
        Path(args.json).write_text(json.dumps({**data, "rows": rows}, indent=1) + "\n")
    shown = list(argv or sys.argv[1:])
    if "--json" in shown:  # a scratch file: not part of the command to quote
        del shown[shown.index("--json"):shown.index("--json") + 2]
    figure_table_emit(title, f"python benchmarks/bench_daemon.py {' '.join(shown)}", rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
