"""A canary's timeline as a picture: traffic weight, error rate per arm, p99, decisions marked.

The controller records one :class:`CanaryTick` per decision (the canary sensor keeps them in its
observations of ``deployed_model``); :func:`canary_timeline_figure` draws any sequence of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlplatform.deployment.canary import Decision

# Timeline entries marked with a vertical line: (colour, style, label). A "hold" is every other
# tick; "counter_reset" is a restart of the serving process.
_MARKED = {
    "advance": ("#2ca02c", "--", None),  # labelled with the new weight
    "promote": ("#2ca02c", "-", "promote"),
    "rollback": ("#d62728", "-", "rollback"),
    "aborted": ("#d62728", "-", "aborted"),
    "counter_reset": ("grey", ":", "restart"),
}
CANARY_COLOUR, CHAMPION_COLOUR, WEIGHT_COLOUR = "#ff7f0e", "#1f77b4", "#6a3d9a"


@dataclass(frozen=True)
class CanaryTick:
    """What one controller tick saw and did (counts are cumulative since the canary started).

    Attributes:
        time: Epoch seconds of the decision.
        action: "hold", "advance", "promote" or "rollback".
        weight_before: Canary traffic weight the tick's evidence was gathered at.
        weight: Canary traffic weight after the decision (0 once promoted or rolled back).
        canary_requests: Canary requests so far.
        canary_errors: Canary errors so far.
        champion_requests: Champion requests so far.
        champion_errors: Champion errors so far.
        canary_p99_seconds: The canary's p99 latency so far, if the histogram has one.
        champion_p99_seconds: The champion's p99 latency so far, if the histogram has one.
    """

    time: float
    action: str
    weight_before: float
    weight: float
    canary_requests: float = 0.0
    canary_errors: float = 0.0
    champion_requests: float = 0.0
    champion_errors: float = 0.0
    canary_p99_seconds: float | None = None
    champion_p99_seconds: float | None = None

    @classmethod
    def from_decision(cls, decision: Decision) -> CanaryTick:
        """The tick of a controller decision (its evidence and the state after it)."""
        evidence, state = decision.evidence, decision.new_state
        errors, latency = evidence.get("errors", {}), evidence.get("latency", {})
        return cls(
            time=state.updated_at,
            action=decision.action,
            weight_before=float(evidence.get("weight", state.weight)),
            weight=state.weight,
            canary_requests=float(errors.get("canary_requests", 0.0)),
            canary_errors=float(errors.get("canary_errors", 0.0)),
            champion_requests=float(errors.get("champion_requests", 0.0)),
            champion_errors=float(errors.get("champion_errors", 0.0)),
            canary_p99_seconds=latency.get("canary_p99_seconds"),
            champion_p99_seconds=latency.get("champion_p99_seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CanaryTick:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def _rate(errors: float, requests: float) -> float | None:
    return 100.0 * errors / requests if requests > 0 else None


def _time_unit(span_seconds: float) -> tuple[str, float]:
    """The time axis' unit and its length in seconds: a few ticks or a three-hour canary."""
    if span_seconds < 120:
        return "seconds", 1.0
    if span_seconds < 3 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0


def _room_for_legend(axes) -> None:
    """Headroom above the data for a one-row legend, so it never hides the first points."""
    top = max((max(line.get_ydata(), default=0.0) for line in axes.get_lines()), default=0.0)
    axes.set_ylim(0.0, max(top, 1e-3) * 1.45)
    if any(not line.get_label().startswith("_") for line in axes.get_lines()):
        axes.legend(fontsize=7, loc="upper left", ncol=3, frameon=False)


