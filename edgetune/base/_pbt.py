"""``edgetune base tune --pbt``: population-based training of the base (Jaderberg et al. 2017).

A population of ``pbt.population`` members trains the base architecture at the proxy fidelity
(``proxy.data_fraction``, ``proxy.epochs``), each member with its own recipe from ``space``
(``enqueue`` entries first, the rest drawn at random). Every ``pbt.interval`` epochs:

- **exploit**: each member in the bottom ``quantile`` (by its last dev ``metric``) takes the
  latest checkpoint of a random member of the top ``quantile``: the base checkpoint format of
  :class:`edgetune.train.TrainCheckpoint` (weights, AdamW state, step, schedule, RNG, history),
  copied folder by folder and named by an atomic ``latest`` pointer;
- **explore**: it takes that member's knobs, each numeric one multiplied by a random factor of
  ``perturb`` (clipped to its range) or, with ``resample_probability``, drawn anew.

Members train as concurrent processes (``--workers K``: K at once; 1 trains them in turn in
this process); each round is one :func:`edgetune.base.fit_base` call per member that resumes
from its checkpoint and stops (``on_epoch`` False) at the round's epoch, so the cosine
schedule runs over all epochs. ``batch_size`` is not explored (the schedule's step count
depends on it). ``<study>/pbt/state.json`` (written atomically after every round and before
every copy) makes a killed run resume with the same command.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write_text, replace_dir
from edgetune.base._tune_config import TuneConfig, saturated_proxy

_DATA: dict[str, Any] = {}  # per process: the examples, loaded once


def _fingerprint(config: TuneConfig) -> dict[str, Any]:
    """What every member's checkpoint shares (so a copied checkpoint resumes under another member)."""
    arch = {k: v for k, v in config.base.resolved_model_config().items() if k != "dropout"}
    return {"pbt": config.study_name, "family": config.base.family, "model_config": arch,
            "dataset": config.base.dataset, "data_fraction": config.proxy.data_fraction,
            "epochs": config.proxy_epochs, "batch_size": config.base.train.batch_size}


def train_member(config_dict: dict[str, Any], member_dir: str, params: dict[str, Any], seed: int,
                 until: int) -> list[dict[str, float]]:
    """Train one member from its checkpoint up to epoch ``until``; returns its history (idempotent)."""
    from edgetune.base._tune import load_data, train_recipe
    from edgetune.train._checkpoint import TrainCheckpoint

    config = TuneConfig.from_dict(config_dict)
    key = json.dumps(_fingerprint(config), sort_keys=True)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_data(config)
    ckpt = TrainCheckpoint(Path(member_dir) / "checkpoints", _fingerprint(config))
    state = ckpt.state()
    if state is not None and state["epoch"] >= until:
        return list(state["history"])
    base = config.recipe(params, epochs=config.proxy_epochs, seed=seed)
    _, result = train_recipe(base, _DATA[key], on_epoch=lambda epoch, _rec: epoch < until, checkpoint=ckpt)
    return list(result.history)


