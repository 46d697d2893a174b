"""The suite's figures from the benchmark scripts' own output: markdown tables parsed, key figures, plots.

Each ``bench_*.py`` prints markdown tables; :func:`tables_parse` reads them back as rows (header → cell),
:data:`KEY_FIGURES` picks the one-line figures the suite's summary quotes, and :data:`PLOTS` draws the
PNGs in ``benchmarks/figures/`` (matplotlib, Agg). A table whose layout changed gives no key figure and
no plot (the section still holds the script's whole output), never a wrong number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["KEY_FIGURES", "PLOTS", "number", "tables_parse"]

Rows = list[dict[str, str]]


def tables_parse(text: str) -> list[Rows]:
    """Every markdown table in ``text``: a list of rows, each a dict from header to cell text."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2 and all(set(c) <= set("-: ") for c in block[1]):
            header = block[0]
            tables.append([dict(zip(header, row)) for row in block[2:] if len(row) == len(header)])
        block = []
    return tables


def number(text: str | None) -> float | None:
    """The first number in a cell (``"2.4"``, ``"45.4 s"``, ``"1,234"``), None when there is none."""
    match = re.search(r"[-+]?\d[\d,]*(?:\.\d+)?", text or "")
    return None if match is None else float(match.group().replace(",", ""))


def _rows_with(tables: list[Rows], *columns: str) -> Rows:
    return [row for table in tables for row in table if all(c in row for c in columns)]


# --- key figures: one short line per benchmark ----------------------------------------------------


def _key_io(tables: list[Rows], _data: dict) -> str:
    parts = []
    for row in _rows_with(tables, "case", "result"):
        ratio = re.search(r"ratio ours/imagecodecs ([\d.]+)", row["result"])
        if ratio and row["case"].startswith("EER"):
            threads = re.search(r"(\d) thread", row["case"])
            label = "decoder alone" if "alone" in row["case"] else f"grouped read, {threads.group(1)} thr"
            parts.append(f"EER {label}: {ratio.group(1)}× imagecodecs' speed")
    return "; ".join(parts)


def _key_motioncorrection(tables: list[Rows], _data: dict) -> str:
    return "; ".join(f"{r['movie']}: {r['ours, s (median)']} s vs RELION {r['RELION, s (median)']} s "
                     f"(ratio {r['ratio']})" for r in _rows_with(tables, "movie", "ours, s (median)",
                                                                 "RELION, s (median)", "ratio"))


def _short(label: str) -> str:
    """A table's row label, short enough for a plot's axis or a summary line."""
    text = re.sub(r"\s*\(.*?\)", "", label).replace("micrograph ", "").replace("real amplitude spectrum", "spectrum")
    text = re.sub(r", box \d+", "", text)
    return text.replace(", exhaustive", " exh.").replace(", default search", "")[:30]


def _key_ctf(tables: list[Rows], _data: dict) -> str:
    return "; ".join(f"{_short(r['input'])} ({r['FFT threads']} thr): {r['wall s (median)']} s wall, "
                     f"{r['CPU s (median)']} s CPU"
                     for r in _rows_with(tables, "input", "FFT threads", "wall s (median)", "CPU s (median)")
                     if "exhaustive" not in r["input"] and "/" not in r["input"].split("(")[0])


def _key_simulation(tables: list[Rows], _data: dict) -> str:
    return "; ".join(f"{r['case']}: {r['median s']} s" for r in _rows_with(tables, "case", "median s"))


def _key_external_runner(tables: list[Rows], _data: dict) -> str:
    rows = {r["case"]: number(r["median (ms)"]) for r in _rows_with(tables, "case", "median (ms)")}
    floor = next((v for k, v in rows.items() if "floor" in k), None)
    ours = next((v for k, v in rows.items() if k.startswith("external.run")), None)
    dialog = next((v for k, v in rows.items() if k.startswith("run_interactive")), None)
    if floor is None or ours is None:
        return ""
    text = f"runner overhead {ours - floor:+.1f} ms over a {floor:.0f} ms process start"
    return text + (f"; 18-answer dialog {dialog:.0f} ms" if dialog is not None else "")


def _key_daemon(tables: list[Rows], _data: dict) -> str:
    wanted = ("exposures in the session", "incremental poll", "full reconcile", "latency arrival", "throughput")
    return "; ".join(f"{r['what']}: {r['figure']}" for r in _rows_with(tables, "what", "figure")
                     if r["what"].startswith(wanted))


