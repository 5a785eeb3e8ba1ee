"""The parity gate: the exported file, run in ONNX Runtime chunk by chunk, against PyTorch.

The reference is the exact eval-mode model that was exported (fake quantization included),
run over the whole utterance with its chunk mask. Both see the same features, padded to whole
chunks the way :class:`edgetune.bench.runner.StreamingModel` pads them. Greedy CTC transcripts
are compared; ``identical_fraction`` is the share that match exactly.

Declared tolerances (the smallest identical fraction the gate accepts, and for float32 also
the largest logit difference):

======  ==================  =====================
bits    identical_fraction  max_abs_logit_diff
======  ==================  =====================
32      >= 0.99             <= 1e-3
16      >= 0.97             reported, not gated
8, 4    >= 0.95             reported, not gated
======  ==================  =====================

Integer kernels requantize every layer in integer arithmetic, so logits of 8/4-bit files
differ from the fake-quant emulation by a few quantization steps; what must survive is the
transcript. 8-bit weights use the 7-bit grid (see :mod:`edgetune.model.quant`) so this holds on
AVX2 CPUs without VNNI too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgetune.errors import ParityError


@dataclass(frozen=True)
class ParityTolerance:
    min_identical_fraction: float
    max_abs_logit_diff: float | None = None  # None: reported only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TOLERANCES: dict[int, ParityTolerance] = {
    32: ParityTolerance(0.99, 1e-3),
    16: ParityTolerance(0.97),
    8: ParityTolerance(0.95),
    4: ParityTolerance(0.95),
}


def check_parity(model: Any, onnx_path: str | Path, features: Sequence[np.ndarray],
                 tolerance: ParityTolerance, *, threads: int = 1, raise_on_failure: bool = True) -> dict[str, Any]:
    """Compare the ONNX file (streaming, ORT) with ``model`` (PyTorch, full utterance) on ``features``.

    ``features``: log-mel arrays ``[T, n_mels]``. Returns ``identical_fraction``,
    ``max_abs_logit_diff``, ``utterances``, ``tolerance`` and ``passed``; raises ParityError
    naming the file when the tolerance is not met (unless ``raise_on_failure`` is False).
    """
    import torch

    from edgetune.bench.runner import StreamingModel

    if not features:
        raise ParityError(f"parity check of {onnx_path} needs at least one utterance of features, got none")
    stream = StreamingModel(str(onnx_path), threads=threads)
    device = next(model.parameters()).device
    same, max_diff = 0, 0.0
    mismatches: list[dict[str, str]] = []
    model.eval()
    with torch.no_grad():
        for feats in features:
            feats = np.asarray(feats, dtype=np.float32)
            ort_logits = stream.run_utterance(feats)
            padded = torch.from_numpy(stream.pad_features(feats))[None].to(device)
            ref = model(padded)[0].float().cpu().numpy()
            max_diff = max(max_diff, float(np.abs(ref - ort_logits).max()))
            a, b = stream.greedy_text(ort_logits), stream.greedy_text(ref)
            if a == b:
                same += 1
            elif len(mismatches) < 3:
                mismatches.append({"onnx": a, "torch": b})
    fraction = same / len(features)
    passed = fraction >= tolerance.min_identical_fraction and (
        tolerance.max_abs_logit_diff is None or max_diff <= tolerance.max_abs_logit_diff)
    report = {
        "identical_fraction": fraction,
        "max_abs_logit_diff": max_diff,
        "utterances": len(features),
        "tolerance": tolerance.to_dict(),
        "passed": passed,
        "examples": mismatches,
    }
    if not passed and raise_on_failure:
        limit = "" if tolerance.max_abs_logit_diff is None else \
            f" and max_abs_logit_diff <= {tolerance.max_abs_logit_diff:g}"
        raise ParityError(
            f"ONNX Runtime and PyTorch disagree: identical_fraction={fraction:.3f} "
            f"({same}/{len(features)} transcripts), max_abs_logit_diff={max_diff:.4g}; the declared "
            f"tolerance is identical_fraction >= {tolerance.min_identical_fraction}{limit}. "
            f"First mismatches: {mismatches}. Fix: report this model and its knobs as an export bug; "
            f"do not loosen the tolerance"
        )
    return report
