"""Near ties: can a transcript that differs from edgetune's come from rounding alone?

sherpa-onnx runs the model in the ONNX Runtime it bundles (1.28.2 in sherpa-onnx 2.0.1), edgetune
in the one that is installed. The two compute the same graph with different float kernels.
Measured on the smoke front (``reports/smoke/ship-int4.md``): the first tensor that differs is a
float ``LayerNormalization`` output, by 1e-6 (ORT 1.29 -> 1.30 changed it); a quantized
activation downstream rounds the other way, and the logits of 8- and 4-bit files end up to 4
output quantization steps (0.39-0.51) apart, fp32 logits 7.6e-6 apart. Where two characters'
logits are within a step or two of each other (one INT4 frame had an exact tie), the greedy
choice flips.

If every logit of the two runtimes is within ``eps`` of the other, a frame's choice can differ
only among labels within ``2 * eps`` of that frame's best. :func:`reachable_within` asks whether
the other runtime's tokens are the CTC collapse of some path that picks, at every frame, such a
label of edgetune's logits. If they are not, the difference is no rounding: an export fault.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: bits -> the largest logit difference between two ONNX Runtime builds accepted as kernel rounding
#: (measured: fp32 7.6e-6, int8 0.50, int4 0.51 between ORT 1.28/1.29 and 1.30/1.32; see above)
RUNTIME_LOGIT_TOLERANCE: dict[int, float] = {32: 1e-3, 16: 0.05, 8: 0.6, 4: 0.6}
#: integer widths may differ by near ties on at most this share of characters (as export/parity.py)
MAX_CHAR_DISAGREEMENT = 0.01


def runtime_tolerance(bits: int | None) -> float:
    """``eps`` for a file of ``bits`` (ShipError-free: unknown widths take the integer value)."""
    return RUNTIME_LOGIT_TOLERANCE.get(int(bits or 32), RUNTIME_LOGIT_TOLERANCE[4])


def reachable_within(logits: np.ndarray, target: Sequence[int], blank_id: int, delta: float) -> bool:
    """True iff some frame-wise choice of labels with ``logit >= frame max - delta`` collapses
    (CTC: merge repeats, drop blanks) to ``target``. ``logits`` is ``[T, V]``."""
    logits = np.asarray(logits, dtype=np.float64)
    allowed = logits >= logits.max(axis=-1, keepdims=True) - float(delta)  # [T, V]
    z = [blank_id]
    for t in target:
        z += [int(t), blank_id]
    n = len(z)
    if logits.shape[0] == 0:
        return len(target) == 0
    alive = np.zeros(n, dtype=bool)
    alive[0] = allowed[0, z[0]]
    if n > 1:
        alive[1] = allowed[0, z[1]]
    skip = np.array([k >= 2 and z[k] != blank_id and z[k] != z[k - 2] for k in range(n)])
    ok = np.array([[allowed[t, z[k]] for k in range(n)] for t in range(logits.shape[0])])
    for t in range(1, logits.shape[0]):
        prev = alive
        alive = prev.copy()
        alive[1:] |= prev[:-1]
        alive[2:] |= prev[:-2] & skip[2:]
        alive &= ok[t]
    return bool(alive[-1] or (n > 1 and alive[-2]))

