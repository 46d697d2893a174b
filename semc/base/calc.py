"""Pure helpers shared by the steps: image-set algebra, ordering, back-off, tilt filters.

Nothing here touches a database, a file or a cluster: the controller's planning is
set algebra plus ordering, tested without a database (style convention 7).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

from semc.base.errors import InvalidParameters

__all__ = [
    "plan_batch",
    "order_freshness_first",
    "retry_delay_s",
    "TILT_MODES",
    "tilt_rejected",
]

TILT_MODES = ("all", "notilt", "hightilt", "lowtilt", "minustilt", "plustilt")


def plan_batch(
    all_ids: Iterable[int],
    done: Collection[int],
    waiting: Collection[int],
    in_flight: Collection[int],
    rejected: Collection[int],
    reprocess: Collection[int] = (),
    *,
    limit: int,
    live: bool = False,
    reverse: bool = False,
    newest_next: bool = True,
) -> list[int]:
    """The exposure ids to submit now, in submission order.

    pending = (all − done − rejected) ∪ (reprocess − rejected), minus what is in flight
    and what is waiting (failed and in back-off, or deferred because its input is not
    ready). Ordering: while the session is live, freshness first (the newest exposure,
    then alternately the oldest of the backlog and the next newest, so neither starves);
    otherwise oldest first (``reverse``: newest first), as classic Appion does.

    Parameters
    ----------
    limit
        Free in-flight slots: at most this many ids are returned (streaming, R4).
    newest_next
        While live, whether the first pick is the newest (True) or the oldest of the backlog: the
        controller alternates it across calls, so that one free slot at a time still drains the backlog.
    """
    if limit < 0:
        raise InvalidParameters(f"limit must be >= 0, got {limit}")
    blocked = set(rejected)
    pending = (set(all_ids) - set(done) - blocked) | (set(reprocess) - blocked)
    pending -= set(in_flight)
    pending -= set(waiting)
    ordered = sorted(pending, reverse=reverse)
    if live:
        ordered = order_freshness_first(ordered, newest_first=newest_next)
    return ordered[:limit]


def order_freshness_first(ids: Sequence[int], *, newest_first: bool = True) -> list[int]:
    """Newest first, then alternate oldest / next newest: the operator sees current quality at once,
    and the backlog drains at half the throughput instead of starving behind a live session."""
    remaining = sorted(ids)
    out: list[int] = []
    take_newest = newest_first
    low, high = 0, len(remaining) - 1
    while low <= high:
        if take_newest:
            out.append(remaining[high])
            high -= 1
        else:
            out.append(remaining[low])
            low += 1
        take_newest = not take_newest
    return out


def retry_delay_s(attempts: int, *, base_s: float = 10.0, cap_s: float = 600.0) -> float:
    """Exponential back-off before retry number ``attempts`` (1-based): base·2^(attempts−1), capped."""
    if attempts < 1:
        raise InvalidParameters(f"attempts must be >= 1, got {attempts}")
    return min(cap_s, base_s * 2.0 ** (attempts - 1))


def tilt_rejected(stage_alpha_rad: float | None, mode: str) -> bool:
    """Whether an exposure at stage tilt α is skipped by the classic ``--tiltangle`` filter (compat §2.2).

    notilt skips |α| > 3°; hightilt skips |α| < 30°; lowtilt skips |α| ≥ 30°;
    minustilt skips α > −2°; plustilt skips α < 2°; all skips nothing.
    """
    if mode not in TILT_MODES:
        raise InvalidParameters(f"unknown tilt filter {mode!r} (use {', '.join(TILT_MODES)})")
    if mode == "all":
        return False
    alpha = round(math.degrees(stage_alpha_rad or 0.0), 9)  # radians round trip: 30° must stay 30°
    return {
        "notilt": abs(alpha) > 3.0,
        "hightilt": abs(alpha) < 30.0,
        "lowtilt": abs(alpha) >= 30.0,
        "minustilt": alpha > -2.0,
        "plustilt": alpha < 2.0,
    }[mode]
