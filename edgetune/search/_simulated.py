"""A simulated candidate runner: the search loop tested end to end without training a model.

It has the signature of :func:`edgetune.pipeline.run_candidate` and returns a result of the
same shape, from a smooth analytic model of how the knobs trade accuracy for speed and size
(less width, more sparsity and fewer bits are faster, smaller and less accurate), or it replays
results recorded by a real study (:meth:`SimulatedRunner.from_study_dir`), like syne-tune's
simulator backend. It writes ``model.onnx`` (placeholder bytes whose length is the reported
size, so size and sha256 checks are real) and ``result.json``. It can fail on chosen knobs
with a given error, sleep per epoch (to be killed mid-trial in tests), and calls ``on_epoch``
like the real pipeline. Not a model: the file it writes is not ONNX.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from edgetune._io import atomic_write_bytes, atomic_write_text
from edgetune.knobs import Knobs, TrainSettings

_SPEED = {4: 0.45, 8: 0.4, 16: 1.2, 32: 1.0}  # relative per-chunk compute vs fp32
_ACC = {4: 0.08, 8: 0.01, 16: 0.0, 32: 0.0}  # WER added by quantization
_BASE_PARAMS = 100_000
LOOKAHEAD_MS = 40


def _knob_key(knobs: Mapping[str, Any]) -> str:
    return json.dumps(dict(knobs), sort_keys=True)


class SimulatedRunner:
    """A callable with ``run_candidate``'s signature. See the module docstring."""

    needs_base = False  # results are synthetic: no base model is loaded or trained
    runner_kind = "simulated"  # run_study refuses to mix synthetic and measured trials in one study

    def __init__(
        self,
        *,
        seed: int = 0,
        fail_when: Callable[[Knobs], BaseException | None] | None = None,
        epoch_delay_s: float = 0.0,
        records: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.seed = seed
        self.fail_when = fail_when
        self.epoch_delay_s = epoch_delay_s
        self.records = {_knob_key(r["knobs"]): dict(r) for r in records}
        self.calls: list[Knobs] = []
        self.measured: list[Knobs] = []

    @classmethod
    def from_study_dir(cls, study_dir: str | Path, **kw: Any) -> "SimulatedRunner":
        """Replay every ``trials/*/result.json`` recorded by a real study."""
        found = []
        for p in sorted(Path(study_dir).glob("trials/*/result.json")):
            found.append(json.loads(p.read_text()))
        return cls(records=found, **kw)

    def _noise(self, knobs: Knobs, salt: str) -> random.Random:
        h = hashlib.sha256(f"{self.seed}|{salt}|{_knob_key(knobs.to_dict())}".encode()).digest()
        return random.Random(int.from_bytes(h[:8], "little"))

    def analytic(self, knobs: Knobs, epochs: int) -> dict[str, Any]:
        """The simulated result for ``knobs`` after ``epochs`` epochs of training."""
        dm, s, bits, chunk = knobs.depth_multiplier, knobs.sparsity, knobs.bits, knobs.chunk_ms
        params = _BASE_PARAMS * dm * dm * (1.0 - s)
        size = int(params * bits / 8) + 2048
        compute = 1.0 + 40.0 * dm * dm * (1.0 - s) * (chunk / 320) * _SPEED[bits]
        rng = self._noise(knobs, "wer")
        wer = 0.12 + 0.25 * (1 - dm) ** 2 + 0.3 * s * s + _ACC[bits] + 0.02 * 80 / chunk
        wer += 0.6 * math.exp(-epochs / 2.0) + rng.gauss(0.0, 0.005)
        wer = min(max(wer, 0.0), 1.5)
        groups = {"accent_a": wer * 0.8, "accent_b": wer, "accent_c": wer * 1.4}
        return {
            "knobs": knobs.to_dict(),
            "wer": wer,
            "wer_torch": wer * 0.99,
            "worst_group_wer": max(groups.values()),
            "wer_per_group": groups,
            "latency_ms": {"p50": compute, "p90": compute * 1.1, "p99": compute * 1.3, "mean": compute * 1.02,
                           "std": compute * 0.05},
            "rtf": compute / chunk,
            "algorithmic_latency_ms": float(chunk + LOOKAHEAD_MS),
            "size_bytes": size,
            "gzip_bytes": int(size * 0.9),
            "peak_rss_bytes": int(size * 3 + 50e6),
            "parity": {"identical_fraction": 1.0, "max_abs_logit_diff": 0.0},
            "host": {"hostname": "simulated", "machine": "simulated", "processor": "simulated"},
            "train_seconds": 0.0,
            "simulated": True,
        }

    def __call__(
        self,
        knobs: Knobs,
        out_dir: Path,
        *,
        dataset: str = "smoke",
        train: TrainSettings = TrainSettings(),
        target: str = "local",
        bench_threads: int = 1,
        bench_runs: int = 200,
        bench_warmup: int = 20,
        family: str = "conformer_lite",
        progress: bool = True,
        on_epoch: Callable[..., Any] | None = None,
        **derived: Any,   # base, init, distill_weight, ...: a simulated candidate ignores how it was made
    ) -> dict[str, Any]:
        self.calls.append(knobs)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        epochs_run, stopped = 0, False
        for epoch in range(1, train.epochs + 1):
            if self.epoch_delay_s:
                time.sleep(self.epoch_delay_s)
            epochs_run = epoch
            if on_epoch is not None:
                r = self.analytic(knobs, epoch)
                metrics = {"wer": r["wer"], "worst_group_wer": r["worst_group_wer"], "dev_loss": r["wer"] * 3,
                           "train_loss": r["wer"] * 3, "seconds": 0.0}
                if on_epoch(epoch, metrics) is False:  # the pipeline's contract: False stops training
                    stopped = True
                    break
        if self.fail_when is not None:
            err = self.fail_when(knobs)
            if err is not None:
                raise err
        recorded = self.records.get(_knob_key(knobs.to_dict()))
        result = dict(recorded) if recorded else self.analytic(knobs, epochs_run)
        result.update(epochs_run=epochs_run, stopped_early=stopped)
        data = self._noise(knobs, "bytes").randbytes(int(result["size_bytes"]))
        atomic_write_bytes(out_dir / "model.onnx", data)
        result["sha256"] = hashlib.sha256(data).hexdigest()
        atomic_write_text(out_dir / "result.json", json.dumps(result, indent=2))
        return result


    def measure_untrained(
        self,
        knobs: Knobs,
        out_dir: Path,
        *,
        family: str = "conformer_lite",
        target: str = "local",
        bench_threads: int = 1,
        bench_runs: int = 200,
        bench_warmup: int = 20,
        **derived: Any,
    ) -> dict[str, Any]:
        """Like ``edgetune.pipeline.measure_untrained``: latency and size only (no WER)."""
        self.measured.append(knobs)
        r = self.analytic(knobs, 0)
        keep = ("latency_ms", "rtf", "algorithmic_latency_ms", "size_bytes", "gzip_bytes", "peak_rss_bytes", "host")
        return {**{k: r[k] for k in keep}, "knobs": knobs.to_dict(), "untrained": True}


__all__ = ["SimulatedRunner"]
