#!/usr/bin/env python3
"""Decode shipped models with sherpa-onnx's **C++ binary** (`sherpa-onnx`, what a Raspberry Pi or a
Linux board runs) and compare with the Python API's transcripts (benchmarks/results/ship-cpp-vm.json).

Input: the folder `edgetune ship --front STUDY --out DIR` wrote (``DIR/trial-N/{model.onnx,
tokens.txt, ship.json, transcripts.jsonl}``). Every utterance of ``transcripts.jsonl`` is decoded by
the binary, one process per file, with the padding edgetune's check uses: no left padding (the
binary's default adds 0.5 s of silence in front, which moves every chunk boundary) and
``tail_padding_samples`` of right padding. Reported per model: utterances whose text equals sherpa's
Python API (``sherpa_text``) and edgetune's own streaming path (``edgetune``).

    python3 -m venv /tmp/sbinv && /tmp/sbinv/bin/pip install sherpa-onnx-bin==2.0.1
    edgetune ship --front studies/smoke --out /tmp/front --layernorm primitive
    python benchmarks/ship_cpp.py /tmp/front [more fronts] --binary /tmp/sbinv/bin/sherpa-onnx
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def decode(binary: str, folder: Path, wav: str, right_padding_s: float, model_type: str, shipped: dict) -> str:
    model = f"--{model_type.replace('_', '-')}-model={folder / 'model.onnx'}"
    extra = []
    if model_type == "wenet_ctc":
        rec = shipped["recognizer"]
        extra = [f"--wenet-ctc-chunk-size={rec['chunk_size']}", f"--wenet-ctc-num-left-chunks={rec['num_left_chunks']}"]
    done = subprocess.run([binary, model, f"--tokens={folder / 'tokens.txt'}", "--num-threads=1", "--left-padding=0",
                           f"--right-padding={right_padding_s}", *extra, wav],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{binary} failed on {wav} (exit {done.returncode}): {done.stderr[-800:]}")
    lines = [line for line in (done.stdout + "\n" + done.stderr).splitlines() if line.startswith("{") and '"text"' in line]
    if not lines:
        raise RuntimeError(f"{binary} printed no result for {wav}: {done.stderr[-800:]}")
    return " ".join(json.loads(lines[-1])["text"].split())


def check_front(front: Path, binary: str) -> list[dict]:
    rows = []
    for folder in sorted(front.glob("trial-*"), key=lambda d: int(d.name.split("-")[1])):
        shipped = json.loads((folder / "ship.json").read_text())
        utts = [json.loads(line) for line in (folder / "transcripts.jsonl").read_text().splitlines()]
        tail_s = shipped["tail_padding_samples"] / 16000
        t0 = time.perf_counter()
        same_python = same_edgetune = 0
        examples = []
        for u in utts:
            text = decode(binary, folder, u["name"], tail_s, shipped["model_type"], shipped)
            same_python += text == " ".join(u["sherpa_text"].split())
            same_edgetune += text == u["edgetune"]
            if text != u["edgetune"] and len(examples) < 3:
                examples.append({"name": u["name"], "cpp": text, "python": u["sherpa_text"], "edgetune": u["edgetune"]})
        row = {"trial": folder.name, "bits": shipped["bits"], "model_type": shipped["model_type"],
               "layernorm": shipped.get("layernorm"), "utterances": len(utts),
               "identical_to_python_api": same_python, "identical_to_edgetune": same_edgetune,
               "seconds": round(time.perf_counter() - t0, 1), "mismatches": examples}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def binary_version(binary: str) -> str | None:
    """The sherpa-onnx-bin version of the venv the binary sits in (the binary has no --version)."""
    import shutil

    path = shutil.which(binary)
    python = Path(path).with_name("python") if path else None
    if python is None or not python.exists():
        return None
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('sherpa-onnx-bin'))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("front", nargs="+", help="--out folder(s) of `edgetune ship --front`")
    p.add_argument("--binary", default="sherpa-onnx", help="the sherpa-onnx C++ binary")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ship-cpp-vm.json"))
    args = p.parse_args()
    version = binary_version(args.binary)
    rows, studies = [], set()
    for front in map(Path, args.front):
        studies.add(json.loads((front / "ship-front.json").read_text()).get("study"))
        rows += check_front(front, args.binary)
    result = {"machine": platform.platform(), "processor": platform.processor(),
              "binary": args.binary, "sherpa_onnx_bin": version,
              "studies": sorted(studies), "padding": "left 0, right tail_padding_samples",
              "models": rows}
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
