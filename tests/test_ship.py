"""Shipping to sherpa-onnx: the exported file runs in the real sherpa-onnx (a subprocess) with the
CTC tokens of edgetune's own runner, for fp32, int8 (pruned: widths differ by layer) and INT4."""

from __future__ import annotations

import os
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import tiny_test_audio

pytest.importorskip("sherpa_onnx", reason="sherpa-onnx is in the dev and ship extras")

from edgetune.cli import main  # noqa: E402
from edgetune.errors import ShipError  # noqa: E402
from edgetune.knobs import Knobs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARCH = {"d_model": 32, "n_layers": 2, "n_heads": 2, "conv_kernel": 3}
SHERPA_KEYS = ("encoder_dims", "query_head_dims", "value_head_dims", "num_heads", "num_encoder_layers",
               "cnn_module_kernels", "left_context_len", "T", "decode_chunk_len")
MODELS = {  # name -> (knobs, architecture)
    "fp32": (Knobs(bits=32, chunk_ms=160), ARCH),
    "int8-pruned": (Knobs(bits=8, chunk_ms=160, sparsity=0.5), ARCH),
    "int4": (Knobs(bits=4, chunk_ms=320), ARCH),
    "fp32-even-kernel": (Knobs(bits=32, chunk_ms=160), {**ARCH, "conv_kernel": 4, "n_layers": 1}),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Untrained exports (untied random logits: every frame's argmax is compared, not just blanks)."""
    from edgetune.pipeline import export_untrained

    root = tmp_path_factory.mktemp("ship_models")
    out = {}
    for name, (knobs, arch) in MODELS.items():
        export_untrained(knobs, root / f"{name}.onnx", model_config=arch, seed=1)
        out[name] = root / f"{name}.onnx"
    return out


@pytest.fixture(scope="module")
def audio() -> list:
    return tiny_test_audio()


@pytest.mark.parametrize("name", list(MODELS))
def test_sherpa_decodes_the_tokens_of_edgetunes_runner(models, audio, tmp_path, name):
    from edgetune.ship import ship_check

    out = tmp_path / "ship"
    r = ship_check(models[name], audio, out, min_identical=0.8, batch=3)
    # the export is exact: on sherpa's own features (kaldi-native-fbank) every token is edgetune's
    assert r["identical_kaldi_fbank_fraction"] == 1.0 and r["export_exact"] is True, r["mismatches"]
    assert r["chunks_match"], "sherpa ran a different number of chunks than IsReady predicts"
    # three streams per decode_streams call (one model run on x [3, T, 80]) give the one-stream tokens
    assert r["max_batch"] == 3 and r["batch_identical_fraction"] == 1.0, r["mismatches"]
    assert r["passed"] and r["identical_fraction"] >= 0.8, r["mismatches"]
    assert r["sherpa_onnx_version"] == "2.0.1"
    rows = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(rows) == len(audio) == r["utterances"]
    assert max(len(row["sherpa"]) for row in rows) >= 3, "the comparison must not be between empty outputs"
    assert json.loads((out / "ship.json").read_text()) == r


def test_primitive_layernorm_ships_a_stamped_copy_sherpa_decodes_exactly(models, audio, tmp_path):
    """--layernorm primitive: the shipped graph has no LayerNormalization node (so sherpa's bundled
    ONNX Runtime computes the same floats as this one), the copy names its source, and sherpa's tokens
    are compared with both the copy and the study's own file."""
    import hashlib

    import onnx

    from edgetune.errors import ShipError
    from edgetune.export.metadata import METADATA_KEY
    from edgetune.ship import ship_check

    out = tmp_path / "ship"
    r = ship_check(models["int4"], audio, out, min_identical=0.8, layernorm="primitive")
    assert r["layernorm"] == "primitive" and r["study_file"] == str(models["int4"])
    assert r["identical_kaldi_fbank_fraction"] == 1.0 and r["passed"], r["mismatches"]
    assert 0.0 <= r["identical_to_study_file_fraction"] <= 1.0
    copy = onnx.load(r["source"])
    assert "LayerNormalization" not in {n.op_type for n in copy.graph.node}
    def ops(graph) -> set[str]:  # the batched file runs the chunk graph inside a Scan
        found = {n.op_type for n in graph.node}
        for n in graph.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    found |= ops(a.g)
        return found

    shipped_ops = ops(onnx.load(r["model"]).graph)
    assert "Scan" in shipped_ops and "LayerNormalization" not in shipped_ops and "Sqrt" in shipped_ops
    extra = json.loads({p.key: p.value for p in copy.metadata_props}[METADATA_KEY])["extra"]
    assert extra["layernorm"]["mode"] == "primitive" and extra["layernorm"]["rewritten_nodes"] >= 2
    assert extra["layernorm"]["source_sha256"] == hashlib.sha256(models["int4"].read_bytes()).hexdigest()
    fused = ship_check(models["int4"], audio[:1], tmp_path / "fused", min_identical=0.0, batch=1)
    assert fused["layernorm"] == "fused" and fused["identical_to_study_file_fraction"] is None
    with pytest.raises(ShipError, match="layernorm must be one of fused, primitive"):
        ship_check(models["int4"], audio, tmp_path / "bad", layernorm="exact")


@pytest.mark.parametrize("name", ["int8-pruned", "int4"])
def test_shipped_file_keeps_the_integer_weights(models, tmp_path, name):
    import onnx

    from edgetune.export import _passes
    from edgetune.export.sherpa import export_sherpa

    done = export_sherpa(models[name], tmp_path)
    src, dst = onnx.load(str(models[name])), onnx.load(str(done.model))
    # every weight matrix ships unchanged (same name, type and bytes); the adapter adds int64 constants only
    dst_inits = {i.name: i for i in dst.graph.initializer}
    assert all(dst_inits[i.name].SerializeToString() == i.SerializeToString()
               for i in src.graph.initializer if len(i.dims) >= 2 or i.name in dst_inits)
    assert {i.data_type for n, i in dst_inits.items() if n.startswith("sherpa_")} == {onnx.TensorProto.INT64}
    assert ("INT4" if name == "int4" else "INT8") in _passes.weight_storage_counts(dst)
    opset = {o.domain: o.version for o in dst.opset_import}[""]
    assert opset == (21 if name == "int4" else 17)
    assert dst.ir_version <= 10  # loads in ONNX Runtime 1.27 (sherpa's mobile builds)


def test_metadata_and_tokens_follow_sherpas_layout(models, tmp_path):
    from edgetune.export.metadata import StreamingSpec
    from edgetune.export.sherpa import read_sherpa_metadata, export_sherpa

    src = StreamingSpec.from_json(read_sherpa_metadata(models["int8-pruned"])["edgetune"])
    done = export_sherpa(models["int8-pruned"], tmp_path)
    meta = read_sherpa_metadata(done.model)
    assert set(SHERPA_KEYS) <= set(meta)
    layers = src.model_config["layers"]
    assert meta["encoder_dims"] == ",".join(str(la["conv_dim"]) for la in layers)
    assert meta["query_head_dims"] == ",".join(str(la["attn_dim"]) for la in layers)
    assert meta["T"] == meta["decode_chunk_len"] == str(src.chunk_frames)
    lines = done.tokens.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<blank> 0" and lines[1] == "\u2581 1" and len(lines) == len(src.vocabulary)
    assert all(len(line.split()) == 2 for line in lines)
    # the shipped file is also an edgetune streaming file: its caches are sherpa's states, in order
    shipped = StreamingSpec.from_json(meta["edgetune"])
    assert [c.input for c in shipped.caches][:6] == ["key_0", "nonlin_attn_0", "val1_0", "val2_0", "conv1_0", "conv2_0"]
    assert shipped.caches[-1].input == "processed_lens" and shipped.caches[-1].dtype == "int64"
    assert "python" in done.howto.read_text().lower() and "android" in done.howto.read_text().lower()


def test_edgetune_runner_runs_the_shipped_file_like_the_source(models, tmp_path):
    """Past the left context (the mask from processed_lens saturates) the logits still agree."""
    from edgetune._runner import StreamingModel
    from edgetune.export.sherpa import export_sherpa

    done = export_sherpa(models["fp32"], tmp_path)
    a, b = StreamingModel(str(models["fp32"])), StreamingModel(str(done.model))
    feats = np.random.default_rng(3).standard_normal((12 * a.chunk_frames, 80)).astype(np.float32) * 3 - 8
    np.testing.assert_allclose(a.run_utterance(feats), b.run_utterance(feats), atol=1e-5)


def test_a_missing_metadata_key_ends_sherpa_and_is_reported(models, tmp_path):
    import onnx

    from edgetune.export.sherpa import export_sherpa
    from edgetune.ship import decode_with_sherpa

    done = export_sherpa(models["fp32"], tmp_path)
    m = onnx.load(str(done.model))
    kept = [p for p in m.metadata_props if p.key != "left_context_len"]
    del m.metadata_props[:]
    m.metadata_props.extend(kept)
    onnx.save(m, str(done.model))
    with pytest.raises(ShipError, match="left_context_len") as err:
        decode_with_sherpa(done.model, done.tokens, [np.zeros(8000, np.float32)], tail_samples=2880)
    assert "exit code" in str(err.value)


def test_ship_cli_exit_codes(models, audio, tmp_path):
    import soundfile as sf

    wav_dir = tmp_path / "wavs"
    wav_dir.mkdir()
    sf.write(wav_dir / "a.wav", audio[-1], 16000)
    out = tmp_path / "out"
    assert main(["ship", str(models["int4"]), "--out", str(out), "--check", str(wav_dir)]) == 0
    assert {"model.onnx", "tokens.txt", "README.md", "ship.json"} <= {p.name for p in out.iterdir()}
    assert main(["ship", str(out / "model.onnx"), "--out", str(tmp_path / "again")]) == 2  # already shipped
    assert main(["ship", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_a_trained_int8_candidate_ships_with_identical_transcripts(tmp_path):
    from edgetune.data import load_dataset
    from edgetune.knobs import TrainSettings
    from edgetune.pipeline import run_candidate
    from edgetune.ship import ship_check

    demo = REPO / "models" / "demo"
    if not (demo / "card.json").is_file():
        pytest.skip("the committed demo base is not in this checkout")
    # a model that recognises speech: int8 derived from the committed demo base, fine-tuned one epoch
    run_candidate(Knobs(bits=8, chunk_ms=320, lr=2e-3), tmp_path, dataset="tiny", base=demo,
                  train=TrainSettings(epochs=1, batch_size=16, device="cpu", num_threads=1), bench_runs=5,
                  bench_warmup=1, progress=False)
    r = ship_check(tmp_path / "model.onnx", load_dataset("tiny", progress=False).test, tmp_path / "sherpa")
    assert r["export_exact"] and r["passed"] and r["identical_fraction"] >= 0.99
    rows = [json.loads(line) for line in (tmp_path / "sherpa" / "transcripts.jsonl").read_text().splitlines()]
    assert len(rows) == r["utterances"] and sum(bool(row["sherpa"]) for row in rows) >= len(rows) // 2


def test_transcribe_with_the_sherpa_engine_prints_sherpas_text(models, audio, tmp_path, capsys):
    from edgetune.ship import ship_check

    wav = audio[0].audio_filepath
    r = ship_check(models["int8-pruned"], [wav], tmp_path / "ship", min_identical=0.0)
    expected = json.loads((tmp_path / "ship" / "transcripts.jsonl").read_text().splitlines()[0])["sherpa_text"]
    assert expected, "an untrained model's sherpa text is not empty"
    capsys.readouterr()
    for model in (models["int8-pruned"], Path(r["model"])):  # an edgetune file (converted on the fly), a shipped one
        assert main(["transcribe", str(model), wav, "--engine", "sherpa-onnx", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"audio": wav, "text": expected}


def test_ship_front_checks_every_front_model_of_a_study(tmp_path, study_file):
    """`edgetune ship --front`: each front model of a real (tiny) derived study decodes identically in sherpa-onnx."""
    import csv
    import subprocess
    import sys

    from edgetune.ship._front import ship_front

    root = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    base_cfg = tmp_path / "base.yaml"
    base_cfg.write_text("name: t\npreset: null\nmodel_config: {d_model: 32, n_layers: 1, n_heads: 2, conv_kernel: 3}\n"
                        "dataset: tiny\nchunks: [160]\neval_chunks: [160]\nexport_chunk_ms: 160\n"
                        "train: {epochs: 2, batch_size: 8, device: cpu, num_threads: 1}\n")
    subprocess.run([sys.executable, "-m", "edgetune", "base", "train", "--config", str(base_cfg), "--out",
                    str(tmp_path / "base"), "--no-progress"], check=True, env=env, cwd=root, capture_output=True)
    study = study_file("f", 2, seed=None, dataset="tiny", base={"path": str(tmp_path / "base")},
                       space={"bits": [8, 32], "depth_multiplier": [0.5, 1.0], "chunk_ms": [160], "lr": 1.0e-3},
                       train={"epochs": 1, "batch_size": 8, "device": "cpu", "num_threads": 1},
                       bench={"threads": 1, "runs": 5, "warmup": 1},
                       sampler={"name": "nsga2", "population_size": 2, "enqueue": [{"bits": 8}]})
    subprocess.run([sys.executable, "-m", "edgetune", "search", "--config", str(study), "--study-dir",
                    str(tmp_path / "s")], check=True, env=env, cwd=root, capture_output=True)
    with open(tmp_path / "s" / "report" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    on_front = [r["number"] for r in rows if r["pareto"] == "True"]
    # the report marks each front model as exportable to sherpa-onnx, and only front models
    assert {r["sherpa_onnx"] for r in rows if r["pareto"] == "True"} == {"yes"}
    assert {r["sherpa_onnx"] for r in rows if r["pareto"] != "True"} <= {""}
    assert "sherpa_onnx" in (tmp_path / "s" / "report" / "pareto.md").read_text()
    summary = ship_front(tmp_path / "s", tmp_path / "ship", limit=4, log=lambda *_: None)
    assert [str(r["trial"]) for r in summary["models"]] == on_front and on_front
    assert summary["all_passed"] == all(r["identical"] == r["utterances"] == 4 for r in summary["models"])
    assert all((tmp_path / "ship" / f"trial-{n}" / "model.onnx").is_file() for n in on_front)
    # `edgetune export --format sherpa-onnx`: the verified edgetune file and card, plus sherpa's files
    out = tmp_path / "phone-sherpa"
    done = subprocess.run([sys.executable, "-m", "edgetune", "export", "--study-dir", str(tmp_path / "s"), "--trial",
                           on_front[0], "--out", str(out), "--format", "sherpa-onnx"], env=env, cwd=root,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {"edgetune.onnx", "edgetune.card.json", "model.onnx", "tokens.txt", "README.md"} <= {
        p.name for p in out.iterdir()}
    from edgetune.export.sherpa import read_sherpa_metadata

    assert read_sherpa_metadata(out / "model.onnx")["model_type"] == "zipformer2_ctc"
    bad = subprocess.run([sys.executable, "-m", "edgetune", "export", "--study-dir", str(tmp_path / "s"), "--trial",
                          on_front[0], "--out", str(tmp_path / "x.onnx"), "--format", "sherpa-onnx"], env=env,
                         cwd=root, capture_output=True, text=True)
    assert bad.returncode == 2 and "must name a folder" in bad.stderr


def test_sherpa_exportable_says_why_not(models, tmp_path):
    from edgetune.export.sherpa import sherpa_exportable

    assert sherpa_exportable(models["int8-pruned"]) is None
    changed = tmp_path / "changed.onnx"
    changed.write_bytes(models["fp32"].read_bytes() + b"\0")
    assert "onnx" in (sherpa_exportable(changed) or "").lower()
    missing = sherpa_exportable(tmp_path / "nothing.onnx")
    assert missing and "does not exist" in missing


def test_near_ties_explain_a_flip_and_nothing_else():
    """sherpa's tokens are accepted as rounding only where edgetune's logits nearly tie."""
    from edgetune.ship._check import needed_delta
    from edgetune.ship._ties import reachable_within

    blank, a, b = 0, 1, 2
    logits = np.array([[0.0, 5.0, 1.0],   # a
                       [4.9, 5.0, 0.0],   # a, blank 0.1 below
                       [0.0, 5.0, 1.0],   # a
                       [0.0, 1.0, 5.0]])  # b
    assert reachable_within(logits, [a, b], blank, 0.0)            # edgetune's own path
    assert not reachable_within(logits, [a, a, b], blank, 0.05)    # "aab" needs the blank at frame 1 ...
    assert reachable_within(logits, [a, a, b], blank, 0.1)         # ... which lies 0.1 below the best
    assert needed_delta(logits, [a, a, b], blank) == pytest.approx(0.1)
    assert not reachable_within(logits, [b, a], blank, 1.0)        # a reordering is no near tie
    assert needed_delta(logits, [a, b, a, b, a], blank) is None    # five tokens from four frames: impossible


def _demo_fp32(tmp_path: Path) -> Path:
    """The committed demo base (a model that recognises speech) exported as its fp32 streaming file."""
    from edgetune.base import load_base
    from edgetune.export import export_streaming_onnx

    demo = REPO / "models" / "demo"
    if not (demo / "card.json").is_file():
        pytest.skip("the committed demo base is not in this checkout")
    base = load_base(demo, rebuild_onnx=False)  # never writes into the checkout
    path = tmp_path / "demo.onnx"
    export_streaming_onnx(base.build(320), Knobs(bits=32, chunk_ms=320), path, check=False)
    return path


def test_committed_base_decodes_batched_in_sherpa_like_one_stream_and_onnxruntime(tmp_path):
    """decode_streams with 4 streams at once (a real sherpa-onnx session): tokens equal to one stream
    at a time and to edgetune's ONNX Runtime runner, on real speech of the tiny corpus."""
    from edgetune.data import load_dataset
    from edgetune.ship import ship_check

    test = list(load_dataset("tiny", progress=False).test)[:8]
    r = ship_check(_demo_fp32(tmp_path), test, tmp_path / "ship", batch=4)
    assert r["max_batch"] == 4 and r["batch_identical_fraction"] == 1.0, r["mismatches"]
    assert r["identical_fraction"] == 1.0 and r["passed_by"] == "identical" and r["passed"], r["mismatches"]
    rows = [json.loads(line) for line in (tmp_path / "ship" / "transcripts.jsonl").read_text().splitlines()]
    assert all(row["batch_identical"] for row in rows) and len(rows) == len(test)
    # real words, not empty strings: the demo base recognises the tiny corpus
    assert sum(len(row["sherpa"].split()) >= 2 for row in rows) >= len(rows) // 2, rows
    assert r["sherpa_onnxruntime"] and r["onnxruntime"]