def copy_checkpoint(src_member: Path, dst_member: Path) -> str:
    """Copy ``src_member``'s latest checkpoint into ``dst_member`` (atomic ``latest`` pointer); returns its name."""
    from edgetune.train._checkpoint import LATEST

    src_root, dst_root = src_member / "checkpoints", dst_member / "checkpoints"
    name = (src_root / LATEST).read_text(encoding="utf-8").strip()
    dst_root.mkdir(parents=True, exist_ok=True)
    tmp = dst_root / f".copy-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src_root / name, tmp)
    replace_dir(tmp, dst_root / name)
    atomic_write_text(dst_root / LATEST, name + "\n")
    for old in dst_root.glob("epoch-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return name


def explore(config: TuneConfig, params: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Perturb (or resample) each explorable knob of ``params``."""
    out = dict(params)
    for name, spec in config.space.items():
        if name == "batch_size":
            continue
        if rng.random() < config.pbt.resample_probability:
            out[name] = spec.sample(rng)
        elif spec.numeric:
            out[name] = spec.clip(out[name] * rng.choice(config.pbt.perturb))
    return out


def _initial(config: TuneConfig, rng: random.Random) -> list[dict[str, Any]]:
    members = []
    for i in range(config.pbt.population):
        fixed = config.enqueue[i] if i < len(config.enqueue) else {}
        members.append({name: fixed.get(name, spec.sample(rng)) for name, spec in config.space.items()
                        if name != "batch_size"})
    return members


def _value(history: list[dict[str, float]], metric: str) -> float:
    v = history[-1][metric] if history else float("nan")
    return float(v) if math.isfinite(v) else float("inf")


def run_pbt(config: TuneConfig, root: str | Path, *, workers: int = 1, time_budget: float | None = None,
            log: Any = print) -> dict[str, Any]:
    """Run (or resume) population-based training; returns the summary also written to ``pbt/summary.json``.

    ``time_budget`` (seconds from this call), checked after each round of ``pbt.interval`` epochs: one
    round always runs and none starts after it; the summary's ``epochs_reached`` says where the
    population stopped, and running again continues from there.
    """
    from edgetune.base._tracking import make_tracker

    t0 = time.monotonic()
    folder = Path(root) / "pbt"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.json"
    rng = random.Random(config.seed)
    if path.is_file():
        state = json.loads(path.read_text(encoding="utf-8"))
        rng.setstate(_rng_state(state["rng"]))
        log(f"resuming population-based training at epoch {state['epoch']} from {path}")
    else:
        state = {"epoch": 0, "members": [{"id": i, "params": p, "seed": config.seed + i, "history": []}
                                         for i, p in enumerate(_initial(config, rng))],
                 "events": [], "pending": [], "config": config.to_dict()}
    tracker = make_tracker(config, Path(root))

    def save() -> None:
        state["rng"] = _rng_json(rng.getstate())
        atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True))

    def member_dir(i: int) -> Path:
        return folder / f"member-{i}"

    _apply(state, folder, log)  # copies planned before a kill
    save()
    total, interval = config.proxy_epochs, config.pbt.interval
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=min(workers, len(state["members"])),
                                   mp_context=multiprocessing.get_context("spawn"))
    try:
        while state["epoch"] < total:
            until = min(total, state["epoch"] + interval)
            jobs = [(config.to_dict(), str(member_dir(m["id"])), m["params"], m["seed"], until)
                    for m in state["members"]]
            histories = list(pool.map(train_member, *zip(*jobs))) if pool else [train_member(*j) for j in jobs]
            for m, history in zip(state["members"], histories):
                m["history"] = history
                run = tracker.start(f"member-{m['id']}-to-epoch-{until}", {**m["params"], "member": m["id"]})
                for rec in history[state["epoch"]:]:
                    run.log({"dev_wer": rec["wer"], "dev_loss": rec["dev_loss"]}, int(rec["epoch"]))
                run.end()
            state["epoch"] = until
            log(f"pbt epoch {until}/{total}: " + ", ".join(
                f"m{m['id']} {_value(m['history'], config.metric):.4f}" for m in state["members"]))
            if until < total:
                state["pending"] = _plan(config, state, rng, until)
                save()
                _apply(state, folder, log)
            save()
            if time_budget is not None and time.monotonic() - t0 >= time_budget and state["epoch"] < total:
                log(f"pbt: time budget of {time_budget:g} s spent at epoch {state['epoch']}/{total} "
                    "(run again to continue)")
                break
    finally:
        if pool is not None:
            pool.shutdown()
    ranked = sorted(state["members"], key=lambda m: _value(m["history"], config.metric))
    best = ranked[0]
    summary = {"best": {"member": best["id"], "value": _value(best["history"], config.metric),
                        "params": best["params"], "history": best["history"],
                        "checkpoint": str(member_dir(best["id"]) / "checkpoints")},
               "metric": config.metric, "epochs": total, "epochs_reached": state["epoch"], "interval": interval,
               "population": len(ranked),
               "events": state["events"],
               "members": [{"id": m["id"], "value": _value(m["history"], config.metric), "params": m["params"]}
                           for m in state["members"]]}
    warning = saturated_proxy([m["value"] for m in summary["members"]], config, "population members")
    if warning:
        summary["warning"] = warning
        log(f"warning: {warning}")
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2, sort_keys=True))
    atomic_write_text(folder / "pbt.md", _markdown(summary))
    return summary


def _plan(config: TuneConfig, state: dict[str, Any], rng: random.Random, epoch: int) -> list[dict[str, Any]]:
    """Exploit/explore decisions of one round: bottom quantile copy a random top-quantile member."""
    members = state["members"]
    ranked = sorted(members, key=lambda m: _value(m["history"], config.metric))
    n = max(1, int(len(ranked) * config.pbt.quantile))
    top, bottom = ranked[:n], ranked[-n:]
    plan = []
    for loser in bottom:
        winner = rng.choice(top)
        plan.append({"epoch": epoch, "member": loser["id"], "copied_from": winner["id"],
                     "value_before": _value(loser["history"], config.metric),
                     "winner_value": _value(winner["history"], config.metric),
                     "old_params": loser["params"], "new_params": explore(config, winner["params"], rng)})
    return plan


def _apply(state: dict[str, Any], folder: Path, log: Any) -> None:
    """Carry out the planned copies (idempotent: the winners' checkpoints have not moved since)."""
    by_id = {m["id"]: m for m in state["members"]}
    for event in state.get("pending") or []:
        name = copy_checkpoint(folder / f"member-{event['copied_from']}", folder / f"member-{event['member']}")
        event["checkpoint"] = name
        loser, winner = by_id[event["member"]], by_id[event["copied_from"]]
        loser["params"], loser["history"] = event["new_params"], list(winner["history"])
        state["events"].append(event)
        log(f"pbt epoch {event['epoch']}: member {event['member']} ({event['value_before']:.4f}) <- checkpoint "
            f"{name} of member {event['copied_from']} ({event['winner_value']:.4f}); knobs {event['new_params']}")
    state["pending"] = []


def _rng_json(s: tuple) -> list:
    return [s[0], list(s[1]), s[2]]


def _rng_state(s: list) -> tuple:
    return (s[0], tuple(s[1]), s[2])


def _markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Population-based training ({summary['population']} members, exploit every "
             f"{summary['interval']} epochs, {summary['epochs']} epochs)", "",
             f"best: member {summary['best']['member']}, dev {summary['metric']} {summary['best']['value']:.4f}, "
             f"`{json.dumps(summary['best']['params'], sort_keys=True)}`", "",
             *([f"**warning**: {summary['warning']}", ""] if summary.get("warning") else []),
             "| member | dev " + summary["metric"] + " | knobs |", "|---|---|---|"]
    lines += [f"| {m['id']} | {m['value']:.4f} | `{json.dumps(m['params'], sort_keys=True)}` |"
              for m in summary["members"]]
    lines += ["", "## Exploit steps", "", "| epoch | member | copied from | before | winner |", "|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['member']} | {e['copied_from']} | {e['value_before']:.4f} | {e['winner_value']:.4f} |"
              for e in summary["events"]]
    return "\n".join(lines) + "\n"
