"""Renderers: a :class:`ReportData` to ``index.html`` (offline, plotly.js embedded once),
``pareto.md``, ``trials.csv`` and ``pareto.png`` (matplotlib, Agg). No computation here."""

from __future__ import annotations

import html
import itertools
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgetune.report._collect import ReportData, metric_label

FRONT_COLUMNS = ["number", "wer", "worst_group_wer", "latency_ms", "rtf", "size_bytes", "bits", "sparsity",
                 "depth_multiplier", "chunk_ms", "quant_cost", "export_error", "params", "sherpa_onnx", "artifact"]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}"
    return str(v)


def _front_columns(data: ReportData) -> list[str]:
    cols = list(dict.fromkeys(["number", *data.objectives, *FRONT_COLUMNS]))
    return [c for c in cols if c in data.table.columns]


def _gpu_time(data: ReportData) -> str:
    """The study's total GPU time (sum of the trials' training time on CUDA) and NVML energy."""
    gpu = data.table["gpu_seconds"].fillna(0.0)
    if not (gpu > 0).any():
        return "none (no trial trained on a GPU)"
    text = f"{gpu.sum() / 3600:.3g} GPU-hours ({gpu.sum():.0f} GPU-s) over {int((gpu > 0).sum())} trials trained on CUDA"
    energy = data.table["gpu_energy_j"].dropna()
    if len(energy):
        text += (f"; NVML energy during training {energy.sum() / 3.6e6:.3g} kWh (whole-GPU counter: "
                 "concurrent workers on one GPU count each other's energy)")
    return text


def _summary_lines(data: ReportData) -> list[tuple[str, str]]:
    c, cfg = data.counts, data.config
    ref = ", ".join(f"{o} = {v:.4g}" for o, v in zip(data.objectives, data.reference_point or []))
    return [
        ("study", f"{data.study_name} ({cfg.sampler.name.value}, seed {cfg.seed}, dataset {cfg.dataset})"),
        ("trials", f"{c['trials']} ({c['complete']} complete, {c['feasible']} within budget, {c['failed']} failed, "
                   f"{c['interrupted']} interrupted, {c['rejected']} rejected before training, "
                   f"{c['stopped']} stopped early, {c['running']} running/queued) "
                   f"of n_trials = {cfg.n_trials}"),
        ("objectives", ", ".join(f"minimise {metric_label(o)}" for o in data.objectives)),
        ("budgets", ", ".join(str(b) for b in cfg.budgets) or "none"),
        ("front", f"{c['front']} trial(s): {', '.join(str(n) for n in data.front) or '-'}"),
        ("hypervolume", f"{data.hypervolume:.6g}"),
        ("reference point", f"{ref or 'none'} ({data.reference_source})"),
        ("GPU time", _gpu_time(data)),
        ("measured on", f"target {cfg.primary_target}, {cfg.bench.threads} thread(s), {cfg.bench.runs} runs; "
                        f"host(s): {', '.join(data.hosts) or 'unknown'}"),
    ]


