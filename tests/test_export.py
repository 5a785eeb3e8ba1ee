"""Export: the streaming contract, storage per bit width, fp16, and the parity gate (real ORT sessions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgetune._runner import StreamingModel
from edgetune.errors import ParityError
from edgetune.export import export_streaming_onnx
from edgetune.export.metadata import METADATA_KEY, StreamingSpec
from edgetune.export.parity import TOLERANCES, check_parity
from edgetune.knobs import Knobs
from edgetune.model import build_model
from edgetune.model.quant import set_quant

ARCH = {"d_model": 64, "n_layers": 2}


def _model(bits: int, sparsity: float = 0.0, seed: int = 0):
    torch.manual_seed(seed)
    knobs = Knobs(bits=bits, chunk_ms=160, sparsity=sparsity)
    model = build_model("conformer_lite", knobs, ARCH)
    if sparsity:
        from edgetune.train import prune_model

        prune_model(model, sparsity, torch.zeros(1, 32, model.n_mels))
    if bits != 32:
        set_quant(model, bits, head_bits={n: 8 for n in model.edge_layers()} if bits == 4 else None)
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(2, 96, model.n_mels))
    return knobs, model.eval()


def _feats(n: int = 6, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(40, 200)), 80)).astype(np.float32) for _ in range(n)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[int, Path]:
    """The same architecture exported at every bit width (parity checked for float widths)."""
    out = {}
    folder = tmp_path_factory.mktemp("export")
    for bits in (32, 16, 8, 4):
        knobs, model = _model(bits)
        export_streaming_onnx(model, knobs, folder / f"m{bits}.onnx", parity_features=_feats(),
                              check=bits == 32)
        out[bits] = folder / f"m{bits}.onnx"
    return out


def _initializer_types(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for init in onnx.load(str(path)).graph.initializer:
        name = onnx.TensorProto.DataType.Name(init.data_type)
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_metadata_is_the_streaming_contract(exported):
    model = onnx.load(str(exported[32]))
    props = {p.key: p.value for p in model.metadata_props}
    spec = StreamingSpec.from_json(props[METADATA_KEY])
    assert spec.chunk_ms == 160 and spec.chunk_frames == 16 and spec.subsampling == 4
    assert spec.weight_storage == "float32" and spec.knobs["bits"] == 32
    assert len(spec.vocabulary) == 29 and spec.vocabulary[spec.blank_id] == "<blank>"
    graph_inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    graph_outputs = {o.name for o in model.graph.output}
    assert graph_inputs[spec.features_input] == [1, 16, 80]
    for cache in spec.caches:
        assert graph_inputs[cache.input] == list(cache.shape)
        assert cache.output in graph_outputs
    assert spec.extra["parity"]["passed"] is True
    assert props["edgetune.bits"] == "32"


def test_fp32_onnx_matches_pytorch_streaming(tmp_path):
    knobs, model = _model(32)
    result = export_streaming_onnx(model, knobs, tmp_path / "m.onnx", parity_features=_feats(8))
    assert result.parity["identical_fraction"] == 1.0
    assert result.parity["max_abs_logit_diff"] < 1e-4
    # and the file on its own, streamed chunk by chunk, equals PyTorch's chunked path
    stream = StreamingModel(str(tmp_path / "m.onnx"))
    feats = _feats(1, seed=3)[0]
    with torch.no_grad():
        ref = model.stream(torch.from_numpy(stream.pad_features(feats))[None])[0].numpy()
    assert np.abs(stream.run_utterance(feats) - ref).max() < 1e-4


def test_int8_file_is_at_least_3x_smaller_than_fp32(exported):
    assert exported[32].stat().st_size >= 3 * exported[8].stat().st_size


def test_int4_file_is_smaller_than_int8(exported):
    assert exported[4].stat().st_size < exported[8].stat().st_size


def test_int8_graph_stores_int8_weights_feeding_dequantize(exported):
    model = onnx.load(str(exported[8]))
    int8 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    dq_inputs = {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    weights = {i.name for i in model.graph.initializer if len(i.dims) >= 2}
    assert weights and weights <= int8 <= dq_inputs | {n.input[2] for n in model.graph.node
                                                        if n.op_type == "DequantizeLinear" and len(n.input) > 2}
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in weights for n in model.graph.node)
    # 7-bit weights (reduce range) for ORT's u8s8 kernels on AVX2
    for init in model.graph.initializer:
        if init.name in weights:
            assert np.abs(onnx.numpy_helper.to_array(init)).max() <= 63


def test_int4_graph_stores_int4_weights(exported):
    model = onnx.load(str(exported[4]))
    types = _initializer_types(exported[4])
    assert types.get("INT4", 0) >= 2 * 2  # every block linear/conv (+ its zero point)
    assert model.opset_import[0].version >= 21
    meta = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    assert meta["weight_storage"] == "int4"


def test_primitive_layernorm_copy_is_not_fused_back_by_ort(exported, tmp_path):
    """The fused LayerNormalization kernel differs by ~1e-6 between ONNX Runtime versions, enough to
    move a quantized model's logits (sherpa-onnx bundles its own ORT). ``primitive_layernorm_copy``
    writes it in primitive ops; ORT's optimizer must not rebuild the fused node (it does from Pow)."""
    import onnxruntime as ort

    from edgetune.export.sherpa import primitive_layernorm_copy

    for bits in (8, 4):
        assert "LayerNormalization" in {n.op_type for n in onnx.load(str(exported[bits])).graph.node}
        copy = tmp_path / f"m{bits}-primitive.onnx"
        assert primitive_layernorm_copy(exported[bits], copy) >= 2 * ARCH["n_layers"]
        ops = [n.op_type for n in onnx.load(str(copy)).graph.node]
        assert "LayerNormalization" not in ops and ops.count("Sqrt") >= 2 * ARCH["n_layers"]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(tmp_path / f"opt{bits}.onnx")
        ort.InferenceSession(str(copy), so, providers=["CPUExecutionProvider"])
        optimized = {n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node}
        assert "LayerNormalization" not in optimized
        a, b = StreamingModel(str(exported[bits])), StreamingModel(str(copy))  # the copy verifies and runs
        feats = _feats(1)[0]
        assert a.run_utterance(feats).shape == b.run_utterance(feats).shape


