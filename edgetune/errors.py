"""The error hierarchy. Every error a user can cause says the rule, the value and the fix."""

from __future__ import annotations


class EdgetuneError(Exception):
    """Base class of every error edgetune raises on purpose."""


class ConfigError(EdgetuneError, ValueError):
    """A config key, knob value or command-line option is invalid."""


class KeyConfigError(ConfigError):
    """A ConfigError that knows the key path (``space.sparsity.high``) it is about."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}" if path else message)


class DataError(EdgetuneError):
    """A dataset, manifest, audio file or transcript cannot be used."""


class ExportError(EdgetuneError):
    """The model could not be exported to ONNX."""


class ParityError(ExportError):
    """The exported ONNX model does not match the PyTorch model within the declared tolerance."""


class ArtifactError(EdgetuneError):
    """A model file is missing, unreadable, not an edgetune model, or fails its sha256 check."""


class TargetError(EdgetuneError):
    """A benchmark target is unknown, unreachable or failed (transport or runner error)."""


class TrainingError(EdgetuneError):
    """Training diverged (NaN loss) or ran out of memory."""


class StudyError(EdgetuneError):
    """A study directory or storage cannot be used (incompatible config, unreachable storage)."""


class ShipError(ExportError):
    """A model cannot be shipped to a runtime (sherpa-onnx missing, crashed, or its transcripts differ)."""