# ---- HTML ------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.note{color:#666;font-style:italic}code{background:#f4f4f4;padding:0 .2rem}
"""


def _table_html(rows: list[dict[str, Any]], cols: list[str], left: set[str] = frozenset()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(c)}</th>' for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if c in left else ""}">{html.escape(_fmt(r.get(c)))}</td>' for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STATIC_NOTE = ('<p class="note">Static page (no JavaScript): the interactive plots are left out. '
                "<code>edgetune report --study-dir DIR</code> writes them.</p>")


def render_html(data: ReportData, *, interactive: bool = True) -> str:
    """The whole report page. plotly.js is inlined once in <head>; figures reference it.

    ``interactive=False``: a small page without JavaScript (for committing or mailing a report):
    the Pareto plot is ``pareto.png`` beside it, the hypervolume and importance plots are left out.
    """
    from edgetune.report._figures import hypervolume_figure, importance_figure, pareto_figure

    figures = itertools.count(1)

    def fig_html(fig: Any) -> str:
        if not interactive:
            return _STATIC_NOTE
        # fixed div ids (plotly picks random ones): the same data gives the same page
        return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False},
                           div_id=f"edgetune-figure-{next(figures)}")

    esc = html.escape
    parts = [f"<h1>edgetune study report: {esc(data.study_name)}</h1>"]
    parts.append(
        _table_html([{"what": k, "value": v} for k, v in _summary_lines(data)], ["what", "value"], {"what", "value"})
    )
    parts.append("<h2>Pareto front</h2>")
    if data.counts["complete"]:
        parts.append(fig_html(pareto_figure(data)) if interactive
                     else '<p><img src="pareto.png" alt="WER vs latency, front outlined" width="800"></p>')
    else:
        parts.append('<p class="note">No complete trial yet.</p>')
    parts.append("<h3>Trials on the front</h3>")
    front = data.front_table().to_dict("records")
    if front:
        parts.append(_table_html(front, _front_columns(data), {"artifact"}))
        parts.append(
            "<p>Ship one with <code>edgetune export --study-dir DIR --trial N --out export/NAME.onnx</code>.</p>"
        )
    else:
        parts.append('<p class="note">No feasible complete trial: nothing is on the front.</p>')
    parts.append("<h2>Hypervolume over trials</h2>")
    parts.append(fig_html(hypervolume_figure(data)) if data.hv_trace else '<p class="note">No feasible trial yet.</p>')
    parts.append("<h2>Parameter importance</h2>")
    imp = importance_figure(data)
    if imp is not None:
        parts.append(fig_html(imp))
    if data.importance_note:
        parts.append(f'<p class="note">Importance not computed: {esc(data.importance_note)}.</p>')
    parts.append("<h2>Failures, interruptions and early stops</h2>")
    if data.failures:
        rows = [{**f, "trials": ", ".join(str(n) for n in f["trials"])} for f in data.failures]
        parts.append(_table_html(rows, ["type", "count", "reason", "trials"], {"type", "reason", "trials"}))
    else:
        parts.append('<p class="note">No trial failed or stopped early.</p>')
    parts.append(
        f'<p class="note">Generated {datetime.now(timezone.utc).isoformat(timespec="seconds")}; every trial is in '
        "<code>trials.csv</code>. This page loads nothing from the network.</p>"
    )
    script = ""
    if interactive:
        import plotly.offline

        script = f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>edgetune report: {esc(data.study_name)}</title><style>{_CSS}</style>{script}"
        "</head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


# ---- Markdown / CSV / PNG ---------------------------------------------------------------


_MD_MARKUP = re.compile(r"<(?=[A-Za-z/!?])|&(?=[A-Za-z#])")


def _md_text(text: str, *, cell: bool = False) -> str:
    """Text for Markdown: one line, no raw HTML (a ``<`` that could open a tag, an ``&`` that
    could start an entity are escaped; ``<=`` stays readable), and ``|`` escaped in table cells."""
    text = " ".join(text.splitlines())
    text = _MD_MARKUP.sub(lambda m: "&lt;" if m.group() == "<" else "&amp;", text)
    return text.replace("|", "\\|") if cell else text


def _md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_md_text(_fmt(r.get(c)), cell=True) for c in cols) + " |")
    return "\n".join(lines)


def render_markdown(data: ReportData) -> str:
    out = [f"# Pareto front: {_md_text(data.study_name)}", ""]
    out += [f"- **{k}**: {_md_text(v)}" for k, v in _summary_lines(data)]
    out += ["", "## Trials on the front", ""]
    front = data.front_table().to_dict("records")
    out.append(_md_table(front, _front_columns(data)) if front else "_No feasible complete trial._")
    out += ["", "## Failures, interruptions and early stops", ""]
    if data.failures:
        rows = [{**f, "trials": ", ".join(str(n) for n in f["trials"])} for f in data.failures]
        out.append(_md_table(rows, ["type", "count", "reason", "trials"]))
    else:
        out.append("_No trial failed or stopped early._")
    out += ["", "Every trial: `trials.csv`. Plots: `index.html` (offline), `pareto.png`.", ""]
    return "\n".join(out)


def render_csv(data: ReportData) -> str:
    return data.table.to_csv(index=False)


def render_png(data: ReportData, path: Path) -> None:
    """Accuracy vs latency with matplotlib (Agg): front outlined and numbered, budgets dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from edgetune.report._figures import BIT_COLOURS, marker_sizes
    from edgetune._pareto import pareto_front

    acc, lat = data.objectives[0], data.objectives[1]
    t = data.table[data.table["state"] == "COMPLETE"]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    try:
        if len(t):
            sizes = marker_sizes(t["size_bytes"].to_numpy()) ** 2
            feas = (t["feasible"] != False).to_numpy()  # noqa: E712
            colours = [BIT_COLOURS.get(int(b), "#7f7f7f") if b == b else "#7f7f7f" for b in t["bits"]]
            x, y = t[lat].to_numpy(float), t[acc].to_numpy(float)
            ax.scatter(x[~feas], y[~feas], s=sizes[~feas] * 0.5, marker="x", c="#999", label="over budget")
            edge = ["#111" if p else "#fff" for p in t["pareto"]]
            ax.scatter(x[feas], y[feas], s=sizes[feas], c=np.array(colours)[feas], edgecolors=np.array(edge)[feas],
                       linewidths=1.5, alpha=0.85)
            for bits, colour in BIT_COLOURS.items():
                if (t["bits"] == bits).any():
                    ax.scatter([], [], c=colour, label=f"{bits}-bit")
            if feas.any():
                pts = np.c_[x[feas], y[feas]]
                idx = pareto_front(pts)
                ax.step(pts[idx, 0], pts[idx, 1], where="post", ls="--", c="#444", lw=1)
            for n, xi, yi, p in zip(t["number"], x, y, t["pareto"]):
                if p:
                    ax.annotate(str(n), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for b in data.config.budgets:
            if b.metric == lat:
                ax.axvline(b.bound, ls=":", c="#c00", label=str(b))
            elif b.metric == acc:
                ax.axhline(b.bound, ls=":", c="#c00", label=str(b))
        ax.set_xlabel(metric_label(lat))
        ax.set_ylabel(metric_label(acc))
        name = data.study_name.replace("$", r"\$")  # a name is text, never mathtext
        ax.set_title(f"{name}: front outlined and numbered (size = model size)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


__all__ = ["render_csv", "render_html", "render_markdown", "render_png"]
