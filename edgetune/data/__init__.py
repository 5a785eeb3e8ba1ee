"""The data stage: corpora, manifests, audio, text and log-mel features.

- :func:`load_dataset` is the entry point: ``"smoke"``/``"full"``/``"tiny"`` build (or load
  from cache) the built-in eSpeak corpus (:func:`build_corpus`); a folder with
  ``train.jsonl``/``dev.jsonl``/``test.jsonl`` or in LibriSpeech layout is read as is.
- :func:`validate_dataset` checks every audio file up front; :func:`check_dataset` lists every
  problem of a dataset folder with a summary (``edgetune data check DIR``).
- Text: :data:`VOCABULARY`, :func:`normalize_text`, :func:`encode`, :func:`decode`.
- Features: :func:`compute_fbank` (Kaldi fbank, numpy only, in :mod:`edgetune.data.fbank`),
  :func:`spec_augment`, :func:`extract_features` (cached on disk), in
  :mod:`edgetune.data.features`, which imports torch only inside the functions that need it.
  Importing this package imports neither torch nor torchaudio nor scipy.signal.
"""

from edgetune.data._audio import load_audio, resample
from edgetune.data._corpus import PRESETS, CorpusPreset, build_corpus, default_cache_root
from edgetune.data._check import DatasetReport, Finding, check_dataset
from edgetune.data._datasets import load_dataset, load_validated_dataset, validate_dataset
from edgetune.data._manifest import SPLITS, DatasetSplits, Utterance, read_manifest, write_manifest
from edgetune.data._text import (BLANK_ID, VOCABULARY, count_unknown_chars, decode, encode, normalize_text,
                                 unknown_chars)
from edgetune.data.fbank import FeatureSpec, compute_fbank, num_frames
from edgetune.data.features import extract_features, spec_augment

__all__ = [
    "BLANK_ID", "PRESETS", "SPLITS", "VOCABULARY", "CorpusPreset", "DatasetSplits", "Utterance",
    "build_corpus", "count_unknown_chars", "decode", "default_cache_root", "encode", "load_audio",
    "load_dataset", "normalize_text", "read_manifest", "resample", "unknown_chars", "validate_dataset",
    "write_manifest", "FeatureSpec", "compute_fbank", "spec_augment", "extract_features",
    "num_frames", "DatasetReport", "Finding", "check_dataset", "load_validated_dataset",
]
