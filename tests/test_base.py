"""Base models: `edgetune base train` on CPU (resumes bit-exactly after SIGKILL), the base
directory and its card, a team's own checkpoint for a family defined outside the package,
and the committed demo base (voices disjoint from the smoke test voices)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from edgetune.base import BaseConfig, import_checkpoint, load_base
from edgetune.errors import ConfigError

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "models" / "demo"

TINY_BASE = """\
name: tiny
preset: null
model_config: {d_model: 32, n_layers: 1, n_heads: 2, conv_kernel: 3}
dataset: tiny
chunks: [160, 320]
eval_chunks: [160, 320]
export_chunk_ms: 160
train: {epochs: 4, batch_size: 8, lr: 3.0e-3, device: cpu, num_threads: 1}
"""


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("EDGETUNE_CACHE", str(tmp / "cache"))
    return env


def _train(config: Path, out: Path, env: dict[str, str], **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edgetune", "base", "train", "--config", str(config), "--out", str(out),
           "--no-progress"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


@pytest.mark.slow
def test_base_train_resumes_bit_exactly_after_sigkill(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_BASE)
    env = _env(tmp_path)
    # the reference: one uninterrupted run
    ref = _train(config, tmp_path / "ref", env)
    out, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, out
    # the same run, killed (SIGKILL) once its first checkpoint is on disk, then run again
    killed = _train(config, tmp_path / "run", env)
    pointer = tmp_path / "run" / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while not pointer.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert killed.poll() is None, "training finished before it could be killed; the test needs a slower run"
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    first = pointer.read_text().strip()
    assert not (tmp_path / "run" / "card.json").exists()
    resumed = _train(config, tmp_path / "run", env)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert f"resuming base training from {tmp_path / 'run' / 'checkpoints' / first}" in out
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "run")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # optimizer, schedule, RNG, order
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    ref_card = json.loads((tmp_path / "ref" / "card.json").read_text())
    assert [h["train_loss"] for h in card["training"]["history"]] == [h["train_loss"] for h in ref_card["training"]["history"]]
    assert set(card["wer"]) == {"160", "320"} and card["wer"] == ref_card["wer"]
    for entry in card["wer"].values():
        assert entry["test_utterances"] == 12 and 0.0 <= entry["test"] and entry["parity_identical"] == 1.0
    assert card["training"]["epochs_run"] == 4 and card["training"]["chunks"] == [160, 320]
    assert card["data"]["train_voices"] and card["data"]["manifest_sha256"].keys() == {"train", "dev", "test"}
    # the directory opens as a base; a deleted model.onnx is rebuilt from the weights
    (tmp_path / "run" / "model.onnx").unlink()
    base = load_base(tmp_path / "run")
    assert (tmp_path / "run" / "model.onnx").is_file() and base.wer(160) == card["wer"]["160"]["test"]
    # changed weights are caught against the card's sha256
    w = _weights(tmp_path / "run")
    from safetensors.torch import save_file

    w["head.bias"] = w["head.bias"] + 1.0
    save_file(w, str(tmp_path / "run" / "model.safetensors"))
    with pytest.raises(ConfigError, match="does not match the sha256"):
        load_base(tmp_path / "run")


def test_base_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="preset 'huge' is unknown"):
        BaseConfig(preset="huge")
    with pytest.raises(ConfigError, match="unknown train key"):
        BaseConfig.from_dict({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="multiples of 40"):
        BaseConfig(chunks=(150,))
    assert BaseConfig().chunk_choices() == [160, 320, 640, 1280, 0]


@pytest.fixture(scope="module")
def team_checkpoint(tmp_path_factory):
    """A team's own weights: a family registered from tests/, trained briefly, saved with torch.save."""
    sys.path.insert(0, str(ROOT / "tests"))
    from families.causal_cnn import CausalCNN, CausalCNNConfig  # noqa: F401  (registers the family)

    from edgetune.knobs import Knobs

    torch.manual_seed(0)
    model = CausalCNN(CausalCNNConfig(), Knobs(bits=32, chunk_ms=160))
    folder = tmp_path_factory.mktemp("team")
    path = folder / "team.pt"
    torch.save({k: v for k, v in model.state_dict().items() if k not in ("feat_mean", "feat_std")}, path)
    return path


def test_own_checkpoint_goes_through_base_export_parity_bench(team_checkpoint, tmp_path):
    from edgetune.bench import bench_model

    base = import_checkpoint(team_checkpoint, "test_causal_cnn", {}, tmp_path / "base", dataset="tiny",
                             chunks=[160, 320], export_chunk_ms=160, progress=False, log=lambda *_: None)
    assert base.family == "test_causal_cnn" and set(base.card["wer"]) == {"160", "320"}
    assert all(v["parity_identical"] == 1.0 for v in base.card["wer"].values())  # the fp32 parity gate ran
    assert not torch.equal(base.build(160).feat_std, torch.ones(80))  # statistics computed from train
    result = bench_model(tmp_path / "base" / "model.onnx", target="local", runs=10, warmup=2)
    assert result["latency_ms"]["p50"] > 0 and result["size_bytes"] == (tmp_path / "base" / "model.onnx").stat().st_size
    # a derived candidate of the team's family: pruned to half width, int8, fine-tuned, measured on the file
    from edgetune.knobs import Knobs, TrainSettings
    from edgetune.pipeline import run_candidate

    r = run_candidate(Knobs(bits=8, depth_multiplier=0.5, chunk_ms=160), tmp_path / "cand", dataset="tiny",
                      train=TrainSettings(epochs=1, batch_size=8, device="cpu", num_threads=1),
                      base=tmp_path / "base", bench_runs=10, bench_warmup=2, progress=False)
    assert r["family"] == "test_causal_cnn" and r["init"] == "base" and r["parity"]["passed"]
    assert r["params"] < base.card["params"] and r["weight_storage"] == "int8"
    assert r["export_error"] == pytest.approx(r["wer"] - r["wer_torch"])


