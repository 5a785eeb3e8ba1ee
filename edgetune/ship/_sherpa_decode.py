#!/usr/bin/env python3
"""Decode waves with sherpa-onnx's Python API, the way an app does; one JSON line per wave.

Run in a subprocess by :func:`edgetune.ship.ship_check` (sherpa-onnx ends the process on a
bad model: exit 255, message on stderr). Standalone: imports only numpy and sherpa_onnx.

    python _sherpa_decode.py --model model.onnx --tokens tokens.txt --waves waves.npz \\
        --tail-samples 2880 [--piece-samples 1600 --threads 1 --sample-rate 16000]

``waves.npz`` holds float32 mono arrays ``w0, w1, ...`` in [-1, 1]. Each wave is fed in
pieces of ``--piece-samples`` (decoding whatever is ready after each piece), then
``--tail-samples`` zeros, then ``input_finished()`` and the remaining ready chunks.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--waves", required=True)
    p.add_argument("--tail-samples", type=int, required=True)
    p.add_argument("--piece-samples", type=int, default=1600)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sample-rate", type=int, default=16000)
    args = p.parse_args(argv)

    import sherpa_onnx

    rec = sherpa_onnx.OnlineRecognizer.from_zipformer2_ctc(
        tokens=args.tokens, model=args.model, num_threads=args.threads, sample_rate=args.sample_rate,
        feature_dim=80, decoding_method="greedy_search")
    print(json.dumps({"type": "start", "sherpa_onnx": getattr(sherpa_onnx, "__version__", None)}), flush=True)
    waves = np.load(args.waves)
    for i in range(len(waves.files)):
        wave = np.asarray(waves[f"w{i}"], dtype=np.float32)
        s = rec.create_stream()
        chunks = 0
        for start in range(0, wave.size, args.piece_samples):
            s.accept_waveform(args.sample_rate, wave[start:start + args.piece_samples])
            while rec.is_ready(s):
                rec.decode_stream(s)
                chunks += 1
        s.accept_waveform(args.sample_rate, np.zeros(args.tail_samples, dtype=np.float32))
        s.input_finished()
        while rec.is_ready(s):
            rec.decode_stream(s)
            chunks += 1
        result = rec.get_result_all(s)
        print(json.dumps({"type": "result", "index": i, "text": result.text, "tokens": list(result.tokens),
                          "chunks": chunks}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
