"""The base stage: a streaming model trained once (or brought by the user) that every trial is derived from.

- :class:`BaseConfig` / :func:`load_base_config`: what ``edgetune base train --config`` reads;
  :data:`BASE_PRESETS` the named architectures.
- :func:`train_base`: dynamic-chunk training with checkpoints that survive a kill.
- :func:`load_base`: open a base directory; :func:`import_checkpoint`: a team's own weights.
- :func:`derive_model`: a trial's model derived from a base (prune, quantize), before fine-tuning.
- :func:`load_tune_config` / :class:`TuneConfig`: what ``edgetune base tune --config`` reads;
  ``TuneConfig.recipe(params)`` is the base config with a trial's knobs applied.

Pure Python at import; torch is imported inside the functions.
"""

from edgetune.base._config import BASE_PRESETS, BaseConfig, BaseTrainConfig, load_base_config
from edgetune.base._derive import derive_model
from edgetune.base._model import BaseModel, import_checkpoint, load_base, train_base
from edgetune.base._tune_config import TuneConfig, load_tune_config

__all__ = ["BASE_PRESETS", "BaseConfig", "BaseModel", "BaseTrainConfig", "TuneConfig", "derive_model",
           "import_checkpoint", "load_base", "load_base_config", "load_tune_config", "train_base"]