def test_own_checkpoint_mismatch_names_the_first_tensor(team_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match=r"tensor 'subsample.weight' has shape \(32, 80, 4\).*expects \(64, 80, 4\)"):
        import_checkpoint(team_checkpoint, "test_causal_cnn", {"d_model": 64}, tmp_path / "b", dataset="tiny",
                          progress=False, log=lambda *_: None)
    with pytest.raises(ConfigError, match="unknown model family 'nope'"):
        import_checkpoint(team_checkpoint, "nope", {}, tmp_path / "c", dataset="tiny", progress=False)


def test_own_checkpoint_is_never_unpickled(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "bad.pt"
    torch.save({"weight": Payload()}, bad)
    with pytest.raises(ConfigError, match=r"weights_only=True"):
        import_checkpoint(bad, "conformer_lite", {}, tmp_path / "b", dataset="tiny", progress=False)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.skipif(not (DEMO / "card.json").is_file(), reason="the committed demo base is not in this checkout")
def test_committed_demo_base_voices_are_disjoint_from_smoke_test_voices():
    from edgetune.data._corpus import plan_corpus, resolve_preset

    base = load_base(DEMO, rebuild_onnx=False)  # also checks the weights' sha256 against the card
    train_voices = set(base.card["data"]["train_voices"])
    smoke_test = {job.variant for job in plan_corpus(resolve_preset("smoke"), 0)["test"]}
    assert train_voices and smoke_test and not train_voices & smoke_test
    assert (DEMO / "model.safetensors").stat().st_size <= 8_000_000
    assert base.card["wer"]["320"]["test_utterances"] >= 1500


def test_finalize_early_then_continue(tmp_path):
    """A paused base can be finalized from its checkpoint (card: complete false) and later trained to the end."""
    from edgetune.base import train_base
    from edgetune.base._model import TrainingPaused

    config = BaseConfig.from_dict({**__import__("yaml").safe_load(TINY_BASE), "train": {
        "epochs": 3, "batch_size": 8, "lr": 3e-3, "device": "cpu", "num_threads": 1}})
    quiet = {"progress": False, "log": lambda *_: None}
    with pytest.raises(TrainingPaused, match="paused after epoch 1/3"):
        train_base(config, tmp_path / "b", max_minutes=1e-9, **quiet)
    early = train_base(config, tmp_path / "b", finalize=True, **quiet)
    assert early.card["complete"] is False and early.card["training"]["epochs_run"] == 1
    assert set(early.card["wer"]) == {"160", "320"} and (tmp_path / "b" / "model.onnx").is_file()
    done = train_base(config, tmp_path / "b", **quiet)  # continues from the epoch-1 checkpoint
    assert done.card["complete"] is True and done.card["training"]["epochs_run"] == 3
    assert [h["epoch"] for h in done.card["training"]["history"]] == [1, 2, 3]
    assert done.card["weights_sha256"] != early.card["weights_sha256"]


@pytest.mark.skipif(not (DEMO / "card.json").is_file(), reason="the committed demo base is not in this checkout")
def test_derived_candidate_from_the_committed_demo_base_end_to_end(tmp_path):
    """What the smoke study's int8 trial does, on the tiny corpus: the demo base, int8 QAT with
    distillation for one epoch, export at 160 ms, parity gate, WER/latency/size on the file.
    (Pruned derivations are covered by the own-checkpoint test; the demo base pruned to 0.75 needs
    more than one epoch of 48 utterances to pass the int8 parity gate.)"""
    from edgetune.knobs import Knobs, TrainSettings
    from edgetune.pipeline import run_candidate

    card = json.loads((DEMO / "card.json").read_text())
    r = run_candidate(Knobs(bits=8, chunk_ms=160, lr=2e-3), tmp_path / "c", dataset="tiny",
                      train=TrainSettings(epochs=1, batch_size=16, device="cpu", num_threads=1), base=DEMO,
                      bench_runs=10, bench_warmup=2, progress=False)
    assert r["init"] == "base" and r["base"]["weights_sha256"] == card["weights_sha256"]
    assert r["parity"]["passed"] and r["weight_storage"] == "int8" and r["knobs"]["chunk_ms"] == 160
    assert r["params"] == r["params_initial"] == card["params"]
    assert 0.0 <= r["wer_base"] < 0.5  # the trained base recognises the tiny test voices
    assert r["quant_cost"] == pytest.approx(r["wer_torch"] - r["wer_base"])
    assert r["export_error"] == pytest.approx(r["wer"] - r["wer_torch"])
    assert r["size_bytes"] == (tmp_path / "c" / "model.onnx").stat().st_size
