"""One command for every benchmark, at one size, with its record and its plots.

    python benchmarks/run.py --size ci|realistic [--only io,ctf] [--repeats N] [--timeout S] [--no-merge]

Runs each ``bench_*.py`` script (I/O, simulation, motion correction vs RELION, CTF, the external-program
runner, the daemon's planner and live replay) at the chosen size (``benchmarks/sizes.py``), each in its
own process, and records for each:

- the machine (host, CPU model, cores, memory, load average before and after: the CI machine's cores are
  shared with other work, so every timing says how loaded it was), the versions (Python, the numerical
  stack, Dask, Django, RELION), the git commit, the exact command and its wall time;
- the script's own figures (medians of several runs; ratios against the peer measured in the same run:
  RELION for motion correction, imagecodecs for EER decoding).

Each benchmark's record replaces the block for this size in ``benchmarks/results/<name>.md`` (notes
written by hand around it are kept); ``results/suite.md`` gets the suite's summary (status, wall time,
key figures and the plots drawn into ``benchmarks/figures/<name>-<size>.png``), and
``benchmarks/results_merge.py`` rebuilds ``benchmarks/RESULTS.md`` from them.

Setup: RELION (the motion-correction peer) is installed with ``apt-get install relion`` when
``relion_run_motioncorr`` is missing and this runs as root on Debian; otherwise the comparison is
skipped and the record says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from figures_of import KEY_FIGURES, PLOTS, json_read, tables_parse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS, FIGURES = HERE / "results", HERE / "figures"
SIZES = ("ci", "realistic")
#: name -> the commands (script and arguments; --size is added) that make up the benchmark
BENCHMARKS: dict[str, list[list[str]]] = {
    "io": [["bench_io.py"]],
    "simulation": [["bench_simulation.py"]],
    "motioncorrection": [["bench_motioncorrection.py"], ["bench_mc_accuracy.py"]],
    "ctf": [["bench_ctf.py"]],
    "external_runner": [["bench_external_runner.py"]],
    "daemon": [["bench_daemon.py", "planner"], ["bench_daemon.py", "replay"]],
    "ingest": [["bench_ingest.py"]],
}
TAKES_REPEATS = {"io", "simulation", "motioncorrection", "ctf", "external_runner"}
PACKAGES = ("numpy", "scipy", "numba", "tifffile", "imagecodecs", "mrcfile", "dask", "distributed", "Django",
            "matplotlib")


@dataclass
class Command:
    argv: list[str]
    returncode: int | None = None
    wall_s: float = 0.0
    stdout: str = ""
    stderr: str = ""
    json: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The command as a person would type it (without the scratch ``--json`` file)."""
        args = list(self.argv[2:])
        if "--json" in args:
            del args[args.index("--json"):args.index("--json") + 2]
        return "python " + " ".join([str(Path(self.argv[1]).relative_to(ROOT)), *args])


@dataclass
class Outcome:
    name: str
    commands: list[Command]
    notes: list[str]
    load_before: float
    load_after: float
    started: str

    @property
    def ok(self) -> bool:
        return all(c.returncode == 0 for c in self.commands)

    @property
    def wall_s(self) -> float:
        return sum(c.wall_s for c in self.commands)


def _load() -> float:
    return os.getloadavg()[0]


