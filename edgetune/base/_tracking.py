"""Experiment tracking for ``edgetune base tune``: nothing (default) or MLflow.

``tracking: mlflow`` logs each trial (and each PBT member round) as an MLflow run: its knob
values as params, train loss, dev loss and dev WER per epoch as metrics (``step`` = epoch), and
the study's report files as artifacts of a ``summary`` run. The store is a local SQLite file
``<study dir>/mlflow.db`` (MLflow 3 refuses its old ``./mlruns`` file store unless
``MLFLOW_ALLOW_FILE_STORE=true``) unless ``mlflow_uri`` names another tracking URI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetune.errors import ConfigError


class _NoRun:
    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def end(self, status: str = "FINISHED") -> None:
        pass


class NoTracker:
    def start(self, name: str, params: dict[str, Any]) -> _NoRun:
        return _NoRun()

    def artifacts(self, folder: Path) -> None:
        pass


class _MlflowRun:
    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            if value == value:  # not NaN
                self.client.log_metric(self.run_id, key, float(value), step=step)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


class MlflowTracker:
    """One MLflow experiment per study (named after it), through ``MlflowClient`` (no global active run)."""

    def __init__(self, uri: str, experiment: str) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError("tracking: mlflow needs the mlflow package; fix: pip install mlflow "
                              "(or set tracking: none)") from None
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)

    def start(self, name: str, params: dict[str, Any]) -> _MlflowRun:
        run = self.client.create_run(self.experiment_id, run_name=name)
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, value)
        return _MlflowRun(self.client, run.info.run_id)

    def artifacts(self, folder: Path) -> None:
        run = self.client.create_run(self.experiment_id, run_name="summary")
        self.client.log_artifacts(run.info.run_id, str(folder))
        self.client.set_terminated(run.info.run_id)


def make_tracker(config: Any, root: Path) -> Any:
    if config.tracking != "mlflow":
        return NoTracker()
    uri = config.mlflow_uri or f"sqlite:///{(Path(root).resolve() / 'mlflow.db')}"
    return MlflowTracker(uri, config.study_name)
