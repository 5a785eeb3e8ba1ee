"""Plotly figures of a report (the HTML embeds them; plotly.js itself is added once by the page)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgetune._pareto import pareto_front
from edgetune.report._collect import ReportData, metric_label

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

BIT_COLOURS = {4: "#d62728", 8: "#ff7f0e", 16: "#2ca02c", 32: "#1f77b4"}
KNOB_HOVER = ["bits", "sparsity", "depth_multiplier", "chunk_ms", "observer", "lr", "specaugment", "prune_schedule"]


def marker_sizes(size_bytes: np.ndarray, lo: float = 8.0, hi: float = 30.0) -> np.ndarray:
    """Marker diameter from model size: area proportional to bytes, clipped to [lo, hi] px."""
    s = np.sqrt(np.nan_to_num(np.asarray(size_bytes, dtype=float), nan=0.0))
    if s.size == 0 or s.max() <= 0:
        return np.full(s.shape, lo)
    return lo + (hi - lo) * s / s.max()


def _hover(row: Any, objectives: list[str]) -> str:
    parts = [f"<b>trial {row['number']}</b>{' (baseline)' if row['baseline'] else ''}"]
    for m in dict.fromkeys(objectives + ["wer", "worst_group_wer", "latency_ms", "rtf", "size_bytes"]):
        v = row.get(m)
        if v is not None and v == v:
            parts.append(f"{m}: {v:.4g}")
    parts.append("<br>".join(f"{k}: {row[k]}" for k in KNOB_HOVER if k in row))
    if row.get("feasible") is False:
        parts.append("<i>over budget</i>")
    return "<br>".join(parts)


def pareto_figure(data: ReportData) -> "go.Figure":
    """Accuracy vs latency; marker size = model size, colour = bits, hover = knobs.

    Front members (over all objectives) are drawn with a dark outline; the dashed staircase is
    the 2-D accuracy/latency front for reading; infeasible trials are grey crosses.
    """
    import plotly.graph_objects as go

    acc, lat = data.objectives[0], data.objectives[1]
    t = data.table[data.table["state"] == "COMPLETE"]
    fig = go.Figure()
    feasible = t[t["feasible"] != False]  # noqa: E712 (None = no budget information)
    infeasible = t[t["feasible"] == False]  # noqa: E712
    sizes_all = marker_sizes(t["size_bytes"].to_numpy())
    size_of = dict(zip(t["number"], sizes_all))
    for bits in sorted(feasible["bits"].dropna().unique()):
        sub = feasible[feasible["bits"] == bits]
        fig.add_trace(
            go.Scatter(
                x=sub[lat], y=sub[acc], mode="markers", name=f"{int(bits)}-bit",
                marker=dict(
                    size=[size_of[n] for n in sub["number"]], color=BIT_COLOURS.get(int(bits), "#7f7f7f"),
                    opacity=0.85,
                    line=dict(width=[2.5 if p else 0.5 for p in sub["pareto"]],
                              color=["#111" if p else "#fff" for p in sub["pareto"]]),
                ),
                text=[_hover(r, data.objectives) for r in sub.to_dict("records")], hoverinfo="text",
            )
        )
    if len(infeasible):
        fig.add_trace(
            go.Scatter(
                x=infeasible[lat], y=infeasible[acc], mode="markers", name="over budget",
                marker=dict(symbol="x", size=[size_of[n] * 0.7 for n in infeasible["number"]], color="#999"),
                text=[_hover(r, data.objectives) for r in infeasible.to_dict("records")], hoverinfo="text",
            )
        )
    if len(feasible):
        pts = feasible[[acc, lat]].to_numpy(dtype=float)
        idx = pareto_front(pts[:, [1, 0]])  # sorted by latency
        xs, ys = pts[idx, 1], pts[idx, 0]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line=dict(shape="hv", dash="dash", color="#444"),
                       name=f"front ({metric_label(acc)} vs latency)", hoverinfo="skip")
        )
    for b in data.config.budgets:
        if b.metric == lat:
            fig.add_vline(x=b.bound, line_dash="dot", line_color="#c00", annotation_text=str(b))
        elif b.metric == acc:
            fig.add_hline(y=b.bound, line_dash="dot", line_color="#c00", annotation_text=str(b))
    fig.update_layout(
        title="Pareto front: marker size = model size, colour = bits, outlined = on the front",
        xaxis_title=metric_label(lat), yaxis_title=metric_label(acc), template="plotly_white",
        height=560, legend=dict(orientation="h", y=-0.15),
    )
    return fig


def hypervolume_figure(data: ReportData) -> "go.Figure":
    import plotly.graph_objects as go

    fig = go.Figure()
    if data.hv_trace:
        xs, ys = zip(*data.hv_trace)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", line=dict(shape="hv"), name="hypervolume"))
    ref = ", ".join(f"{o}={v:.4g}" for o, v in zip(data.objectives, data.reference_point or []))
    fig.update_layout(
        title=f"Hypervolume of the feasible front after each complete trial (reference: {ref or 'none'})",
        xaxis_title="trial number", yaxis_title="hypervolume", template="plotly_white", height=380,
    )
    return fig


def importance_figure(data: ReportData) -> "go.Figure | None":
    import plotly.graph_objects as go

    if not data.importances:
        return None
    params = sorted({p for imp in data.importances.values() for p in imp})
    fig = go.Figure()
    for obj, imp in data.importances.items():
        fig.add_trace(go.Bar(x=params, y=[imp.get(p, 0.0) for p in params], name=metric_label(obj)))
    fig.update_layout(
        barmode="group", title="Parameter importance per objective (Optuna PED-ANOVA, normalised)",
        yaxis_title="importance", template="plotly_white", height=380,
    )
    return fig


__all__ = ["hypervolume_figure", "importance_figure", "marker_sizes", "pareto_figure"]
