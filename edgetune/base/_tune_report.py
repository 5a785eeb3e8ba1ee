"""The report of a tune study: ``report/tune.html`` (plotly, offline), ``tune.md`` and ``trials.csv``.

Renderers only consume the study and the summary :func:`edgetune.base._tune.finish` computed:
history (best value so far), per-epoch curves (what the pruner saw), parallel coordinates,
parameter importance, and the final retrain's mean ± std.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write_text


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        hist = t.user_attrs.get("history") or []
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value,
                     "epochs_run": t.user_attrs.get("epochs_run", len(hist)),
                     "last_dev_wer": hist[-1]["wer"] if hist else None,
                     "last_dev_loss": hist[-1]["dev_loss"] if hist else None,
                     "train_seconds": t.user_attrs.get("train_seconds"),
                     "interrupted": bool(t.user_attrs.get("interrupted")),
                     **{f"param_{k}": v for k, v in t.params.items()}})
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _ms(d: dict[str, Any] | None) -> str:
    if not d or d.get("mean") is None:
        return "-"
    return f"{d['mean']:.4f} ± {d['std']:.4f} (n={d['n']})" if d.get("std") is not None else f"{d['mean']:.4f} (n=1)"


def markdown(config: Any, summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    best = summary["best"]
    lines = [f"# Base tune study `{summary['study_name']}`", "",
             f"- objective: dev {summary['metric']} (minimised), proxy: {summary['proxy']['data_fraction']:g} of train, "
             f"{summary['proxy']['epochs']} epochs; pruner {config.pruner.type.value}, sampler {config.sampler.value}",
             f"- trials: " + ", ".join(f"{v} {k}" for k, v in summary["counts"].items()),
             f"- best: trial {best['number']}, {summary['metric']} {best['value']:.4f}, "
             f"`{json.dumps(best['params'], sort_keys=True)}`"]
    if summary.get("warning"):
        lines.append(f"- **warning**: {summary['warning']}")
    for key, title in (("final", "best configuration"), ("default", "default recipe")):
        f = summary.get(key)
        if f:
            lines.append(f"- {title} retrained on all data, seeds {[r['seed'] for r in f['runs']]}: "
                         f"fp32 ONNX dev WER {_ms(f['dev_wer'])}, test WER {_ms(f['test_wer'])} "
                         f"at {f['chunk_ms']} ms")
    lines += ["", "## Parameter importance (fANOVA)", ""]
    if summary["importance"]:
        lines += ["| knob | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in summary["importance"].items()]
    else:
        lines.append(f"not computed: {summary.get('importance_note')}")
    cols = [c for c in (rows[0] if rows else {}) if c != "interrupted"]
    lines += ["", "## Trials", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_report(config: Any, study: Any, summary: dict[str, Any], out: Path) -> Path:
    """Write ``tune.html``, ``tune.md`` and ``trials.csv`` into ``out``; returns the HTML path."""
    import plotly.offline
    from optuna import visualization as vis

    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    atomic_write_text(out / "trials.csv", _csv(rows))
    md = markdown(config, summary, rows)
    atomic_write_text(out / "tune.md", md)
    figures = [("Optimization history", lambda: vis.plot_optimization_history(study)),
               ("Dev metric per epoch (what the pruner saw)", lambda: vis.plot_intermediate_values(study)),
               ("Parallel coordinates", lambda: vis.plot_parallel_coordinate(study))]
    if summary["importance"]:
        figures.append(("Parameter importance", lambda: vis.plot_param_importances(study)))
    parts = []
    for title, make in figures:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        try:
            parts.append(make().to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))
        except Exception as exc:  # e.g. a single trial: the plot has nothing to show
            parts.append(f"<p>not drawn: {html.escape(f'{type(exc).__name__}: {exc}')}</p>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(summary['study_name'])}</title>"
            f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<pre>{html.escape(md.split('## Trials')[0])}</pre>{''.join(parts)}</body></html>")
    atomic_write_text(out / "tune.html", page)
    return out / "tune.html"
