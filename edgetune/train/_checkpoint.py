"""Training checkpoints that survive a kill: weights in safetensors, everything else in JSON, never pickle.

A checkpoint is a folder ``<root>/epoch-NNNN/`` holding

- ``model.safetensors``: the model's state dict;
- ``optimizer.safetensors``: every tensor of the optimizer state (``state.<param index>.<name>``);
- ``rng.safetensors``: torch's CPU (and CUDA) RNG state and the trainer's generator (batch order,
  chunk draws, SpecAugment);
- ``state.json``: epoch, step, history, optimizer hyper-parameters, training seconds, and the
  ``fingerprint`` of the run (config, data) it belongs to.

It is written to a temporary folder first, then ``<root>/latest`` (a one-line text file) is
replaced atomically to name it; older checkpoints are removed afterwards. A kill at any point
leaves ``latest`` naming a complete checkpoint (or none), so the same command resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from edgetune._io import atomic_write_text, replace_dir
from edgetune.errors import ConfigError

LATEST = "latest"


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


class TrainCheckpoint:
    """Save and resume one training run in ``root``; ``fingerprint`` (JSON-able) must match to resume."""

    def __init__(self, root: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        pointer = self.root / LATEST
        if not pointer.is_file():
            return None
        folder = self.root / pointer.read_text(encoding="utf-8").strip()
        return folder if (folder / "state.json").is_file() else None

    def save(self, model: Any, opt: torch.optim.Optimizer, gen: torch.Generator, *, epoch: int, step: int,
             history: list[dict[str, Any]], train_seconds: float, device: str | None = None) -> Path:
        from safetensors.torch import save_file

        self.root.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        tmp = self.root / f".{name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(_contiguous(model.state_dict()), str(tmp / "model.safetensors"))
        opt_state = opt.state_dict()
        flat: dict[str, torch.Tensor] = {}
        scalars: dict[str, Any] = {}
        for index, entry in opt_state["state"].items():
            for key, value in entry.items():
                if torch.is_tensor(value):
                    flat[f"state.{index}.{key}"] = value
                else:
                    scalars[f"{index}.{key}"] = value
        save_file(_contiguous(flat), str(tmp / "optimizer.safetensors"))
        rng = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state()
        save_file(_contiguous(rng), str(tmp / "rng.safetensors"))
        state = {"epoch": epoch, "step": step, "history": history, "train_seconds": train_seconds, "device": device,
                 "param_groups": opt_state["param_groups"], "optimizer_scalars": scalars,
                 "fingerprint": self.fingerprint}
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        for f in tmp.iterdir():  # contents on disk before the folder is named
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        final = self.root / name
        replace_dir(tmp, final)
        atomic_write_text(self.root / LATEST, name + "\n")
        for old in self.root.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def state(self) -> dict[str, Any] | None:
        """The latest checkpoint's ``state.json`` (fingerprint checked), or None."""
        folder = self.latest()
        if folder is None:
            return None
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        self._check(folder, state)
        return state

    def _check(self, folder: Path, state: dict[str, Any]) -> None:
        if state.get("fingerprint") != self.fingerprint:
            theirs, ours = state.get("fingerprint") or {}, self.fingerprint
            keys = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise ConfigError(
                f"checkpoint {folder} belongs to another run (differs in {keys}); fix: train into a new "
                f"output folder, or delete {self.root} to start this one from scratch")

    def load(self, model: Any, opt: torch.optim.Optimizer, gen: torch.Generator,
             device: torch.device) -> dict[str, Any] | None:
        """Restore model, optimizer and RNG from the latest checkpoint; returns its state (None if none)."""
        from safetensors.torch import load_file

        folder = self.latest()
        if folder is None:
            return None
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        self._check(folder, state)
        model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)))
        flat = load_file(str(folder / "optimizer.safetensors"), device=str(device))
        per_param: dict[int, dict[str, Any]] = {}
        for key, value in flat.items():
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
        for key, value in state.get("optimizer_scalars", {}).items():
            index, name = key.split(".", 1)
            per_param.setdefault(int(index), {})[name] = value
        for entry in per_param.values():  # AdamW keeps `step` on the CPU unless capturable
            if "step" in entry and torch.is_tensor(entry["step"]):
                entry["step"] = entry["step"].cpu()
        opt.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
        rng = load_file(str(folder / "rng.safetensors"))
        torch.set_rng_state(rng["torch"])
        gen.set_state(rng["generator"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        return state
