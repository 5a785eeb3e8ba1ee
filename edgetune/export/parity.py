"""The parity gate: the exported file, run in ONNX Runtime chunk by chunk, against PyTorch.

The reference is the exact eval-mode model that was exported (fake quantization included),
run over the whole utterance with its chunk mask. Both see the same features, padded to whole
chunks the way :class:`edgetune._runner.StreamingModel` pads them. Greedy CTC transcripts
are compared; ``identical_fraction`` is the share that match exactly.

Declared tolerances (the smallest identical fraction the gate accepts, and for float32 also
the largest logit difference):

======  ==================  ==================================================
bits    identical_fraction  otherwise
======  ==================  ==================================================
32      >= 0.99             (and max_abs_logit_diff <= 1e-3: both must hold)
16      >= 0.97             or every logit within 0.05
8, 4    >= 0.95             or ONNX-vs-PyTorch character disagreement <= 1 %
======  ==================  ==================================================

Integer kernels requantize every layer in integer arithmetic, so logits of 8/4-bit files
differ from the fake-quant emulation by a quantization step here and there, and on frames
where the model hesitates between two characters that step flips one character. Measured on
candidates derived from the committed demo base (trained, test WER 0.036 on smoke) on the
2-core AVX2 VM: int8 at width 1.0 had 36/40 and 38/40 identical transcripts with
max_abs_logit_diff 0.64, int4 37/40; every mismatch was a one-character edit ("settigs" vs
"settings"), under 0.5 % of the characters. The old near-tie rule (every logit within 0.5)
rejected the first of these. The rule is now about what a user sees, the transcript: the
character edit distance between the file's and PyTorch's greedy transcripts, over all parity
utterances, divided by the PyTorch transcripts' length (``char_disagreement``) must stay
within 1 %. A real export fault stays caught: full-range int8 weights on AVX2 without VNNI
garble whole words (14 % of utterances differ, stack-facts), and an untrained model's
near-ties are no excuse any more. 8-bit weights use the 7-bit grid (see :mod:`edgetune.model.quant`).
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
    # fp16: transcripts may differ on near-ties if every logit is this close
    max_abs_logit_diff_alt: float | None = None
    # integer widths: transcripts may differ by this share of characters (edit distance)
    max_char_disagreement: float | None = None

    def accepts(self, fraction: float, max_diff: float, char_disagreement: float = 1.0) -> bool:
        by_text = fraction >= self.min_identical_fraction and (
            self.max_abs_logit_diff is None or max_diff <= self.max_abs_logit_diff)
        by_logits = self.max_abs_logit_diff_alt is not None and max_diff <= self.max_abs_logit_diff_alt
        by_chars = self.max_char_disagreement is not None and char_disagreement <= self.max_char_disagreement
        return by_text or by_logits or by_chars

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TOLERANCES: dict[int, ParityTolerance] = {
    32: ParityTolerance(0.99, 1e-3),
    # fp16 rounding moves logits by ~1e-3..1e-2; a GPU study had 96/100 identical transcripts with
    # every logit within 0.014 (near-ties flipped), which no export bug looks like
    16: ParityTolerance(0.97, max_abs_logit_diff_alt=0.05),
    8: ParityTolerance(0.95, max_char_disagreement=0.01),
    4: ParityTolerance(0.95, max_char_disagreement=0.01),
}


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (characters)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def check_parity(model: Any, onnx_path: str | Path, features: Sequence[np.ndarray],
                 tolerance: ParityTolerance, *, threads: int = 1, raise_on_failure: bool = True) -> dict[str, Any]:
    """Compare the ONNX file (streaming, ORT) with ``model`` (PyTorch, full utterance) on ``features``.

    ``features``: log-mel arrays ``[T, n_mels]``. Returns ``identical_fraction``,
    ``max_abs_logit_diff``, ``utterances``, ``tolerance`` and ``passed``; raises ParityError
    naming the file when the tolerance is not met (unless ``raise_on_failure`` is False).
    """
    import torch

    from edgetune._runner import StreamingModel

    if not features:
        raise ParityError(f"parity check of {onnx_path} needs at least one utterance of features, got none")
    stream = StreamingModel(str(onnx_path), threads=threads)
    device = next(model.parameters()).device
    same, max_diff, edits, chars = 0, 0.0, 0, 0
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
            edits += _edit_distance(a, b)
            chars += max(1, len(b))
            if a == b:
                same += 1
            elif len(mismatches) < 3:
                mismatches.append({"onnx": a, "torch": b})
    fraction = same / len(features)
    disagreement = edits / max(1, chars)
    passed = tolerance.accepts(fraction, max_diff, disagreement)
    report = {
        "identical_fraction": fraction,
        "max_abs_logit_diff": max_diff,
        "char_disagreement": disagreement,
        "utterances": len(features),
        "tolerance": tolerance.to_dict(),
        "passed": passed,
        "examples": mismatches,
    }
    if not passed and raise_on_failure:
        limit = "" if tolerance.max_abs_logit_diff is None else \
            f" and max_abs_logit_diff <= {tolerance.max_abs_logit_diff:g}"
        if tolerance.max_abs_logit_diff_alt is not None:
            limit += f" (or max_abs_logit_diff <= {tolerance.max_abs_logit_diff_alt:g})"
        if tolerance.max_char_disagreement is not None:
            limit += f" (or char_disagreement <= {tolerance.max_char_disagreement:g})"
        raise ParityError(
            f"ONNX Runtime and PyTorch disagree: identical_fraction={fraction:.3f} "
            f"({same}/{len(features)} transcripts), char_disagreement={disagreement:.4f}, "
            f"max_abs_logit_diff={max_diff:.4g}; the declared "
            f"tolerance is identical_fraction >= {tolerance.min_identical_fraction}{limit}. "
            f"First mismatches: {mismatches}. If the PyTorch transcripts are poor too, the candidate is "
            f"over-compressed or undertrained: its frames are near ties that integer rounding flips (fine-tune "
            f"longer, or leave these knobs out of the space); otherwise report the model and its knobs as an "
            f"export bug. Do not loosen the tolerance"
        )
    return report
