"""What the demo prints (pure: figures in, text out): the progress line, the summary, the next steps."""

from __future__ import annotations

from dataclasses import dataclass

from semc.demo.accuracy import SessionReport

__all__ = ["Progress", "duration_text", "next_steps_text", "progress_line", "summary_text"]


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of the run, from the Leginon rows and SEMC's ledger (the last step's line)."""

    planned: int
    arrived: int  # exposures the microscope has written (files and rows)
    stored: int  # exposures done in every step
    failed: int  # failed (retrying) or quarantined
    backlog: int  # known to the daemon, not yet stored
    throughput_per_min: float | None  # None until two exposures are stored (one gives no rate)
    latency_p50_s: float | None
    latency_p95_s: float | None
    elapsed_s: float
    phase: str  # what the demo is doing: waiting for the microscope, processing, stopping


def duration_text(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``)."""
    seconds = round(max(seconds, 0.0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def progress_line(p: Progress, *, width: int = 24, unicode: bool = True) -> str:
    """One line: a bar (stored / arrived / still to come), counts, backlog, throughput and latency."""
    full, part, empty = ("█", "▒", "·") if unicode else ("#", "+", ".")
    planned = max(p.planned, 1)
    n_stored = round(width * min(p.stored, planned) / planned)
    n_arrived = max(round(width * min(p.arrived, planned) / planned) - n_stored, 0)
    bar = full * n_stored + part * n_arrived + empty * (width - n_stored - n_arrived)
    failed = f"  failed {p.failed}" if p.failed else ""
    return (f"[{bar}] {p.stored:>3}/{p.planned} stored  arrived {p.arrived:>3}  backlog {p.backlog:>2}{failed}"
            f"  {_number(p.throughput_per_min, '5.1f'):>5}/min  latency p50 {_seconds(p.latency_p50_s)}"
            f" p95 {_seconds(p.latency_p95_s)}  {duration_text(p.elapsed_s)}  {p.phase}")


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "no data"}[ok]


def summary_text(report: SessionReport, *, description: str) -> str:
    """The summary table (one line per exposure) and the session's figures."""
    lines = [f"Summary of session {report.session} ({description})", "",
             (f"{'#':>3}  {'exposure':<14} {'state':<11} {'drift px':>8} {'(true)':>8} {'RMS err':>8}"
             f" {'defocus µm':>10} {'(true)':>8} {'error':>8} {'fit Å':>6} {'latency':>8}")]
    for index, e in enumerate(report.exposures, start=1):
        error = "–" if e.defocus_error_percent is None else f"{e.defocus_error_percent:+.2f} %"
        name = e.filename[len(report.session) + 1:] if e.filename.startswith(report.session + "_") else e.filename
        lines.append(
            f"{index:>3}  {name[-14:]:<14} {e.state:<11} {_number(e.drift_found_px, '.2f'):>8}"
            f" {e.drift_true_px:>8.2f} {_number(e.drift_rms_error_px, '.3f'):>8}"
            f" {_number(e.defocus_found_um, '.3f'):>10} {e.defocus_true_um:>8.3f} {error:>8}"
            f" {_number(e.fit_resolution_angstrom, '.1f'):>6} {_number(e.latency_s, '.1f'):>6} s")
        if e.error:
            lines.append(f"{'':>5}{e.error[:200]}")
    lines += [
        "",
        "drift: path length of the trajectory stored (ApDDFrameTrajectoryData) and simulated; RMS err: RMS over",
        "frames of stored − simulated position after removing the common offset. defocus: mean of defocus1 and",
        "defocus2 stored (ApCtfData) and simulated. latency: the exposure's row to its CTF result stored.",
        "",
        (f"Accuracy    drift RMS error   median {_number(report.drift_rms_error_median_px, '.3f')} px,"
        f" max {_number(report.drift_rms_error_max_px, '.3f')} px"
        f"   (target ≤ {report.drift_target_px:g} px: {_verdict(report.drift_within_target)})"),
        (f"            defocus error     median {_number(report.defocus_error_median_percent, '.2f')} %,"
        f" max {_number(report.defocus_error_max_percent, '.2f')} %"
        f"   (target ≤ {report.defocus_target_percent:g} %: {_verdict(report.defocus_within_target)})"),
        (f"Latency     arrival → stored  p50 {_seconds(report.latency_p50_s)}, p95 {_seconds(report.latency_p95_s)},"
        f" max {_seconds(report.latency_max_s)}"),
        (f"Throughput  {_number(report.throughput_per_min, '.1f')} exposures/min stored"
        f" (microscope: {_number(report.arrival_per_min, '.1f')}/min);"
        f" worker time {_seconds(report.worker_s_median)} per exposure (median)"),
        (f"Stored      {report.stored} of {report.planned}, {report.failed} failed; wall time "
        f"{duration_text(report.wall_s)}"),
    ]
    return "\n".join(lines)


def next_steps_text(*, home: str, kept: bool, web_url: str, summary_path: str | None,
                    overridden: list[str]) -> str:
    """How to look at the demo's data: the dashboard and the admin, and a login for them."""
    if not kept:
        return (f"The demo's data ({home}) was removed. Keep it with --keep (or choose it with --home DIR)\n"
                "to open it in the dashboard and the admin afterwards.")
    lines = [f"The demo's data is kept in {home}" + (f" (summary: {summary_path})" if summary_path else "") + ".",
             "Look at it in the dashboard and the admin:", "",
             f"  export SEMC_HOME={home}",
             "  python -m django createsuperuser --settings semc.settings   # a login, once",
             f"  semc web                                                   # then open {web_url}",
             f"                                                             # (admin: {web_url}admin/)"]
    if overridden:
        lines += ["", f"(The demo ignored {', '.join(overridden)} from your environment: unset them in that shell,",
                  " or they point the commands above at another database.)"]
    return "\n".join(lines)
