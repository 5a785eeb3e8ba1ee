"""``edgetune export``: ship one trial's model with a model card (JSON + Markdown).

The artifact is copied only after its sha256 matches the one recorded when the trial
finished, so what ships is exactly what was measured. The card says what the model is
(knobs), how good (WER, worst-group WER), how fast and where that was measured (latency
percentiles, host), how big, and how to run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgetune._attrs import ATTR_DUPLICATE
from edgetune._io import atomic_copy, atomic_write_text, sha256_file
from edgetune.errors import ArtifactError, ConfigError
from edgetune.search._metrics import METRICS, metric_values
from edgetune.search._storage import StudyPaths, load_study_dir
from edgetune.search._trials import front_numbers

CARD_FORMAT = "edgetune-model-card/1"


@dataclass(frozen=True)
class ExportedModel:
    """Paths written by :func:`export_trial`."""

    onnx: Path
    card_json: Path
    card_md: Path
    sha256: str
    card: dict[str, Any]


def card_paths(out: Path) -> tuple[Path, Path]:
    """``export/NAME.onnx`` -> ``export/NAME.card.json``, ``export/NAME.md``."""
    return out.with_name(out.stem + ".card.json"), out.with_name(out.stem + ".md")


def python_snippet(model: str) -> str:
    """A minimal, runnable transcription loop: numpy + onnxruntime (+ edgetune's numpy Kaldi fbank)."""
    return f'''import json
import numpy as np
import onnxruntime as ort
import soundfile as sf
from edgetune.data.fbank import FeatureSpec, compute_fbank  # numpy only: a single file you can copy

sess = ort.InferenceSession("{model}", providers=["CPUExecutionProvider"])
spec = json.loads(sess.get_modelmeta().custom_metadata_map["edgetune"])
wave, rate = sf.read("audio.wav", dtype="float32")  # mono, spec["features"]["sample_rate"] Hz
feats = compute_fbank(wave, FeatureSpec(**spec["features"]))  # [T, n_mels] (or kaldi_native_fbank)
T = spec["chunk_frames"]
pad = -len(feats) % T                               # pad the tail with silence to whole chunks
feats = np.concatenate([feats, np.full((pad, feats.shape[1]), np.log(np.finfo(np.float32).eps), np.float32)])
state = {{c["input"]: np.zeros(c["shape"], np.float32) for c in spec["caches"]}}
outputs = [spec["logits_output"]] + [c["output"] for c in spec["caches"]]
ids = []
for i in range(0, len(feats), T):                   # one chunk at a time, caches carried over
    logits, *caches = sess.run(outputs, {{spec["features_input"]: feats[None, i:i + T], **state}})
    state = {{c["input"]: v for c, v in zip(spec["caches"], caches)}}
    ids += logits[0].argmax(-1).tolist()
text, prev = [], -1                                 # CTC greedy: collapse repeats, drop blanks
for i in ids:
    if i != prev and i != spec["blank_id"]:
        text.append(spec["vocabulary"][i])
    prev = i
print(" ".join("".join(text).split()))
'''


def _trial(study: Any, number: int) -> Any:
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise ConfigError(
            f"--trial {number}: the study has no such trial (numbers 0..{len(trials) - 1}). "
            f"Front: {front_numbers(study) or 'empty'}"
        )
    return match[0]


def build_card(config: Any, study: Any, t: Any, out: Path, sha: str, paths: StudyPaths) -> dict[str, Any]:
    from edgetune import __version__

    ua = t.user_attrs
    measured = metric_values(ua)
    front = front_numbers(study)
    represented = ua.get(ATTR_DUPLICATE, t.number)
    lat = ua.get("latency_ms") if isinstance(ua.get("latency_ms"), dict) else {}
    return {
        "format": CARD_FORMAT,
        "name": out.stem,
        "file": out.name,
        "sha256": sha,
        "file_bytes": out.stat().st_size,
        "source": {
            "study": study.study_name,
            "study_dir": str(paths.root.resolve()),
            "trial": t.number,
            "duplicate_of": ua.get(ATTR_DUPLICATE),
            "artifact": ua.get("artifact"),
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "edgetune_version": __version__,
        },
        "knobs": ua.get("knobs", {}),
        "pareto": {
            "objectives": {o: measured.get(o) for o in config.objectives},
            "on_front": represented in front,
            "feasible": all(v <= 0 for v in t.constraints.values()),
            "budgets": [
                {"budget": str(b), "value": measured.get(b.metric), "met": b.satisfied(measured[b.metric])}
                for b in config.budgets if b.metric in measured
            ],
        },
        "accuracy": {
            "dataset": config.dataset,
            "wer": ua.get("wer"),
            "worst_group_wer": ua.get("worst_group_wer"),
            "wer_per_group": ua.get("wer_per_group"),
            "wer_torch": ua.get("wer_torch"),
            "parity": ua.get("parity"),
        },
        "latency": {
            "per_chunk_compute_ms": lat,
            "algorithmic_latency_ms": ua.get("algorithmic_latency_ms"),
            "latency_ms": measured.get("latency_ms"),
            "latency_ms_definition": METRICS["latency_ms"].label,
            "rtf": ua.get("rtf"),
            "target": config.primary_target,
            "threads": config.bench.threads,
            "runs": config.bench.runs,
            "host": ua.get("host"),
        },
        "size": {k: ua.get(k) for k in ("size_bytes", "gzip_bytes", "peak_rss_bytes")},
        "training": {**config.train.to_dict(), "train_seconds": ua.get("train_seconds"), "family": config.family},
        "usage": {
            "cli": f"edgetune transcribe {out} audio.wav",
            "python": python_snippet(str(out)),
        },
    }


def _fmt(v: Any, nd: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return "-" if v is None else str(v)


def card_markdown(card: dict[str, Any]) -> str:
    k, acc, lat, size, src = card["knobs"], card["accuracy"], card["latency"], card["size"], card["source"]
    pct = lat.get("per_chunk_compute_ms") or {}
    host = lat.get("host")
    host_text = ", ".join(f"{a}={b}" for a, b in host.items() if b is not None) if isinstance(host, dict) else _fmt(host)
    groups = acc.get("wer_per_group") or {}
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"`{card['file']}` — sha256 `{card['sha256']}` — {card['file_bytes']} bytes. "
        f"From study `{src['study']}`, trial {src['trial']}"
        + (f" (same candidate as trial {src['duplicate_of']})" if src.get("duplicate_of") is not None else "")
        + f"; {'on the Pareto front' if card['pareto']['on_front'] else 'NOT on the Pareto front'}"
        + f", {'within every budget' if card['pareto']['feasible'] else 'OVER a budget'}.",
        "",
        "## Knobs",
        "",
        "| " + " | ".join(k) + " |",
        "|" + "---|" * len(k),
        "| " + " | ".join(_fmt(v) for v in k.values()) + " |",
        "",
        "## Accuracy",
        "",
        f"- WER: **{_fmt(acc['wer'])}** on the `{acc['dataset']}` test split (PyTorch model before export: {_fmt(acc['wer_torch'])})",
        f"- worst-group WER: **{_fmt(acc['worst_group_wer'])}**"
        + (" (" + ", ".join(f"{g}: {_fmt(v)}" for g, v in groups.items()) + ")" if groups else ""),
        "",
        "## Latency",
        "",
        f"- per-chunk compute: p50 {_fmt(pct.get('p50'))} ms, p90 {_fmt(pct.get('p90'))} ms, p99 {_fmt(pct.get('p99'))} ms "
        f"(mean {_fmt(pct.get('mean'))}, std {_fmt(pct.get('std'))})",
        f"- algorithmic latency (chunk + lookahead): {_fmt(lat['algorithmic_latency_ms'])} ms; "
        f"user-facing latency (p90 compute + algorithmic): **{_fmt(lat['latency_ms'])} ms**; RTF {_fmt(lat['rtf'])}",
        f"- measured on target `{lat['target']}` with {lat['threads']} thread(s), {lat['runs']} runs; host: {host_text}",
        "",
        "## Size",
        "",
        f"- file: {_fmt(size['size_bytes'])} bytes (gzip {_fmt(size['gzip_bytes'])}); peak RSS {_fmt(size['peak_rss_bytes'])} bytes",
        "",
    ]
    if card["pareto"]["budgets"]:
        lines += ["## Budgets", ""]
        lines += [f"- `{b['budget']}`: {_fmt(b['value'])} — {'met' if b['met'] else 'NOT met'}" for b in card["pareto"]["budgets"]]
        lines.append("")
    lines += [
        "## How to run it",
        "",
        "```bash",
        card["usage"]["cli"],
        "```",
        "",
        "Minimal Python (numpy + onnxruntime; the streaming contract is in the file's `edgetune` metadata):",
        "",
        "```python",
        card["usage"]["python"].rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def export_trial(
    study_dir: str | Path, number: int, out: str | Path, *, storage: str | None = None
) -> ExportedModel:
    """Copy trial ``number``'s model to ``out`` (sha256-verified) and write its model card."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ConfigError(f"--out must name an .onnx file (e.g. export/phone.onnx), but got {out}")
    paths = StudyPaths(Path(study_dir))
    config, study = load_study_dir(paths.root, storage=storage)
    t = _trial(study, number)
    if t.state.name != "COMPLETE":
        why = t.user_attrs.get("fail_reason") or "no reason recorded (interrupted)"
        raise ArtifactError(
            f"trial {number} is {t.state.name} ({why}); only a complete trial has a measured model. "
            f"Fix: pick a trial on the front: {front_numbers(study) or 'none yet'}"
        )
    rel = t.user_attrs.get("artifact")
    recorded = t.user_attrs.get("sha256")
    if not rel or not recorded:
        raise ArtifactError(f"trial {number} has no recorded artifact/sha256 in the study; it cannot be verified")
    src = paths.root / rel
    if not src.is_file():
        raise ArtifactError(f"trial {number}'s artifact {src} is missing. Fix: restore the study directory's trials/ folder")
    actual = sha256_file(src)
    if actual != recorded:
        raise ArtifactError(
            f"{src}: sha256 mismatch: the file hashes to {actual} but trial {number} recorded {recorded}; "
            "the file changed after it was measured. Fix: re-run that candidate, or export another trial"
        )
    atomic_copy(src, out)
    copied = sha256_file(out)
    if copied != recorded:  # pragma: no cover - a disk fault
        raise ArtifactError(f"{out}: sha256 {copied} after copying differs from {recorded}")
    card = build_card(config, study, t, out, copied, paths)
    cj, cm = card_paths(out)
    atomic_write_text(cj, json.dumps(card, indent=2, sort_keys=False) + "\n")
    atomic_write_text(cm, card_markdown(card))
    return ExportedModel(out, cj, cm, copied, card)


def export_trial_sherpa(study_dir: str | Path, number: int, out_dir: str | Path, *, storage: str | None = None,
                        model_type: str = "zipformer2_ctc", layernorm: str = "fused") -> tuple[ExportedModel, Any]:
    """``edgetune export --format sherpa-onnx``: trial ``number``'s verified model and card as
    ``out_dir/edgetune.onnx`` (+ card), then the sherpa-onnx files beside it (``model.onnx``,
    ``tokens.txt``, ``README.md``) from :func:`edgetune.export.sherpa.export_sherpa`. ``layernorm``:
    ``primitive`` converts :func:`~edgetune.export.sherpa.primitive_layernorm_copy` instead
    (``edgetune-primitive-layernorm.onnx``). Decode-check the result with ``edgetune ship``."""
    from edgetune.export.sherpa import LAYERNORM_MODES, export_sherpa, primitive_layernorm_copy

    if layernorm not in LAYERNORM_MODES:
        raise ConfigError(f"layernorm must be one of {', '.join(LAYERNORM_MODES)}, but got {layernorm!r}")
    out_dir = Path(out_dir)
    if out_dir.suffix == ".onnx":
        raise ConfigError(f"--format sherpa-onnx writes a folder (model.onnx, tokens.txt, README.md), so --out "
                          f"must name a folder, e.g. export/phone-sherpa, but got {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = export_trial(study_dir, number, out_dir / "edgetune.onnx", storage=storage)
    source = done.onnx
    if layernorm == "primitive":
        source = out_dir / "edgetune-primitive-layernorm.onnx"
        primitive_layernorm_copy(done.onnx, source)
    return done, export_sherpa(source, out_dir, model_type=model_type)


__all__ = ["CARD_FORMAT", "ExportedModel", "build_card", "card_markdown", "card_paths", "export_trial",
           "export_trial_sherpa", "python_snippet"]
