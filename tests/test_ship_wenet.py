"""Shipping as sherpa-onnx ``wenet_ctc``: the exported file runs in the real sherpa-onnx (a subprocess)
with the CTC tokens of edgetune's own runner; the x32768 sample scale sherpa applies to wenet models
is undone in the graph; one padded cache tensor holds layers of different widths."""

from __future__ import annotations

import json
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
WENET_KEYS = ("head", "num_blocks", "output_size", "cnn_module_kernel", "right_context", "subsampling_factor",
              "vocab_size")  # what OnlineWenetCtcModel reads; a missing one ends sherpa's process


def _uneven(path: Path) -> Path:
    """fp32, layer 0 pruned to half its attention and conv width, layer 1 whole: widths differ by layer."""
    import torch
    import torch_pruning as tp

    from edgetune.export import export_streaming_onnx
    from edgetune.model import build_model

    torch.manual_seed(1)
    knobs = Knobs(bits=32, chunk_ms=640)  # 16 encoder frames a chunk, left context 24: R = 32 > L
    model = build_model("conformer_lite", knobs, ARCH)
    spec, b0 = model.pruning_spec(), model.blocks[0]
    tp.pruner.MetaPruner(model, torch.zeros(1, 2 * model.chunk_frames, model.n_mels), pruning_ratio=0.0,
                         importance=tp.importance.GroupMagnitudeImportance(p=2),
                         ignored_layers=spec["ignored_layers"], num_heads=dict(spec["num_heads"]),
                         pruning_ratio_dict={b0.conv.dw: 0.5, b0.attn.qkv: 0.5}).step()
    export_streaming_onnx(model.eval(), knobs, path, check=False)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Untrained exports (untied random logits: every frame's argmax is compared, not just blanks)."""
    from edgetune.pipeline import export_untrained

    root = tmp_path_factory.mktemp("wenet_models")
    out = {"uneven": _uneven(root / "uneven.onnx")}
    for name, knobs in {"fp32": Knobs(bits=32, chunk_ms=160), "int8-pruned": Knobs(bits=8, chunk_ms=160, sparsity=0.5),
                        "int4": Knobs(bits=4, chunk_ms=320)}.items():
        export_untrained(knobs, root / f"{name}.onnx", model_config=ARCH, seed=1)
        out[name] = root / f"{name}.onnx"
    return out


@pytest.fixture(scope="module")
def audio() -> list:
    return tiny_test_audio()


@pytest.mark.parametrize("name", ["fp32", "int8-pruned", "int4", "uneven"])
def test_sherpa_wenet_decodes_the_tokens_of_edgetunes_runner(models, audio, tmp_path, name):
    from edgetune.ship import ship_check

    out = tmp_path / "ship"
    r = ship_check(models[name], audio, out, min_identical=0.8, batch=3, model_type="wenet_ctc")
    assert r["model_type"] == "wenet_ctc" and r["sherpa_onnx_version"] == "2.0.1"
    # exact on sherpa's own features (kaldi-native-fbank of x32768 samples, undone in the graph)
    assert r["identical_kaldi_fbank_fraction"] == 1.0 and r["export_exact"] is True, r["mismatches"]
    assert r["chunks_match"] and r["passed"] and r["identical_fraction"] >= 0.8, r["mismatches"]
    # decode_streams with 3 streams: sherpa runs them one at a time for wenet, same tokens
    assert r["max_batch"] == 3 and r["batch_identical_fraction"] == 1.0
    # the scale round trip is float rounding only (one float32 step of a log-mel value near 20)
    assert 0.0 <= r["sample_scale_feature_error"] <= 1e-5
    rows = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert max(len(row["sherpa"]) for row in rows) >= 3, "the comparison must not be between empty outputs"


def test_wenet_signature_metadata_and_padded_caches(models, tmp_path):
    import onnx

    from edgetune.export.metadata import StreamingSpec
    from edgetune.export.sherpa import export_sherpa, read_sherpa_metadata

    src = StreamingSpec.from_json(read_sherpa_metadata(models["uneven"])["edgetune"])
    widths = [(la["attn_dim"], la["conv_dim"]) for la in src.model_config["layers"]]
    assert widths[0] != widths[1], "the fixture must have per-layer widths"
    done = export_sherpa(models["uneven"], tmp_path, model_type="wenet_ctc")
    meta = read_sherpa_metadata(done.model)
    assert set(WENET_KEYS) <= set(meta) and meta["model_type"] == "wenet_ctc"
    S = max(max(w) for w in widths)
    C, n_left = src.chunk_frames // 4, int(meta["num_left_chunks"])
    R = C * n_left
    assert (meta["head"], meta["num_blocks"], meta["output_size"]) == ("1", "2", str(S))
    assert int(meta["right_context"]) + 1 + (C - 1) * int(meta["subsampling_factor"]) == src.chunk_frames
    assert R >= 24 > R - C  # the fewest left chunks that cover edgetune's 24 frames of left context
    g = onnx.load(str(done.model)).graph

    def sig(vis):
        return [(v.name, v.type.tensor_type.elem_type, [d.dim_value for d in v.type.tensor_type.shape.dim])
                for v in vis]

    T = onnx.TensorProto
    assert sig(g.input) == [("x", T.FLOAT, [1, src.chunk_frames, 80]), ("offset", T.INT64, [1]),
                            ("required_cache_size", T.INT64, [1]), ("attn_cache", T.FLOAT, [2, 1, R, 2 * S]),
                            ("conv_cache", T.FLOAT, [2, 1, S, 2]), ("attn_mask", T.BOOL, [1, 1, R + C])]
    assert [o.name for o in g.output] == ["logits", "new_attn_cache", "new_conv_cache"]
    info = done.spec.extra["sherpa_onnx"]
    assert info["padding_floats"] > 0 and info["used_floats"] + info["padding_floats"] == info["cache_floats"]
    howto = done.howto.read_text()
    assert f"chunk_size={C}" in howto and f"num_left_chunks={n_left}" in howto and "from_wenet_ctc" in howto


def test_a_recognizer_built_with_other_chunk_settings_is_refused(models, tmp_path):
    """sherpa takes chunk_size and num_left_chunks from its config; the fixed input shapes refuse others."""
    from edgetune.export.sherpa import export_sherpa
    from edgetune.ship import decode_with_sherpa

    done = export_sherpa(models["fp32"], tmp_path, model_type="wenet_ctc")
    info = done.spec.extra["sherpa_onnx"]
    wave = [np.zeros(16000, np.float32)]
    for args, tensor in (((info["chunk_size"], info["num_left_chunks"] - 1), "attn_cache"),
                         ((2 * info["chunk_size"], info["num_left_chunks"]), "x")):
        with pytest.raises(ShipError, match=f"invalid dimensions for input: {tensor}"):
            decode_with_sherpa(done.model, done.tokens, wave, tail_samples=2880, model_type="wenet_ctc",
                               worker_args=["--chunk-size", str(args[0]), "--num-left-chunks", str(args[1])])


def test_sample_scale_shifts_log_mel_by_a_constant_and_is_undone(audio):
    """Measured on real speech: kaldi-native-fbank of x32768 samples is the fbank of the samples plus
    2 ln 32768 wherever the floor is not hit; Max(x - 2 ln 32768, ln FLT_EPSILON) gives them back."""
    from edgetune.data import FeatureSpec, load_audio
    from edgetune.export._sherpa_wenet import FEATURE_SHIFT, LOG_FLOOR, SAMPLE_SCALE
    from edgetune.ship._check import kaldi_native_fbank, sample_scale_error

    spec = FeatureSpec()
    assert float(FEATURE_SHIFT) == pytest.approx(20.794415, abs=1e-6)
    for utt in audio[:4]:
        wave = np.concatenate([load_audio(utt.audio_filepath, 16000), np.zeros(2880, np.float32)])
        plain, scaled = kaldi_native_fbank(wave, spec), kaldi_native_fbank(wave, spec, SAMPLE_SCALE)
        live = plain > LOG_FLOOR
        assert live.mean() > 0.5 and (~live).any()  # speech and the silent tail padding
        np.testing.assert_allclose(scaled[live] - plain[live], float(FEATURE_SHIFT), atol=1e-5)
        assert sample_scale_error(wave, spec) <= 1e-5
        assert np.array_equal(np.maximum(scaled - FEATURE_SHIFT, LOG_FLOOR)[~live], plain[~live])  # floor: exact


def test_ship_cli_type_wenet_and_transcribe_with_sherpa(models, audio, tmp_path, capsys):
    wav = audio[0].audio_filepath
    out = tmp_path / "out"
    assert main(["ship", str(models["int8-pruned"]), "--out", str(out), "--type", "wenet_ctc", "--check", wav,
                 "--batch", "1", "--min-identical", "0"]) == 0
    r = json.loads((out / "ship.json").read_text())
    assert r["model_type"] == "wenet_ctc" and r["recognizer"]["chunk_size"] == 4
    assert "wenet_ctc" in capsys.readouterr().out
    expected = json.loads((out / "transcripts.jsonl").read_text().splitlines()[0])["sherpa_text"]
    assert expected
    # a shipped wenet file is decoded with the recognizer settings it records
    assert main(["transcribe", str(out / "model.onnx"), wav, "--engine", "sherpa-onnx", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"audio": wav, "text": expected}
    with pytest.raises(SystemExit) as err:  # argparse lists the valid types
        main(["ship", str(models["fp32"]), "--out", str(tmp_path / "x"), "--type", "nemo_ctc"])
    assert err.value.code == 2 and "wenet_ctc" in capsys.readouterr().err


def test_an_unknown_model_type_names_the_valid_ones(models, tmp_path):
    from edgetune.errors import ExportError
    from edgetune.export.sherpa import export_sherpa

    with pytest.raises(ExportError, match="nemo_ctc.*zipformer2_ctc, wenet_ctc"):
        export_sherpa(models["fp32"], tmp_path, model_type="nemo_ctc")


def _demo(tmp_path: Path, knobs: Knobs) -> Path:
    """The committed demo base (a model that recognises speech) derived at ``knobs`` without training (seeded):
    fp32 as it is, int8 with activation observers calibrated on the tiny corpus's training split."""
    from edgetune.base import load_base
    from edgetune.base._derive import derive_model
    from edgetune.data import FeatureSpec, extract_features, load_dataset
    from edgetune.export import export_streaming_onnx
    from edgetune.train._batching import make_examples

    demo = REPO / "models" / "demo"
    if not (demo / "card.json").is_file():
        pytest.skip("the committed demo base is not in this checkout")
    import torch

    torch.manual_seed(0)  # calibration runs train-mode passes (dropout): seeded, the int8 file is one file
    base = load_base(demo, rebuild_onnx=False)  # never writes into the checkout
    train = list(load_dataset("tiny", progress=False).train)
    spec = FeatureSpec()
    calibration = make_examples(train, extract_features(train, spec, progress=False)) if knobs.bits < 32 else None
    model = derive_model(base, knobs, calibration=calibration, pad_value=spec.silence)
    path = tmp_path / f"demo-{knobs.bits}.onnx"
    export_streaming_onnx(model.eval(), knobs, path, check=False)
    return path


@pytest.mark.parametrize("knobs", [Knobs(bits=32, chunk_ms=320), Knobs(bits=8, chunk_ms=640)],
                         ids=["fp32-320ms", "int8-640ms"])
def test_committed_base_ships_as_wenet_with_identical_transcripts(tmp_path, knobs):
    """Real speech of the tiny corpus's test split, decoded by sherpa-onnx's wenet_ctc recognizer:
    transcripts identical to edgetune's ONNX Runtime streaming path on >= 99 %."""
    from edgetune.data import load_dataset
    from edgetune.ship import ship_check

    test = list(load_dataset("tiny", progress=False).test)
    r = ship_check(_demo(tmp_path, knobs), test, tmp_path / "ship", model_type="wenet_ctc")
    assert r["identical_fraction"] >= 0.99 and r["passed_by"] == "identical" and r["passed"], r["mismatches"]
    assert r["export_exact"] and r["chunks_match"] and r["sample_scale_feature_error"] <= 1e-5
    rows = [json.loads(line) for line in (tmp_path / "ship" / "transcripts.jsonl").read_text().splitlines()]
    assert len(rows) == len(test) and sum(len(row["sherpa"].split()) >= 2 for row in rows) >= len(rows) // 2, rows