def _read(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> str:
    """Host, CPU, cores, memory and OS, in one line."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    memory = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0.0) if Path("/proc/meminfo").exists() else 0.0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.node()}: {model}, {cpus} CPUs, {memory:.0f} GiB, {platform.system()} {platform.release()}"
            f" ({_read(['sh', '-c', '. /etc/os-release && echo $PRETTY_NAME']) or platform.platform()}); no GPU used")


def versions() -> str:
    """Python, the packages the benchmarks exercise, SEMC and RELION."""
    parts = [f"Python {platform.python_version()}"]
    for name in ("semc-appion", *PACKAGES):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    relion = _read(["dpkg-query", "-W", "-f", "${Version}", "relion"])
    parts.append(f"RELION {relion}" if relion else "RELION: not installed")
    return ", ".join(parts)


def commit() -> str:
    head = _read(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = _read(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return head + (" with uncommitted changes in the working tree" if dirty else "")


def relion_ensure() -> str:
    """Install RELION (the motion-correction peer) when missing: apt, as root on Debian. Returns a note."""
    if shutil.which("relion_run_motioncorr"):
        return ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "RELION is not installed and cannot be installed here (needs root and apt): no RELION comparison"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (["apt-get", "install", "-y", "--no-install-recommends", "relion"], ["apt-get", "update"],
                 ["apt-get", "install", "-y", "--no-install-recommends", "relion"]):
        subprocess.run(step, env=env, capture_output=True, text=True, check=False, timeout=1800)
        if shutil.which("relion_run_motioncorr"):
            return "RELION installed by the setup step (apt-get install relion)"
    return "apt-get install relion failed: no RELION comparison"


def _command_run(argv: list[str], *, timeout_s: float) -> Command:
    command = Command(argv)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)
        command.returncode, command.stdout, command.stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        command.returncode = -1
        command.stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        command.stderr = f"timed out after {timeout_s:.0f} s (--timeout)"
    command.wall_s = time.perf_counter() - t0
    return command


def benchmark_run(name: str, *, size: str, repeats: int | None, timeout_s: float, scratch: Path) -> Outcome:
    notes = []
    extra = ["--repeats", str(repeats)] if repeats and name in TAKES_REPEATS else []
    if name == "motioncorrection":
        note = relion_ensure()
        notes += [note] if note else []
        if not shutil.which("relion_run_motioncorr"):
            extra.append("--no-relion")
    outcome = Outcome(name, [], notes, _load(), 0.0, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    for script, *args in BENCHMARKS[name]:
        if not (HERE / script).is_file():
            outcome.notes.append(f"{script} is not in this checkout: not run")
            outcome.commands.append(Command([sys.executable, str(HERE / script), *args], returncode=-2))
            continue
        json_path = scratch / f"{name}-{'-'.join(args) or 'run'}.json"
        argv = [sys.executable, str(HERE / script), *args, "--size", size, *extra]
        if script == "bench_daemon.py":
            argv += ["--json", str(json_path)]
        print(f"[{name}] {' '.join(argv[1:])}", file=sys.stderr, flush=True)
        command = _command_run(argv, timeout_s=timeout_s)
        command.json = json_read(json_path)
        outcome.commands.append(command)
        print(f"[{name}] exit {command.returncode} after {command.wall_s:.0f} s", file=sys.stderr, flush=True)
    outcome.load_after = _load()
    return outcome


def _demoted(text: str) -> str:
    """The script's output inside a section: its headings become level-4 headings."""
    return re.sub(r"^#{1,4} ", "#### ", text, flags=re.MULTILINE)


def section(outcome: Outcome, *, size: str, machine_line: str, versions_line: str, commit_line: str) -> str:
    lines = [f"### Suite run at size `{size}` ({outcome.started})", "",
             f"- machine: {machine_line}",
             (f"- load average (1 min) {outcome.load_before:.1f} before, {outcome.load_after:.1f} after, on "
             f"{os.cpu_count()} CPUs: the cores were shared with other work, so timings are noisy; ratios against a "
             "peer are measured in the same run"),
             f"- versions: {versions_line}", f"- code: {commit_line}"]
    lines += [f"- note: {note}" for note in outcome.notes]
    for command in outcome.commands:
        status = "ok" if command.returncode == 0 else f"FAILED (exit {command.returncode})"
        lines += ["", f"`{command.text}` — {status}, {command.wall_s:.0f} s", ""]
        lines.append(_demoted(command.stdout.strip()) if command.stdout.strip() else "(no output)")
        if command.returncode != 0:
            tail = "\n".join(command.stderr.strip().splitlines()[-15:])
            lines += ["", "```", tail, "```"]
    return "\n".join(lines) + "\n"


def block_replace(path: Path, key: str, text: str, *, title: str) -> None:
    """Replace the ``<!-- suite:key -->`` block of a results file (appended when absent; the rest kept)."""
    begin, end = f"<!-- suite:{key}:begin -->", f"<!-- suite:{key}:end -->"
    old = path.read_text() if path.exists() else f"# {title}\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


TITLES = {"io": "Movie I/O", "simulation": "Simulation", "motioncorrection": "Motion correction",
          "ctf": "CTF estimation", "external_runner": "External-program runner", "daemon": "Daemon",
          "ingest": "Ingest (EPU/SerialEM watcher)"}


def _plot(outcome: Outcome, size: str) -> Path | None:
    tables = [t for c in outcome.commands for t in tables_parse(c.stdout)]
    data = {c.argv[2] if len(c.argv) > 2 and not c.argv[2].startswith("-") else "run": c.json
            for c in outcome.commands}
    if outcome.name not in PLOTS:
        return None
    try:
        return PLOTS[outcome.name](tables, data, FIGURES / f"{outcome.name}-{size}.png", f"size {size}")
    except Exception as exc:  # noqa: BLE001 - a plot is a convenience: say why it is missing, keep the record
        outcome.notes.append(f"no plot: {type(exc).__name__}: {exc}")
        return None


def summary_entry(outcome: Outcome, plot: Path | None) -> dict:
    """What the suite's summary keeps of one run (per size in ``results/suite-<size>.json``)."""
    return {"status": "ok" if outcome.ok else "FAILED", "wall_s": round(outcome.wall_s, 1),
            "load": [round(outcome.load_before, 1), round(outcome.load_after, 1)], "started": outcome.started,
            "figure": plot.name if plot else None, "commands": [c.text for c in outcome.commands]}


def block_read(path: Path, key: str) -> str:
    """The text of a results file's ``<!-- suite:key -->`` block ('' when it has none)."""
    text = path.read_text() if path.exists() else ""
    begin, end = f"<!-- suite:{key}:begin -->", f"<!-- suite:{key}:end -->"
    return text[text.index(begin) + len(begin): text.index(end)] if begin in text and end in text else ""


def key_figures(name: str, size: str) -> str:
    """The key figures of a benchmark, read from its recorded block (so the summary always matches it)."""
    try:
        return KEY_FIGURES[name](tables_parse(block_read(RESULTS / f"{name}.md", size)), {})
    except (KeyError, ValueError, AttributeError, TypeError):
        return ""


def summary(entries: dict[str, dict], *, size: str, machine_line: str, versions_line: str, commit_line: str) -> str:
    """The suite's summary at one size: one line per benchmark (from its latest run) and the plots."""
    lines = [f"### Suite at size `{size}`", "",
             (f"Each benchmark's latest run with `python benchmarks/run.py --size {size}` (the date is in each row);"
             f" {sum(e['wall_s'] for e in entries.values()) / 60:.1f} min of benchmarks in all."),
             "", f"- machine: {machine_line}", f"- versions: {versions_line}", f"- code: {commit_line}",
             ("- the CI machine's 2 cores were shared with other work while these ran (load average per row): treat "
             "absolute times as upper bounds and read the ratios against the peers, measured in the same run"),
             "", "| benchmark | run | status | wall s | load before / after | key figures |", "|---|---|---|---|---|---|"]
    for name in [n for n in BENCHMARKS if n in entries]:
        e = entries[name]
        lines.append(f"| {TITLES[name]} | {e['started']} | {e['status']} | {e['wall_s']:.0f} "
                     f"| {e['load'][0]:.1f} / {e['load'][1]:.1f} | {key_figures(name, size) or 'see its section'} |")
    figures = [(name, entries[name]["figure"]) for name in BENCHMARKS if entries.get(name, {}).get("figure")]
    if figures:
        lines += [""] + [f"![{TITLES[name]}, size {size}](figures/{figure})" for name, figure in figures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, required=True)
    parser.add_argument("--only", default=None, help=f"comma list of benchmarks among {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeats", type=int, default=None, help="override every script's repeat count")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per command (default 1800 at ci size, 14400 at realistic size)")
    parser.add_argument("--no-merge", action="store_true", help="do not rebuild RESULTS.md")
    parser.add_argument("--summary-only", action="store_true",
                        help="run nothing: rebuild results/suite.md and RESULTS.md from the recorded runs")
    args = parser.parse_args(argv)
    names = [] if args.summary_only else list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose among {', '.join(BENCHMARKS)}")
    timeout_s = args.timeout or (1800.0 if args.size == "ci" else 14400.0)
    machine_line, versions_line, commit_line = machine(), versions(), commit()
    RESULTS.mkdir(exist_ok=True)
    FIGURES.mkdir(exist_ok=True)
    state = RESULTS / f"suite-{args.size}.json"
    entries = json.loads(state.read_text()) if state.exists() else {}
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="semc-bench-suite-") as scratch:
        for name in names:
            outcome = benchmark_run(name, size=args.size, repeats=args.repeats, timeout_s=timeout_s,
                                    scratch=Path(scratch))
            plot = _plot(outcome, args.size)
            block_replace(RESULTS / f"{name}.md", args.size, section(
                outcome, size=args.size, machine_line=machine_line, versions_line=versions_line,
                commit_line=commit_line), title=TITLES[name])
            entries[name] = summary_entry(outcome, plot)
            state.write_text(json.dumps(entries, indent=1) + "\n")
            block_replace(RESULTS / "suite.md", args.size, summary(
                entries, size=args.size, machine_line=machine_line, versions_line=versions_line,
                commit_line=commit_line), title="The benchmark suite (`python benchmarks/run.py`)")
            outcomes.append(outcome)
    block_replace(RESULTS / "suite.md", args.size, summary(
        entries, size=args.size, machine_line=machine_line, versions_line=versions_line, commit_line=commit_line),
        title="The benchmark suite (`python benchmarks/run.py`)")
    if not args.no_merge:
        subprocess.run([sys.executable, str(HERE / "results_merge.py")], check=True)
    failed = [o.name for o in outcomes if not o.ok]
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} benchmarks ok"
          + (f"; failed: {', '.join(failed)}" if failed else "") + f"; results in {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
