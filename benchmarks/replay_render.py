"""Renderers of ``benchmarks/replay.py``'s report: they only consume the result dicts it builds
(``replay.json``), as Markdown and PNG."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

GOAL_LINE = 0.95  # drawn on the curves; the rule itself is in each result's "goal"


def _seeds(seeds: list[int]) -> str:
    contiguous = len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1))
    return f"{seeds[0]}-{seeds[-1]}" if contiguous else ", ".join(map(str, seeds))


def _pct(k: str) -> str:
    return f"{float(k):.0%}"


def render_budget_markdown(res: dict[str, Any], name: str) -> str:
    """One budget's section: HV fraction at each checkpoint, p-values, GPU time, attainment, goal."""
    p, cps = res["problem"], res["checkpoints"]
    lines = [
        f"## Budget `{name}`: {', '.join(p['budgets']) or 'none'} {p['budget_note']}",
        "",
        f"{p['n_feasible']} feasible configurations, {len(p['true_front'])} on the true front"
        + (f"; {p['n_parity_failed']} more within the budgets failed the export parity gate (never on a front)"
           if p.get("n_parity_failed") else "") + ".",
        f"Reference point: test_wer={p['reference_point']['test_wer']:g}, "
        f"latency_ms={p['reference_point']['latency_ms']:.1f} ({p['reference_rule']}).",
        f"Seeds reported: {_seeds(res['seeds'])} ({len(res['seeds'])}). Settings: {res['settings']}.",
    ]
    if res["tuning"]:
        lines.append(f"Settings tuned on seeds {res['tuning']['seeds']} (never reported); score: {res['tuning']['score']}.")
    else:
        lines.append("Settings not tuned in this run (given on the command line, else the defaults of benchmarks/replay.py).")
    lines += ["", "HV fraction of the true front at a share of the grid cost, median [q25, q75] over seeds:", "",
              "| strategy | " + " | ".join(_pct(k) for k in cps) + " |", "|---|" + "---|" * len(cps)]
    for s in res["curves"]:
        lines.append(f"| {s} | " + " | ".join(f"{cp[s]['median']:.3f} [{cp[s]['q25']:.3f}, {cp[s]['q75']:.3f}]"
                                              for cp in cps.values()) + " |")
    lines += ["", "One-sided Mann-Whitney U, p-value that edgetune's HV fraction is greater:", "",
              "| against | " + " | ".join(_pct(k) for k in cps) + " |", "|---|" + "---|" * len(cps)]
    for s in res["curves"]:
        if s == "edgetune" or "edgetune" not in res["curves"]:
            continue
        role = res["strategies"][s]["role"]
        lines.append(f"| {s} ({role}) | " + " | ".join(f"{cp['p_value_edgetune_greater'][s]:.3g}" for cp in cps.values())
                     + " |")
    lines += ["", "Where the GPU time went (median over seeds, at the end of each run; wall: this machine's seconds "
              "per run):", "",
              "| strategy | evaluated | fully trained | stopped early | rejected before training | failed | "
              "duplicates (reused, free) | repeats (trained again) | GPU-s spent | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for s, rs in res["runs"].items():
        keys = ("evaluated", "fully_trained", "stopped_early", "rejected_before_training", "failed", "duplicates",
                "repeats_trained_again", "gpu_seconds", "wall_seconds")
        med = {k: float(np.median([r.get(k, 0) for r in rs])) for k in keys}
        lines.append("| " + " | ".join([s, *(f"{med[k]:.0f}" for k in keys[:-1]), f"{med['wall_seconds']:.1f}"]) + " |")
    if res["attainment"]:
        cols = [f"{_pct(k)}: {q} %" for k in res["attainment"] for q in ("25", "50", "75")]
        lines += ["", "Empirical attainment surfaces over seeds (moocore.eaf), as the HV fraction of the 25 / 50 / 75 % "
                  "surface (the region that at least that share of seeds attains; 0: the surface is empty):", "",
                  "| strategy | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for s in res["curves"]:
            cells = [f"{res['attainment'][k][s][q]['hv_fraction']:.3f}" for k in res["attainment"] for q in ("25", "50", "75")]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    if res["goal"]:
        g = res["goal"]
        lines += ["", f"Goal ({g['rule']}): **{'met' if g['met'] else 'not met'}** -- edgetune median "
                  f"{g['edgetune_median']:.3f}, {g['seeds_reaching_target']}/{len(res['seeds'])} seeds reach "
                  f"{GOAL_LINE}, p-values {', '.join(f'{k}={v:.3g}' for k, v in g['p_values'].items())}"
                  + (f" (baselines not run, so not compared: {', '.join(g['baselines_not_run'])})"
                     if g.get("baselines_not_run") else "") + "."]
    return "\n".join(lines) + "\n"


def render_report_markdown(report: dict[str, Any]) -> str:
    """The whole report: the table, the strategies, every budget's section, what was not run."""
    t = report["table"]
    first = next(iter(report["budgets"].values()), None)
    lines = [
        "# Replay: search strategies on a frozen table, through run_study",
        "",
        f"Table `{t['source']}` ({t['kind']}, {t['rows']} configurations, {t['epochs']} epochs, sha256 "
        f"`{t['sha256'][:12]}`); grid cost {t['total_cost_gpu_seconds']:.0f} GPU-s (sum of train_gpu_seconds); "
        f"test WER min {t['test_wer']['min']:.3f}, median {t['test_wer']['median']:.3f}"
        + (f"; {t['parity_failed_rows']} rows failed the export parity gate" if "parity_failed_rows" in t else "") + ".",
        f"Command: `{report['command']}` ({report['wall_seconds']:.0f} s).",
    ]
    if first is not None:
        lines += ["", "Strategies (every one on the same GPU-seconds clock, the same table, the same seeds):", ""]
        lines += [f"* `{s}` ({d['role']}): {d['about']}" for s, d in first["strategies"].items()]
    for name, res in report["budgets"].items():
        lines += ["", render_budget_markdown(res, name).rstrip(), "", f"Plots: `replay-{name}.png`"
                  + (f", `eaf-{name}.png`" if res["attainment"] else "") + "."]
    goals = {n: r["goal"]["met"] for n, r in report["budgets"].items() if r["goal"]}
    if goals:
        lines += ["", "## Goal under every budget", "",
                  ", ".join(f"{n}: {'met' if m else 'not met'}" for n, m in goals.items())
                  + f" -> **{'met' if report['goal_met_under_every_budget'] else 'not met'}**."]
    if report["not_run"]:
        lines += ["", "## Not run", ""] + [f"* {n}" for n in report["not_run"]]
    if t["kind"] == "synthetic":
        lines += ["", "**SYNTHETIC TABLE: these numbers measure the harness, not edgetune on real models.**"]
    return "\n".join(lines) + "\n"


def _figure(*args: Any, **kw: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*args, **kw)


def _png(plt: Any, fig: Any) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def render_curves_png(res: dict[str, Any]) -> bytes:
    """HV fraction over GPU-seconds: median and quartile band per strategy."""
    plt, (fig, ax) = _figure(figsize=(7.5, 4.5), dpi=120)
    x = np.asarray(res["cost_fractions"]) * 100
    for s, c in res["curves"].items():
        (line,) = ax.plot(x, c["median"], label=s, lw=2 if s == "edgetune" else 1.2,
                          ls="--" if res["strategies"][s]["role"] == "ablation" else "-")
        ax.fill_between(x, c["q25"], c["q75"], color=line.get_color(), alpha=0.15, lw=0)
    for cp in res["checkpoints"]:
        ax.axvline(float(cp) * 100, color="grey", ls=":", lw=1)
    ax.axhline(GOAL_LINE, color="grey", ls="--", lw=1)
    ax.set_xlabel("GPU-seconds spent, % of the grid's total training cost")
    ax.set_ylabel("hypervolume / true front's hypervolume")
    kind = " (SYNTHETIC table)" if res["table"]["kind"] == "synthetic" else ""
    ax.set_title(f"{', '.join(res['problem']['budgets'])}: median and quartiles over {len(res['seeds'])} seeds{kind}",
                 fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, x[-1])
    ax.legend(loc="lower right", fontsize=8)
    return _png(plt, fig)


def render_eaf_png(res: dict[str, Any]) -> bytes:
    """The 50 % attainment surface of each strategy at each attainment checkpoint, over the true front."""
    cps = list(res["attainment"])
    plt, (fig, axes) = _figure(1, len(cps), figsize=(5.5 * len(cps), 4.5), dpi=120, squeeze=False)
    ref = res["problem"]["reference_point"]
    front = np.array([[r["test_wer"], r["latency_ms"]] for r in res["problem"]["true_front"]])
    for ax, k in zip(axes[0], cps):
        for s, surfaces in res["attainment"][k].items():
            pts = np.asarray(surfaces["50"]["points"], float).reshape(-1, 2)
            if len(pts):  # the attained region's boundary: a staircase through the corner points
                xs = np.concatenate([np.repeat(pts[:, 0], 2), [ref["test_wer"]]])
                ys = np.concatenate([[ref["latency_ms"]], np.repeat(pts[:, 1], 2)])
                ax.plot(xs, ys, lw=2 if s == "edgetune" else 1.1, label=s,
                        ls="--" if res["strategies"][s]["role"] == "ablation" else "-")
        ax.scatter(front[:, 0], front[:, 1], marker="x", color="black", s=22, zorder=5, label="true front")
        ax.set_xlim(right=ref["test_wer"])
        ax.set_ylim(top=ref["latency_ms"])
        ax.set_xlabel("test WER")
        ax.set_ylabel("latency_ms")
        ax.set_title(f"50 % attainment surfaces at {float(k):.0%} of the grid cost", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    return _png(plt, fig)


__all__ = ["render_budget_markdown", "render_curves_png", "render_eaf_png", "render_report_markdown"]
