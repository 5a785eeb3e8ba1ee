#!/usr/bin/env python3
"""edgetune on-device runner: a standalone script whose only dependencies are numpy and onnxruntime.

It is copied as-is to boards and phones (Termux), so it must never import edgetune.
This module also serves the package itself: ``StreamingModel`` is the one implementation
of "run an edgetune ONNX file chunk by chunk with its caches" (WER, parity, transcribe
and latency all go through it).
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort

METADATA_KEY = "edgetune"


class StreamingModel:
    """An edgetune streaming ONNX file in an ONNX Runtime session, with its cache state."""

    def __init__(self, path: str, threads: int = 1, providers: list[str] | None = None,
                 optimization: str = "all"):
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[optimization]
        self.session = ort.InferenceSession(path, sess_options=so,
                                            providers=providers or ["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ValueError(f"{path} has no '{METADATA_KEY}' metadata: not an edgetune streaming model")
        self.meta = json.loads(meta[METADATA_KEY])
        self.chunk_frames = int(self.meta["chunk_frames"])
        self.n_mels = int(self.meta["features"]["n_mels"])
        self.features_input = self.meta["features_input"]
        self.logits_output = self.meta["logits_output"]
        self.caches = self.meta["caches"]
        self.output_names = [self.logits_output] + [c["output"] for c in self.caches]
        self.reset()

    def reset(self) -> None:
        """Start a new utterance: every cache back to zeros."""
        self.state = {c["input"]: np.zeros(c["shape"], dtype=np.dtype(c.get("dtype", "float32")))
                      for c in self.caches}

    def step(self, chunk: np.ndarray) -> np.ndarray:
        """Run one chunk [chunk_frames, n_mels] (or [1, chunk_frames, n_mels]); return logits [T', vocab]."""
        x = np.asarray(chunk, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        feeds = {self.features_input: x, **self.state}
        outs = self.session.run(self.output_names, feeds)
        for c, new in zip(self.caches, outs[1:]):
            self.state[c["input"]] = new
        return outs[0][0]

    def pad_features(self, feats: np.ndarray) -> np.ndarray:
        """Pad [T, n_mels] features at the end to a whole number of chunks (with log(offset), i.e. silence)."""
        t = feats.shape[0]
        n = max(1, -(-t // self.chunk_frames)) * self.chunk_frames
        if n == t:
            return feats.astype(np.float32, copy=False)
        fill = np.log(float(self.meta["features"]["log_offset"]))
        pad = np.full((n - t, feats.shape[1]), fill, dtype=np.float32)
        return np.concatenate([feats.astype(np.float32, copy=False), pad], axis=0)

    def run_utterance(self, feats: np.ndarray) -> np.ndarray:
        """Stream a whole utterance's features [T, n_mels] chunk by chunk; return all logits [T', vocab]."""
        self.reset()
        x = self.pad_features(feats)
        outs = [self.step(x[i:i + self.chunk_frames]) for i in range(0, x.shape[0], self.chunk_frames)]
        return np.concatenate(outs, axis=0)

    def greedy_text(self, logits: np.ndarray) -> str:
        """CTC greedy decoding: best path, collapse repeats, drop blanks."""
        vocab = self.meta["vocabulary"]
        blank = int(self.meta["blank_id"])
        ids = logits.argmax(axis=-1)
        out, prev = [], -1
        for i in ids.tolist():
            if i != prev and i != blank:
                out.append(vocab[i])
            prev = i
        return " ".join("".join(out).split())