def canary_timeline_figure(
    ticks: Sequence[CanaryTick],
    *,
    started_at: float | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    max_error_rate: float | None = None,
    title: str = "canary",
):
    """Weight over time above the error rate of each arm (and p99 per arm when measured).

    Args:
        ticks: Controller ticks in time order (at least one).
        started_at: Epoch seconds the canary started (default: the first tick); the time axis
            counts seconds, minutes or hours from it (whichever suits the span).
        events: Extra timeline entries (``{"time": ..., "event": ...}``, e.g. the state's
            ``history``); those named in ``_MARKED`` are drawn as well as the ticks' own
            advance / promote / rollback decisions.
        max_error_rate: The canary's absolute error-rate ceiling, drawn as a dashed line.
        title: Figure title.

    Returns:
        A matplotlib Figure (headless).
    """
    if not ticks:
        raise ValueError("a canary timeline needs at least one tick")
    # Imported here: matplotlib costs half a second and only the pictures need it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    start = ticks[0].time if started_at is None else started_at
    unit, per = _time_unit(ticks[-1].time - start)
    offsets = [(t.time - start) / per for t in ticks]
    has_p99 = any(t.canary_p99_seconds is not None for t in ticks)
    figure = Figure(figsize=(6.0, 4.6 if has_p99 else 3.6), dpi=90)
    panels = figure.subplots(3 if has_p99 else 2, 1, sharex=True)
    weight_axes, error_axes = panels[0], panels[1]

    weight_axes.plot(
        [0.0, *offsets],
        [100.0 * ticks[0].weight_before, *(100.0 * t.weight for t in ticks)],
        drawstyle="steps-post",
        color=WEIGHT_COLOUR,
        linewidth=1.8,
        label="canary weight",
    )
    weight_axes.set_ylim(-5, 125)  # the decisions' labels go above 100%
    weight_axes.set_yticks([0, 25, 50, 75, 100])
    weight_axes.set_ylabel("weight %", fontsize=8)

    for arm, colour in (("canary", CANARY_COLOUR), ("champion", CHAMPION_COLOUR)):
        points = [
            (m, _rate(getattr(t, f"{arm}_errors"), getattr(t, f"{arm}_requests")))
            for m, t in zip(offsets, ticks, strict=True)
        ]
        points = [(m, r) for m, r in points if r is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            requests = getattr(ticks[-1], f"{arm}_requests")
            error_axes.plot(
                xs, ys, marker=".", markersize=4, color=colour, label=f"{arm} ({requests:.0f} req)"
            )
    if max_error_rate is not None:
        error_axes.axhline(
            100.0 * max_error_rate, linestyle="--", color="#d62728", linewidth=0.9, label="ceiling"
        )
    _room_for_legend(error_axes)
    error_axes.set_ylabel("error rate %\nsince start", fontsize=8)

    if has_p99:
        p99_axes = panels[2]
        for arm, colour in (("canary", CANARY_COLOUR), ("champion", CHAMPION_COLOUR)):
            points = [
                (m, 1000.0 * getattr(t, f"{arm}_p99_seconds"))
                for m, t in zip(offsets, ticks, strict=True)
                if getattr(t, f"{arm}_p99_seconds") is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                p99_axes.plot(xs, ys, marker=".", markersize=4, color=colour, label=arm)
        _room_for_legend(p99_axes)
        p99_axes.set_ylabel("p99 ms", fontsize=8)

    marks = [(m, t.action, t.weight) for m, t in zip(offsets, ticks, strict=True)]
    marks += [((e["time"] - start) / per, e["event"], None) for e in events if "time" in e]
    for at, name, weight in marks:
        if name not in _MARKED:
            continue
        colour, style, label = _MARKED[name]
        for axes in panels:
            axes.axvline(at, color=colour, linestyle=style, linewidth=1.0)
        if label is None:
            label = "advance" if weight is None else f"{weight:.0%}"
        weight_axes.annotate(
            label,
            (at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            color=colour,
        )

    # Room on the right for the label of a decision on the last tick.
    weight_axes.set_xlim(right=max(offsets[-1], 1e-3) * 1.12)
    for axes in panels:
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3, linewidth=0.5)
    panels[-1].set_xlabel(f"{unit} since the canary started", fontsize=8)
    weight_axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure
