"""Quality control of a session as it is collected: statistical process control over the result stream.

Pure: plain numbers and frozen dataclasses in, verdicts out; no Django, no broker (tested without a
database). The database side (assessment rows, stored state, messages) is :mod:`semc.events.hooks`.

Per exposure the monitor sees one :class:`ExposureMetrics` (defocus measured and targeted, astigmatism,
CTF-fit resolution, total drift, ice thickness where Leginon measured it) or a processing failure. It
gives

* an **exposure verdict**, keep or reject, with the reasons: a facility's fixed limits (CTF-fit
  resolution worse than 8 Å, ...), a failed CTF fit, or an outlier far from this session's own
  baseline (robust z beyond ``outlier_z``);
* a **session verdict** in the Allen Institute's three words (their QC service, peers.md):

  - ``STOP_NOW``: the data being collected now is bad: ``consecutive_rejects`` exposures in a row were
    rejected (a bad grid square: broken, thick or empty ice), or processing fails too often (in the last
    ``failure_window`` outcomes, ``failure_rate`` of them failed, at least ``failure_min_count``);
  - ``STOP_AT_END``: a sustained change that will not fix itself: a CUSUM or EWMA chart of a metric
    left its in-control band (defocus creeping away from target, ice getting thicker, drift or
    astigmatism rising, resolution falling), or too many rejects over ``reject_window`` exposures.
    Finish the current target list, then stop and re-tune;
  - ``GOOD`` otherwise (also after a recovery).

Charts (one per metric): the baseline is this session's own, the median and MAD-based sigma of the
first ``baseline_n`` kept exposures (a sigma floor stops a very quiet start from alarming on noise).
After the baseline, each kept exposure updates a two-sided tabular CUSUM (Page 1954, E. S. Page,
"Continuous inspection schemes", Biometrika 41:100; reference value k and decision interval h in sigma
units, increments clipped at ``clip_z`` so that one wild exposure cannot alarm alone) and an EWMA chart
(Roberts 1959, Technometrics 1:239; weight lambda, limits L·sigma·sqrt(lambda/(2−lambda))). Rejected
exposures do not feed the charts: they count in the reject rules instead. When a CUSUM alarms, the change
point is estimated as the exposure after the CUSUM last stood at zero (the classic CUSUM change-point
estimate), and the reason gives the shift and the trend (least-squares slope over the recent values).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from semc.base.errors import InvalidParameters

__all__ = [
    "GOOD",
    "STOP_AT_END",
    "STOP_NOW",
    "VERDICTS",
    "ChartRule",
    "ExposureMetrics",
    "ExposureVerdict",
    "Finding",
    "Observation",
    "QcRules",
    "SessionMonitor",
    "SessionVerdict",
]

GOOD, STOP_AT_END, STOP_NOW = "GOOD", "STOP_AT_END", "STOP_NOW"
VERDICTS = (GOOD, STOP_AT_END, STOP_NOW)  # in order of severity

#: metric name -> (unit, words) for reasons an operator reads
METRICS = {
    "defocus_error_um": ("µm", "defocus error (measured − target)"),
    "astigmatism_A": ("Å", "astigmatism"),
    "resolution_A": ("Å", "CTF-fit resolution"),
    "drift_total_A": ("Å", "total drift"),
    "ice_thickness_nm": ("nm", "ice thickness"),
}


def _require(condition: bool, message: str, value: Any) -> None:
    if not condition:
        raise InvalidParameters(f"{message}, got {value!r}")


@dataclass(frozen=True, slots=True)
class ExposureMetrics:
    """What QC reads of one exposure. Defocus is underfocus-positive in µm; ``None``: not measured.

    ``ctf_expected`` says a CTF step ran, so that a missing resolution means the fit failed.
    """

    exposure_id: int
    filename: str = ""
    defocus_target_um: float | None = None
    defocus_measured_um: float | None = None
    astigmatism_A: float | None = None
    resolution_A: float | None = None
    drift_total_A: float | None = None
    ice_thickness_nm: float | None = None
    ctf_expected: bool = False

    @property
    def defocus_error_um(self) -> float | None:
        if self.defocus_target_um is None or self.defocus_measured_um is None:
            return None
        return self.defocus_measured_um - self.defocus_target_um

    def value(self, metric: str) -> float | None:
        value = getattr(self, metric)
        return None if value is None or not math.isfinite(value) else float(value)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["defocus_error_um"] = self.defocus_error_um
        return data


@dataclass(frozen=True, slots=True)
class ChartRule:
    """The rules of one metric.

    Parameters
    ----------
    metric
        One of ``defocus_error_um``, ``astigmatism_A``, ``resolution_A``, ``drift_total_A``,
        ``ice_thickness_nm``.
    direction
        ``up``: only larger values are bad (resolution in Å, drift, ice); ``both``: either way (defocus).
    limit
        Fixed per-exposure limit in the metric's unit (``both``: on the absolute value); beyond it the
        exposure is rejected. ``None``: no fixed limit.
    sigma_floor
        Smallest sigma used for the baseline, in the metric's unit.
    """

    metric: str
    direction: str = "up"
    limit: float | None = None
    sigma_floor: float = 0.0
    outlier_z: float | None = 6.0
    cusum_k: float = 1.0
    cusum_h: float = 6.0
    ewma_lambda: float = 0.2
    ewma_L: float | None = None
    baseline_lambda: float = 0.02
    clip_z: float = 4.0
    enabled: bool = True

    def __post_init__(self) -> None:
        _require(self.metric in METRICS, f"qc chart metric must be one of {', '.join(METRICS)}", self.metric)
        _require(self.direction in ("up", "both"), "qc chart direction must be 'up' or 'both'", self.direction)
        _require(self.sigma_floor >= 0, "qc sigma_floor must be >= 0", self.sigma_floor)
        _require(self.cusum_k >= 0 and self.cusum_h > 0, "qc cusum_k >= 0 and cusum_h > 0", (self.cusum_k, self.cusum_h))
        _require(0 < self.ewma_lambda <= 1 and (self.ewma_L is None or self.ewma_L > 0),
                 "qc ewma_lambda in (0, 1], ewma_L > 0 (or unset: no EWMA alarm)", (self.ewma_lambda, self.ewma_L))
        _require(0 <= self.baseline_lambda < 1, "qc baseline_lambda in [0, 1)", self.baseline_lambda)
        _require(self.clip_z > 0, "qc clip_z must be > 0", self.clip_z)
        _require(self.outlier_z is None or self.outlier_z > 0, "qc outlier_z must be > 0", self.outlier_z)


#: defaults for a 300 kV single-particle session (facility-configurable: see QcRules.from_mapping)
DEFAULT_CHARTS = (
    ChartRule("defocus_error_um", direction="both", limit=1.0, sigma_floor=0.05),
    ChartRule("astigmatism_A", limit=1500.0, sigma_floor=50.0),
    ChartRule("resolution_A", limit=8.0, sigma_floor=0.25),
    ChartRule("drift_total_A", limit=60.0, sigma_floor=1.0),
    ChartRule("ice_thickness_nm", limit=150.0, sigma_floor=2.0, cusum_k=1.5, cusum_h=8.0),  # squares differ
)


@dataclass(frozen=True, slots=True)
class QcRules:
    """A facility's QC rules (``semc.toml``-style mapping via :meth:`from_mapping`)."""

    charts: tuple[ChartRule, ...] = DEFAULT_CHARTS
    baseline_n: int = 20
    consecutive_rejects: int = 4
    failure_window: int = 10
    failure_rate: float = 0.5
    failure_min_count: int = 3
    reject_window: int = 20
    reject_rate: float = 0.4
    trend_window: int = 15

    def __post_init__(self) -> None:
        _require(self.baseline_n >= 3, "qc baseline_n must be >= 3", self.baseline_n)
        _require(self.consecutive_rejects >= 1, "qc consecutive_rejects must be >= 1", self.consecutive_rejects)
        _require(self.failure_window >= 1 and 0 < self.failure_rate <= 1, "qc failure_window >= 1, "
                 "failure_rate in (0, 1]", (self.failure_window, self.failure_rate))
        _require(self.reject_window >= 1 and 0 < self.reject_rate <= 1, "qc reject_window >= 1, "
                 "reject_rate in (0, 1]", (self.reject_window, self.reject_rate))
        _require(self.trend_window >= 2, "qc trend_window must be >= 2", self.trend_window)
        names = [c.metric for c in self.charts]
        _require(len(names) == len(set(names)), "qc charts: one rule per metric", names)

    def chart(self, metric: str) -> ChartRule | None:
        return next((c for c in self.charts if c.metric == metric), None)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "qc rules") -> QcRules:
        """Rules from a mapping such as a TOML file: top-level numbers, and ``[charts.<metric>]`` tables
        that override the defaults of that metric (``enabled = false`` switches a chart off).

        Raises
        ------
        InvalidParameters
            On an unknown key or a bad value, naming the key and ``source``.
        """
        top = {f.name for f in fields(cls)} - {"charts"}
        unknown = sorted(set(data) - top - {"charts"})
        if unknown:
            raise InvalidParameters(f"{source}: unknown key(s) {', '.join(unknown)} (known: charts, "
                                    f"{', '.join(sorted(top))})", path=source)
        charts = {c.metric: c for c in DEFAULT_CHARTS}
        chart_keys = {f.name for f in fields(ChartRule)} - {"metric"}
        for metric, table in dict(data.get("charts", {})).items():
            if metric not in METRICS or not isinstance(table, Mapping):
                raise InvalidParameters(f"{source}: [charts.{metric}] is not a known metric table "
                                        f"({', '.join(METRICS)})", path=source)
            bad = sorted(set(table) - chart_keys)
            if bad:
                raise InvalidParameters(f"{source}: [charts.{metric}] unknown key(s) {', '.join(bad)}", path=source)
            charts[metric] = replace(charts[metric], **table)
        values = {k: v for k, v in data.items() if k != "charts"}
        try:
            return cls(charts=tuple(charts.values()), **values)
        except (TypeError, InvalidParameters) as exc:
            raise InvalidParameters(f"{source}: {exc}", path=source) from None


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired: which, on what, and in words."""

    rule: str  # limit | ctf_fit_failed | outlier | cusum | ewma | consecutive_rejects | failure_rate | reject_rate
    metric: str | None
    message: str
    value: float | None = None
    threshold: float | None = None
    since_exposure_id: int | None = None


@dataclass(frozen=True, slots=True)
class ExposureVerdict:
    exposure_id: int
    keep: bool
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionVerdict:
    verdict: str
    reason: str
    findings: tuple[Finding, ...] = ()
    exposures_seen: int = 0


@dataclass(frozen=True, slots=True)
class Observation:
    """What one observation produced: the exposure's verdict (None for a failure), the session verdict
    now, and whether it changed (the first verdict after the baseline counts as a change)."""

    exposure: ExposureVerdict | None
    session: SessionVerdict
    changed: bool


@dataclass
class _Chart:
    """The running state of one metric's chart (plain numbers and lists: JSON-serialisable)."""

    values: list[float] = field(default_factory=list)  # baseline values, then the recent kept values
    ids: list[int] = field(default_factory=list)
    center: float | None = None
    sigma: float | None = None
    cusum_hi: float = 0.0
    cusum_lo: float = 0.0
    zero_hi_after: int | None = None  # first exposure after the CUSUM last stood at zero
    zero_lo_after: int | None = None
    ewma: float | None = None
    n: int = 0


class SessionMonitor:
    """Per-session SPC. ``observe(metrics)`` or ``observe_failure(id)`` after each stored result; state
    round-trips through :meth:`state` / :meth:`from_state` (kept in the database across restarts)."""

    def __init__(self, rules: QcRules | None = None) -> None:
        self.rules = rules or QcRules()
        self.charts: dict[str, _Chart] = {c.metric: _Chart() for c in self.rules.charts if c.enabled}
        self.outcomes: list[int] = []  # 1 failed, 0 stored (last failure_window)
        self.rejects: list[int] = []  # 1 rejected, 0 kept (last reject_window)
        self.consecutive: list[int] = []  # ids of the current run of rejected exposures
        self.seen = 0
        self.verdict: SessionVerdict | None = None

    # --- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"charts": {k: asdict(v) for k, v in self.charts.items()}, "outcomes": list(self.outcomes),
                "rejects": list(self.rejects), "consecutive": list(self.consecutive), "seen": self.seen,
                "verdict": None if self.verdict is None else _verdict_dict(self.verdict)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], rules: QcRules | None = None) -> SessionMonitor:
        monitor = cls(rules)
        for metric, chart in state.get("charts", {}).items():
            if metric in monitor.charts:
                monitor.charts[metric] = _Chart(**chart)
        monitor.outcomes = list(state.get("outcomes", []))
        monitor.rejects = list(state.get("rejects", []))
        monitor.consecutive = list(state.get("consecutive", []))
        monitor.seen = int(state.get("seen", 0))
        verdict = state.get("verdict")
        if verdict:
            monitor.verdict = SessionVerdict(
                verdict=verdict["verdict"], reason=verdict["reason"], exposures_seen=verdict["exposures_seen"],
                findings=tuple(Finding(**f) for f in verdict["findings"]))
        return monitor

    @property
    def baseline_ready(self) -> bool:
        return any(c.center is not None for c in self.charts.values())

    # --- observations -------------------------------------------------------------------------------
    def observe(self, metrics: ExposureMetrics) -> Observation:
        """One stored exposure: its keep/reject verdict, the charts, the session verdict."""
        self.seen += 1
        self._push(self.outcomes, 0, self.rules.failure_window)
        findings = self._exposure_findings(metrics)
        keep = not findings
        if keep and len(self.consecutive) >= self.rules.consecutive_rejects:
            # a run of rejects that ended (the operator moved on) was answered by STOP_NOW already:
            # it does not also hold the session at STOP_AT_END through the reject-rate window
            start = max(0, len(self.rejects) - len(self.consecutive))
            self.rejects[start:] = [0] * (len(self.rejects) - start)
        self._push(self.rejects, 0 if keep else 1, self.rules.reject_window)
        self.consecutive = [] if keep else self.consecutive + [metrics.exposure_id]
        if keep:
            for metric, chart in self.charts.items():
                value = metrics.value(metric)
                if value is not None:
                    self._chart_update(self.rules.chart(metric), chart, value, metrics.exposure_id)
        return self._session(ExposureVerdict(metrics.exposure_id, keep, tuple(findings)))

    def observe_failure(self, exposure_id: int) -> Observation:
        """A failed processing attempt (counts in the failure rate; no exposure verdict)."""
        self.seen += 1
        self._push(self.outcomes, 1, self.rules.failure_window)
        return self._session(None)

    @staticmethod
    def _push(window: list[int], value: int, size: int) -> None:
        window.append(value)
        del window[:-size]

    def _exposure_findings(self, metrics: ExposureMetrics) -> list[Finding]:
        findings = []
        if metrics.ctf_expected and metrics.value("resolution_A") is None:
            findings.append(Finding("ctf_fit_failed", "resolution_A", "the CTF fit failed (no fit resolution)"))
        for rule in self.rules.charts:
            value = metrics.value(rule.metric)
            if not rule.enabled or value is None:
                continue
            unit, words = METRICS[rule.metric]
            size = abs(value) if rule.direction == "both" else value
            if rule.limit is not None and size > rule.limit:
                findings.append(Finding("limit", rule.metric, f"{words} {value:.3g} {unit} beyond the limit "
                                        f"{rule.limit:g} {unit}", value, rule.limit))
                continue
            chart = self.charts[rule.metric]
            if rule.outlier_z is not None and chart.center is not None:
                z = self._z(rule, chart, value)
                if z > rule.outlier_z:
                    findings.append(Finding("outlier", rule.metric, f"{words} {value:.3g} {unit} is {z:.1f} sigma "
                                            f"from this session's baseline {chart.center:.3g} {unit}", value,
                                            rule.outlier_z))
        return findings

    @staticmethod
    def _z(rule: ChartRule, chart: _Chart, value: float) -> float:
        z = (value - chart.center) / chart.sigma
        return abs(z) if rule.direction == "both" else z

    def _chart_update(self, rule: ChartRule, chart: _Chart, value: float, exposure_id: int) -> None:
        chart.values.append(value)
        chart.ids.append(exposure_id)
        if chart.center is None:
            if len(chart.values) >= self.rules.baseline_n:
                chart.center = statistics.median(chart.values)
                mad = statistics.median(abs(v - chart.center) for v in chart.values)
                # the larger of two estimates: a short baseline underestimates sigma more often than
                # not, and an underestimated sigma is what makes a chart cry wolf
                chart.sigma = max(1.4826 * mad, statistics.stdev(chart.values), rule.sigma_floor, 1e-12)
                chart.ewma = chart.center
                chart.values, chart.ids = [], []
            return
        del chart.values[:-self.rules.trend_window]
        del chart.ids[:-self.rules.trend_window]
        chart.n += 1
        z = max(-rule.clip_z, min(rule.clip_z, (value - chart.center) / chart.sigma))
        hi = max(0.0, chart.cusum_hi + z - rule.cusum_k)
        lo = max(0.0, chart.cusum_lo - z - rule.cusum_k) if rule.direction == "both" else 0.0
        if chart.cusum_hi == 0.0 and hi > 0.0:
            chart.zero_hi_after = exposure_id
        if chart.cusum_lo == 0.0 and lo > 0.0:
            chart.zero_lo_after = exposure_id
        chart.cusum_hi, chart.cusum_lo = hi, lo
        chart.ewma = rule.ewma_lambda * value + (1 - rule.ewma_lambda) * chart.ewma
        if max(hi, lo) < rule.cusum_h / 2 and rule.baseline_lambda > 0:
            # a running baseline, learnt from in-control exposures only (both CUSUMs below half their
            # decision interval): a slow creep lifts a CUSUM and freezes the baseline before it is absorbed
            delta = value - chart.center
            chart.center += rule.baseline_lambda * delta
            variance = (1 - rule.baseline_lambda) * (chart.sigma ** 2 + rule.baseline_lambda * delta ** 2)
            chart.sigma = max(math.sqrt(variance), rule.sigma_floor, 1e-12)

    # --- the session verdict ---------------------------------------------------------------------------
    def _session(self, exposure: ExposureVerdict | None) -> Observation:
        now_findings = self._stop_now_findings()
        end_findings = self._stop_at_end_findings()
        if now_findings:
            verdict = SessionVerdict(STOP_NOW, "; ".join(f.message for f in now_findings),
                                     tuple(now_findings + end_findings), self.seen)
        elif end_findings:
            verdict = SessionVerdict(STOP_AT_END, "; ".join(f.message for f in end_findings), tuple(end_findings),
                                     self.seen)
        else:
            verdict = SessionVerdict(GOOD, self._good_reason(), (), self.seen)
        if self.verdict is None and verdict.verdict == GOOD and not self.baseline_ready:
            return Observation(exposure, verdict, False)  # nothing to say before a baseline exists
        changed = self.verdict is None or self.verdict.verdict != verdict.verdict or (
            {f.rule for f in self.verdict.findings} != {f.rule for f in verdict.findings})
        self.verdict = verdict
        return Observation(exposure, verdict, changed)

    def _good_reason(self) -> str:
        parts = [f"{METRICS[m][1]} {c.center:.3g}±{c.sigma:.2g} {METRICS[m][0]}" for m, c in self.charts.items()
                 if c.center is not None]
        if not parts:
            return f"no problem seen in {self.seen} exposures (no baseline yet)"
        return f"in control after {self.seen} exposures; baseline: " + ", ".join(parts)

    def _stop_now_findings(self) -> list[Finding]:
        r = self.rules
        found = []
        if len(self.consecutive) >= r.consecutive_rejects:
            found.append(Finding("consecutive_rejects", None, f"{len(self.consecutive)} exposures in a row rejected "
                                 f"since exposure {self.consecutive[0]} (a bad grid square?)", len(self.consecutive),
                                 r.consecutive_rejects, self.consecutive[0]))
        failed = sum(self.outcomes)
        if len(self.outcomes) >= min(r.failure_window, r.failure_min_count) and failed >= r.failure_min_count and (
                failed / len(self.outcomes) >= r.failure_rate):
            found.append(Finding("failure_rate", None, f"{failed} of the last {len(self.outcomes)} processing "
                                 f"attempts failed", failed / len(self.outcomes), r.failure_rate))
        return found

    def _stop_at_end_findings(self) -> list[Finding]:
        r = self.rules
        found = []
        for metric, chart in self.charts.items():
            if chart.center is None or chart.n == 0:
                continue
            rule = r.chart(metric)
            unit, words = METRICS[metric]
            slope = _slope(chart.values)
            trend = f", trend {slope:+.2g} {unit}/exposure" if slope is not None else ""
            limit = (rule.ewma_L or math.inf) * chart.sigma * math.sqrt(rule.ewma_lambda / (2 - rule.ewma_lambda))
            shift = chart.ewma - chart.center
            for stat, after, sign in ((chart.cusum_hi, chart.zero_hi_after, "up"),
                                      (chart.cusum_lo, chart.zero_lo_after, "down")):
                if stat > rule.cusum_h:
                    found.append(Finding("cusum", metric, f"{words} shifted {sign} from its baseline "
                                         f"{chart.center:.3g} {unit} since exposure {after} (now {chart.ewma:.3g} "
                                         f"{unit} smoothed{trend})", stat, rule.cusum_h, after))
            if (shift > limit or (rule.direction == "both" and shift < -limit)) and not any(
                    f.metric == metric for f in found):
                found.append(Finding("ewma", metric, f"{words} smoothed {chart.ewma:.3g} {unit} outside "
                                     f"{chart.center:.3g}±{limit:.2g} {unit}{trend}", chart.ewma, limit))
        if len(self.rejects) >= r.reject_window and sum(self.rejects) / len(self.rejects) >= r.reject_rate:
            found.append(Finding("reject_rate", None, f"{sum(self.rejects)} of the last {len(self.rejects)} "
                                 f"exposures rejected", sum(self.rejects) / len(self.rejects), r.reject_rate))
        return found


def _slope(values: list[float]) -> float | None:
    """Least-squares slope per exposure of the recent values (None with fewer than three)."""
    n = len(values)
    if n < 3:
        return None
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    den = sum((i - mean_x) ** 2 for i in range(n))
    return sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / den


def _verdict_dict(verdict: SessionVerdict) -> dict[str, Any]:
    return asdict(verdict)
