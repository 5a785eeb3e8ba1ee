"""The candidate pipeline end to end (tiny corpus, real training, real ORT), and the two CLI commands."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgetune.cli import main
from edgetune.knobs import Knobs, TrainSettings

TINY_ARCH = {"d_model": 48, "n_layers": 1}


@pytest.fixture(scope="module")
def candidate(tmp_path_factory) -> tuple[Path, dict]:
    from edgetune.pipeline import run_candidate

    out = tmp_path_factory.mktemp("cand")
    result = run_candidate(Knobs(bits=32, chunk_ms=160), out, dataset="tiny",
                           train=TrainSettings(epochs=2, batch_size=8), bench_runs=20, bench_warmup=2,
                           progress=False, model_config=TINY_ARCH)
    return out, result


def test_result_json_describes_the_file(candidate):
    out, result = candidate
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk == result
    model = out / "model.onnx"
    assert result["size_bytes"] == model.stat().st_size
    assert result["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    for key in ("knobs", "wer", "wer_torch", "worst_group_wer", "wer_per_group", "latency_ms", "rtf",
                "algorithmic_latency_ms", "gzip_bytes", "peak_rss_bytes", "parity", "host", "train_seconds",
                "device", "params", "edgetune_version"):
        assert key in result, key
    assert {"p50", "p90", "p99", "mean", "std"} <= set(result["latency_ms"])
    assert result["parity"]["passed"] and result["parity"]["identical_fraction"] >= 0.99
    assert result["host"]["ort_version"] and result["host"]["threads"] == 1
    assert result["knobs"] == Knobs(bits=32, chunk_ms=160).to_dict()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*tmp"))


def test_wer_recomputed_from_the_files_transcripts_matches(candidate):
    import jiwer

    from edgetune._runner import StreamingModel
    from edgetune.data import compute_fbank, load_audio, load_dataset

    out, result = candidate
    rows = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(rows) == result["test_utterances"] == len(load_dataset("tiny", progress=False).test)
    assert jiwer.wer([r["ref"] for r in rows], [r["hyp"] for r in rows]) == pytest.approx(result["wer"])
    worst = max(result["wer_per_group"].values())
    assert result["worst_group_wer"] == pytest.approx(worst)
    # the hypotheses are the file's own: decode two test utterances again with nothing but the file
    stream = StreamingModel(str(out / "model.onnx"))
    test = load_dataset("tiny", progress=False).test
    for utt, row in list(zip(test, rows))[:2]:
        assert stream.greedy_text(stream.run_utterance(compute_fbank(load_audio(utt.audio_filepath)))) == row["hyp"]


def test_measure_untrained_has_the_trained_candidates_shapes(tmp_path, candidate):
    from edgetune.pipeline import measure_untrained

    out, result = candidate
    m = measure_untrained(Knobs(bits=32, chunk_ms=160), tmp_path, bench_runs=10, bench_warmup=1,
                          model_config=TINY_ARCH)
    assert m["untrained"] and m["params"] == result["params"]
    assert m["size_bytes"] == (tmp_path / "untrained.onnx").stat().st_size
    assert abs(m["size_bytes"] - result["size_bytes"]) < 0.02 * result["size_bytes"]  # metadata differs slightly
    assert m["latency_ms"]["p50"] > 0


def test_measure_untrained_prunes_and_quantizes(tmp_path):
    from edgetune.pipeline import measure_untrained

    dense = measure_untrained(Knobs(bits=32), tmp_path / "a", bench_runs=5, bench_warmup=1)
    small = measure_untrained(Knobs(bits=8, sparsity=0.5), tmp_path / "b", bench_runs=5, bench_warmup=1)
    assert small["params"] < 0.5 * dense["params"]
    assert small["size_bytes"] * 6 < dense["size_bytes"]


@pytest.mark.slow
def test_int8_candidate_passes_the_parity_gate_on_trained_weights(tmp_path):
    from edgetune.pipeline import run_candidate

    result = run_candidate(Knobs(bits=8, sparsity=0.25, chunk_ms=320), tmp_path, dataset="tiny",
                           train=TrainSettings(epochs=6, batch_size=8), bench_runs=10, bench_warmup=1,
                           progress=False)
    assert result["parity"]["passed"] and result["weight_storage"] == "int8"
    assert result["params"] < result["params_initial"]


def test_candidate_cli_reports_bad_knobs(capsys, tmp_path):
    rc = main(["candidate", "--bits", "3", "--out", str(tmp_path)])
    assert rc == 2
    assert "bits must be one of (4, 8, 16, 32), but got 3" in capsys.readouterr().err
    rc = main(["candidate", "--chunk-ms", "300", "--out", str(tmp_path)])
    assert rc == 2 and "multiple of 40" in capsys.readouterr().err


def test_transcribe_cli_any_rate_and_channels(tiny_model_path, tmp_path, capsys):
    import soundfile as sf

    rng = np.random.default_rng(0)
    stereo = tmp_path / "stereo8k.wav"
    sf.write(stereo, (0.1 * rng.standard_normal((8000, 2))).astype(np.float32), 8000)
    mono = tmp_path / "mono.flac"
    sf.write(mono, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    rc = main(["transcribe", str(tiny_model_path), str(stereo), str(mono), "--json"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["audio"] for line in lines] == [str(stereo), str(mono)]
    assert all(isinstance(line["text"], str) for line in lines)


def test_transcribe_cli_errors_name_the_file(tiny_model_path, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(wav, np.zeros(1600, np.float32), 16000)
    assert main(["transcribe", str(tmp_path / "missing.onnx"), str(wav)]) == 2
    err = capsys.readouterr().err
    assert "missing.onnx" in err and "does not exist" in err

    import onnx
    from onnx import TensorProto, helper

    plain = tmp_path / "plain.onnx"
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    # IR 9 / opset 17: loadable by every supported ONNX Runtime, whatever the installed onnx writes by default
    onnx.save(helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17)]), str(plain))
    assert main(["transcribe", str(plain), str(wav)]) == 2
    assert "not an edgetune model" in capsys.readouterr().err

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert main(["transcribe", str(junk), str(wav)]) == 2
    assert "junk.onnx" in capsys.readouterr().err

    bad_audio = tmp_path / "bad.wav"
    bad_audio.write_bytes(b"RIFF....garbage")
    assert main(["transcribe", str(tiny_model_path), str(bad_audio)]) == 2
    assert "bad.wav" in capsys.readouterr().err


@pytest.mark.gpu
def test_int8_candidate_on_cuda_records_gpu_time_and_passes_parity(tmp_path):
    """The whole pipeline with QAT on the GPU (bf16 autocast), exported and measured on the CPU."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from edgetune.pipeline import run_candidate

    result = run_candidate(Knobs(bits=8, sparsity=0.25, chunk_ms=320), tmp_path, dataset="tiny",
                           train=TrainSettings(epochs=6, batch_size=8, device="cuda"), bench_runs=10,
                           bench_warmup=1, progress=False)
    assert result["device"].startswith("cuda") and result["gpu_seconds"] > 0
    assert result["parity"]["passed"] and result["weight_storage"] == "int8"