def test_decomposed_layernorm_computes_layernorm() -> None:
    from onnx import helper

    from edgetune.export._passes import decompose_layernorm

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 16)).astype(np.float32) * 3 + 1
    scale, bias = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    for opset in (17, 21):
        graph = helper.make_graph(
            [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)], "ln",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 5, 16])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 5, 16])],
            [onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(bias, "b")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        assert decompose_layernorm(model) == 1
        onnx.checker.check_model(model, full_check=True)
        import onnxruntime as ort

        (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
        want = torch.nn.functional.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(scale),
                                              torch.from_numpy(bias), 1e-5).numpy()
        np.testing.assert_allclose(y, want, atol=2e-6)


def test_quantized_files_load_and_run_in_ort(exported):
    for bits in (8, 4):
        stream = StreamingModel(str(exported[bits]))
        logits = stream.run_utterance(_feats(1)[0])
        assert np.isfinite(logits).all() and logits.shape[1] == 29


def test_fp16_file_loads_runs_and_is_float16(exported):
    types = _initializer_types(exported[16])
    assert "FLOAT16" in types and "FLOAT" not in types
    assert exported[16].stat().st_size < 0.6 * exported[32].stat().st_size
    session = ort.InferenceSession(str(exported[16]), providers=["CPUExecutionProvider"])
    assert all(i.type == "tensor(float)" for i in session.get_inputs())  # float32 I/O
    feats = _feats(3, seed=1)
    a, b = StreamingModel(str(exported[16])), StreamingModel(str(exported[32]))
    for f in feats:
        la, lb = a.run_utterance(f), b.run_utterance(f)
        assert np.abs(la - lb).max() < 0.05  # float16 rounding of an untrained model's logits


def test_parity_gate_raises_and_keeps_the_failing_file(tmp_path):
    knobs, model = _model(32)
    path = tmp_path / "m.onnx"
    export_streaming_onnx(model, knobs, path, parity_features=_feats())
    with torch.no_grad():  # the PyTorch model drifts away from what was exported
        model.head.weight.mul_(-1.0)
    with pytest.raises(ParityError, match="identical_fraction"):
        check_parity(model, path, _feats(), TOLERANCES[32])
    # the exporter keeps a failing file aside, never under the target name
    from edgetune.model import ConformerLiteConfig
    from edgetune.model.conformer_lite import ConformerLite

    class Drifting(ConformerLite):  # the reference path disagrees with the exported chunk path
        def forward(self, feats):
            return -super().forward(feats)

    torch.manual_seed(1)
    drifting = Drifting(ConformerLiteConfig(**ARCH), knobs).eval()
    with pytest.raises(ParityError, match="kept as"):
        export_streaming_onnx(drifting, knobs, tmp_path / "bad.onnx", parity_features=_feats())
    assert not (tmp_path / "bad.onnx").exists()
    assert (tmp_path / "bad.parity-failed.onnx").exists()


def test_pruned_model_exports_its_pruned_cache_shapes(tmp_path):
    knobs, model = _model(32, sparsity=0.5)
    result = export_streaming_onnx(model, knobs, tmp_path / "p.onnx", parity_features=_feats(4))
    assert result.parity["passed"]
    kv = [c for c in result.spec.caches if "kv" in c.input][0]
    assert kv.shape[2] == 2 * (model.blocks[0].attn.qkv.out_features // 3) < 2 * 64


def test_upsampled_output_exports_with_its_subsampling(tmp_path):
    torch.manual_seed(0)
    knobs = Knobs(bits=32, chunk_ms=160)
    model = build_model("conformer_lite", knobs, {**ARCH, "output_upsample": 2}).eval()
    result = export_streaming_onnx(model, knobs, tmp_path / "u.onnx", parity_features=_feats(4))
    assert result.spec.subsampling == 2 and result.parity["passed"]
    assert StreamingModel(str(tmp_path / "u.onnx")).step(np.zeros((16, 80), np.float32)).shape == (8, 29)


def test_export_writes_atomically(tmp_path):
    knobs, model = _model(32)
    export_streaming_onnx(model, knobs, tmp_path / "m.onnx", check=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left behind


def test_tiny_model_fixture_is_a_valid_edgetune_model(tiny_model_path):
    stream = StreamingModel(str(tiny_model_path))
    assert stream.chunk_frames == 16
    assert stream.run_utterance(np.zeros((50, 80), np.float32)).shape == (16, 29)


def test_parity_tolerances_on_measured_cases() -> None:
    """Measured cases: fp16 near-tie flips pass; int8/int4 pass on one-character flips of trained models
    (demo base, 2-core AVX2 VM) and fail on whole-utterance drift; fp32 drift fails."""
    from edgetune.export.parity import TOLERANCES

    assert TOLERANCES[16].accepts(0.96, 0.0138)        # 96/100 identical, every logit within 0.014
    assert not TOLERANCES[16].accepts(0.96, 0.2)       # same flips with a real logit gap: an export bug
    assert TOLERANCES[8].accepts(0.90, 0.6401, 0.004)  # trained int8 width 1.0: 36/40, one character each
    assert TOLERANCES[4].accepts(0.925, 0.7, 0.005)    # trained int4: 37/40
    assert not TOLERANCES[8].accepts(0.67, 0.5885, 0.02)   # a third of the transcripts differ, 2 % of characters
    assert not TOLERANCES[4].accepts(0.72, 0.5613, 0.011)  # just over the 1 % rule
    assert not TOLERANCES[8].accepts(0.80, 0.25)       # near-ties alone no longer pass: the transcript decides
    assert TOLERANCES[8].accepts(0.96, 3.0)            # >= 95 % identical passes whatever the logits
    assert not TOLERANCES[32].accepts(1.0, 2e-3)       # fp32 must match to 1e-3
