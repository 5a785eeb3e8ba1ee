"""The contract between an exported edgetune ONNX file and anything that runs it.

An edgetune model is one ONNX graph that processes **one chunk** of Kaldi fbank features plus
explicit cache tensors, and returns the chunk's CTC logits plus the updated caches::

    inputs : features [1, chunk_frames, n_mels] float32, <cache inputs...>
    outputs: logits   [1, chunk_frames // subsampling, vocab] float32, <cache outputs...>

Everything a client needs to run it is in ``metadata_props`` under the key ``edgetune``
(one JSON object, described by :class:`StreamingSpec`). Caches start as zeros of their
declared shape; each output cache is fed back as the matching input on the next chunk.

Pure Python: no torch, no onnx import at module level.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from edgetune.data.fbank import FeatureSpec  # numpy-only module, no torch

METADATA_KEY = "edgetune"
FORMAT = "edgetune-streaming-ctc"
FORMAT_VERSION = 2  # 2: Kaldi fbank features


@dataclass(frozen=True)
class CacheSpec:
    """One cache tensor: fed as ``input``, returned as ``output``, zeros of ``shape`` at start."""

    input: str
    output: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class StreamingSpec:
    """Everything in the ``edgetune`` metadata entry of an exported model."""

    knobs: dict[str, Any]
    family: str
    model_config: dict[str, Any]
    vocabulary: list[str]
    blank_id: int
    features: FeatureSpec
    chunk_ms: int
    chunk_frames: int
    subsampling: int
    lookahead_ms: int
    features_input: str
    logits_output: str
    caches: list[CacheSpec]
    weight_storage: str  # "float32" | "float16" | "int8" | "int4"
    edgetune_version: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def algorithmic_latency_ms(self) -> float:
        """Delay from a sample's arrival until it can affect output: chunk + lookahead + the half
        window a centred Kaldi frame (``snip_edges=False``) reaches past its chunk."""
        window_ms = 1000.0 * (self.features.win_length - self.features.hop_length) / 2 / self.features.sample_rate
        return float(self.chunk_ms + self.lookahead_ms) + window_ms

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StreamingSpec":
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"metadata format is {d.get('format')!r}, expected {FORMAT!r}")
        if int(d.get("format_version", 0)) < FORMAT_VERSION:
            raise ValueError(
                f"metadata format_version {d.get('format_version')} predates Kaldi fbank features "
                f"(format_version {FORMAT_VERSION}); re-export the model with this edgetune"
            )
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(
                f"metadata format_version {d['format_version']} is newer than this edgetune "
                f"understands ({FORMAT_VERSION}); upgrade edgetune"
            )
        d["features"] = FeatureSpec(**d["features"])
        d["caches"] = [CacheSpec(c["input"], c["output"], tuple(c["shape"]), c.get("dtype", "float32"))
                       for c in d["caches"]]
        return cls(**d)

    def metadata_props(self) -> dict[str, str]:
        """The key/value pairs written to the ONNX file's metadata_props."""
        return {
            METADATA_KEY: self.to_json(),
            # flat copies for humans and non-Python clients
            "edgetune.version": self.edgetune_version,
            "edgetune.chunk_ms": str(self.chunk_ms),
            "edgetune.sample_rate": str(self.features.sample_rate),
            "edgetune.bits": str(self.knobs.get("bits")),
        }