def _key_ingest(tables: list[Rows], _data: dict) -> str:
    wanted = ("tree", "first pass", "pass with nothing new", "pass after")
    return "; ".join(f"{r['what'].split(':')[0].split(',')[0]}: {r['figure']}" for r in _rows_with(tables, "what", "figure")
                     if r["what"].startswith(wanted))


KEY_FIGURES: dict[str, Callable[[list[Rows], dict], str]] = {
    "io": _key_io, "simulation": _key_simulation, "motioncorrection": _key_motioncorrection, "ctf": _key_ctf,
    "external_runner": _key_external_runner, "daemon": _key_daemon, "ingest": _key_ingest,
}


# --- plots -----------------------------------------------------------------------------------------


def _figure(title: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _bars(ax, labels: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    if len(series) > 1:
        ax.legend(fontsize=8)


def _plot_motioncorrection(tables: list[Rows], _data: dict, path: Path, caption: str) -> Path | None:
    rows = _rows_with(tables, "movie", "ours, s (median)", "RELION, s (median)")
    if not rows:
        return None
    fig, ax = _figure(f"Motion correction, seconds per movie (median) — {caption}", "seconds")
    _bars(ax, [r["movie"] for r in rows], {"SEMC (semc-motioncor2)": [number(r["ours, s (median)"]) for r in rows],
                                           "RELION 3.1 --use_own": [number(r["RELION, s (median)"]) or 0.0
                                                                    for r in rows]})
    return _save(fig, path)


def _plot_io(tables: list[Rows], _data: dict, path: Path, caption: str) -> Path | None:
    labels, ours, theirs = [], [], []
    for row in _rows_with(tables, "case", "result"):
        m = re.search(r"ours (\d+) frames/s.*imagecodecs (\d+) frames/s", row["result"])
        if m:
            threads = re.search(r"(\d) thread", row["case"])
            labels.append("decoder alone" if "alone" in row["case"] else f"grouped read, {threads.group(1)} thr")
            ours.append(float(m.group(1)))
            theirs.append(float(m.group(2)))
    if not labels:
        return None
    fig, ax = _figure(f"EER decoding, frames per second — {caption}", "frames/s")
    _bars(ax, labels, {"SEMC": ours, "imagecodecs": theirs})
    return _save(fig, path)


def _plot_column(title: str, label_key: str, value_keys: tuple[str, ...], ylabel: str, *, log: bool = False):
    def plot(tables: list[Rows], _data: dict, path: Path, caption: str) -> Path | None:
        rows = [r for r in _rows_with(tables, label_key, *value_keys) if number(r[value_keys[0]]) is not None]
        if not rows:
            return None
        fig, ax = _figure(f"{title} — {caption}", ylabel)
        _bars(ax, [_short(r[label_key]) for r in rows], {k: [number(r[k]) or 0.0 for r in rows] for k in value_keys})
        ax.tick_params(axis="x", labelrotation=20)
        values = [v for v in (number(r[k]) for r in rows for k in value_keys) if v]
        if log and values and max(values) / min(values) > 20:  # a wide range: bars on a log axis
            ax.set_yscale("log")
        return _save(fig, path)

    return plot


def _plot_daemon(_tables: list[Rows], data: dict, path: Path, caption: str) -> Path | None:
    replay = data.get("replay") or {}
    points = replay.get("exposures") or []
    if not points:
        return None
    fig, ax = _figure(f"Live replay: latency of each exposure, one every {replay.get('interval_s', 0):g} s — "
                      f"{caption}", "arrival → stored, s")
    ax.plot([p[0] for p in points], [p[1] for p in points], "o-", markersize=3)
    ax.set_xlabel("arrival, s from the first exposure")
    return _save(fig, path)


PLOTS = {
    "motioncorrection": _plot_motioncorrection,
    "io": _plot_io,
    "simulation": _plot_column("Simulation, seconds per case (median)", "case", ("median s",), "seconds", log=True),
    "ctf": _plot_column("CTF estimation, seconds per micrograph (median)", "input",
                        ("wall s (median)", "CPU s (median)"), "seconds"),
    "external_runner": _plot_column("External-program runner, milliseconds per call (median)", "case",
                                    ("median (ms)",), "ms"),
    "daemon": _plot_daemon,
}


def json_read(path: Path) -> dict:
    """A benchmark's JSON figures (empty when the script did not write them)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
