"""The training stage: CTC training with quantization-aware training and structured pruning.

Everything here imports torch; names are loaded on first use so ``import edgetune.train``
itself stays light.
"""

from __future__ import annotations

from edgetune._imports import lazy_getattr

_LAZY = {
    "train_model": "edgetune.train.trainer",
    "TrainResult": "edgetune.train.trainer",
    "evaluate": "edgetune.train.trainer",
    "calibrate": "edgetune.train.trainer",
    "ctc_greedy": "edgetune.train.trainer",
    "word_error_rate": "edgetune.data._text",
    "resolve_device": "edgetune.train.trainer",
    "Example": "edgetune.train._batching",
    "make_examples": "edgetune.train._batching",
    "bucket_batches": "edgetune.train._batching",
    "collate": "edgetune.train._batching",
    "collate_gathered": "edgetune.train._batching",
    "WEIGHT_DECAY": "edgetune.train.trainer",
    "TrainCheckpoint": "edgetune.train._checkpoint",
    "Distillation": "edgetune.train.trainer",
    "StructuredPruner": "edgetune.train.pruning",
    "prune_model": "edgetune.train.pruning",
    "count_params": "edgetune.train.pruning",
    "FastPath": "edgetune.train._fast",
    "lr_for_batch": "edgetune.train._fast",
    "Forward": "edgetune.train._fast",
    "apply_observer_mode": "edgetune.train._fast",
    "make_optimizer": "edgetune.train._fast",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = sorted(_LAZY)
