#!/usr/bin/env python3
"""Decode waves with sherpa-onnx's Python API, the way an app does; one JSON line per wave.

Run in a subprocess by :func:`edgetune.ship.ship_check` (sherpa-onnx ends the process on a
bad model: exit 255, message on stderr). Standalone: imports only numpy and sherpa_onnx.

    python _sherpa_decode.py --model model.onnx --tokens tokens.txt --waves waves.npz \\
        --tail-samples 2880 [--piece-samples 1600 --threads 1 --sample-rate 16000]

``waves.npz`` holds float32 mono arrays ``w0, w1, ...`` in [-1, 1]. Each wave is fed in
pieces of ``--piece-samples`` (decoding whatever is ready after each piece), then
``--tail-samples`` zeros, then ``input_finished()`` and the remaining ready chunks.

``--batch N`` decodes N waves at once, the way a server does: their streams get their pieces
in lockstep and every round decodes all ready streams in one ``decode_streams`` call (one
batched model run, ``x [N, T, 80]``); ``max_batch`` in each result is the largest call made.
The start line names the ONNX Runtime that sherpa-onnx bundles (``OrtGetApiBase``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path

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
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--model-type", default="zipformer2_ctc", choices=["zipformer2_ctc", "wenet_ctc"])
    p.add_argument("--chunk-size", type=int, default=16, help="wenet_ctc: encoder frames per chunk")
    p.add_argument("--num-left-chunks", type=int, default=4, help="wenet_ctc: chunks of left context")
    args = p.parse_args(argv)

    import sherpa_onnx

    common = dict(tokens=args.tokens, model=args.model, num_threads=args.threads, sample_rate=args.sample_rate,
                  feature_dim=80, decoding_method="greedy_search")
    if args.model_type == "wenet_ctc":
        rec = sherpa_onnx.OnlineRecognizer.from_wenet_ctc(chunk_size=args.chunk_size,
                                                          num_left_chunks=args.num_left_chunks, **common)
    else:
        rec = sherpa_onnx.OnlineRecognizer.from_zipformer2_ctc(**common)
    print(json.dumps({"type": "start", "sherpa_onnx": getattr(sherpa_onnx, "__version__", None),
                      "onnxruntime": bundled_onnxruntime(sherpa_onnx), "batch": args.batch}), flush=True)
    waves = np.load(args.waves)
    order = list(range(len(waves.files)))
    for first in range(0, len(order), max(1, args.batch)):
        group = order[first:first + max(1, args.batch)]
        decode_group(rec, [np.asarray(waves[f"w{i}"], dtype=np.float32) for i in group], group, args)
    return 0


def decode_group(rec, group_waves: list, indices: list[int], args) -> None:
    """Feed the waves' streams in lockstep; decode every round's ready streams in one call."""
    streams = [rec.create_stream() for _ in group_waves]
    chunks = [0] * len(streams)
    largest = 0

    def drain() -> None:
        nonlocal largest
        while True:
            ready = [k for k, s in enumerate(streams) if rec.is_ready(s)]
            if not ready:
                return
            if len(ready) == 1:
                rec.decode_stream(streams[ready[0]])
            else:
                rec.decode_streams([streams[k] for k in ready])
            largest = max(largest, len(ready))
            for k in ready:
                chunks[k] += 1

    longest = max(w.size for w in group_waves)
    for start in range(0, longest, args.piece_samples):
        for k, (s, wave) in enumerate(zip(streams, group_waves)):
            if start < wave.size:
                s.accept_waveform(args.sample_rate, wave[start:start + args.piece_samples])
            if start < wave.size <= start + args.piece_samples:  # its last piece: tail padding, end
                s.accept_waveform(args.sample_rate, np.zeros(args.tail_samples, dtype=np.float32))
                s.input_finished()
        drain()
    for k, (s, wave) in enumerate(zip(streams, group_waves)):
        if wave.size == 0:
            s.accept_waveform(args.sample_rate, np.zeros(args.tail_samples, dtype=np.float32))
            s.input_finished()
    drain()
    for k, s in enumerate(streams):
        result = rec.get_result_all(s)
        print(json.dumps({"type": "result", "index": indices[k], "text": result.text, "tokens": list(result.tokens),
                          "chunks": chunks[k], "max_batch": largest}), flush=True)


def bundled_onnxruntime(sherpa_onnx) -> str | None:
    """The version string of the libonnxruntime that sherpa-onnx loads (its C API's GetVersionString)."""
    for lib in sorted((Path(sherpa_onnx.__file__).parent / "lib").glob("libonnxruntime*")):
        try:
            ort = ctypes.CDLL(str(lib))
            ort.OrtGetApiBase.restype = ctypes.POINTER(ctypes.c_void_p * 2)
            version = ctypes.CFUNCTYPE(ctypes.c_char_p)(ort.OrtGetApiBase().contents[1])()
            return version.decode()
        except (OSError, AttributeError, ValueError):
            continue
    return None


if __name__ == "__main__":
    sys.exit(main())
