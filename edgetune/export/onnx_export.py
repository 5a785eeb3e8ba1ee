"""Export a trained :class:`~edgetune.model.base.StreamingCTCModel` to one streaming ONNX file.

One graph = one chunk + explicit caches in and out (names and shapes in the ``edgetune``
metadata entry, :class:`~edgetune.export.metadata.StreamingSpec`). Steps:

1. freeze the quantizers (activation ranges to constants, weights onto their grid);
2. ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter: fast, and it writes
   QuantizeLinear/DequantizeLinear for fake quantization) with static one-chunk shapes;
3. graph passes (:mod:`edgetune.export._passes`): integer weights stored as INT8 (8-bit) or
   INT4 (4-bit, opset 21) initializers; 16-bit converted to a float16 graph with float32 I/O;
4. metadata, then the parity gate against the PyTorch model (:mod:`edgetune.export.parity`);
5. atomic write (temporary file, ``os.replace``). A file that fails parity is kept beside the
   target as ``<name>.parity-failed.onnx`` for inspection and ParityError is raised.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgetune.errors import ExportError, ParityError
from edgetune.export.metadata import CacheSpec, FeatureSpec, StreamingSpec
from edgetune.export.parity import TOLERANCES, ParityTolerance, check_parity
from edgetune.knobs import Knobs

WEIGHT_STORAGE = {32: "float32", 16: "float16", 8: "int8", 4: "int4"}
INT4_OPSET = 21  # DequantizeLinear with INT4 inputs


@dataclass
class ExportResult:
    """What :func:`export_streaming_onnx` wrote and measured."""

    path: Path
    size_bytes: int
    spec: StreamingSpec
    initializer_types: dict[str, int]
    parity: dict[str, Any] | None
    export_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


class StreamingOnnxExporter:
    """Declares the exported interface (inputs, outputs, opset, tolerance) and performs the export."""

    features_input = "features"
    logits_output = "logits"
    opset = 17

    def __init__(self, model: Any, knobs: Knobs, *, features: FeatureSpec | None = None,
                 vocabulary: Sequence[str] | None = None, blank_id: int | None = None) -> None:
        if vocabulary is None or blank_id is None:
            from edgetune.data import BLANK_ID, VOCABULARY

            vocabulary = VOCABULARY if vocabulary is None else vocabulary
            blank_id = BLANK_ID if blank_id is None else blank_id
        if len(vocabulary) != model.vocab_size:
            raise ExportError(f"the model outputs {model.vocab_size} symbols but the vocabulary has "
                              f"{len(vocabulary)}; build the model with vocab_size={len(vocabulary)}")
        self.model = model
        self.knobs = knobs
        self.features = features or FeatureSpec()
        self.vocabulary = list(vocabulary)
        self.blank_id = int(blank_id)

    # ---------------------------------------------------------------- the declared interface
    @property
    def tolerance(self) -> ParityTolerance:
        return TOLERANCES[self.knobs.bits]

    @property
    def target_opset(self) -> int:
        return INT4_OPSET if self.knobs.bits == 4 else self.opset

    def caches(self) -> list[CacheSpec]:
        return [CacheSpec(f"cache_{name}", f"new_cache_{name}", tuple(shape))
                for name, shape in self.model.cache_shapes()]

    def input_names(self) -> list[str]:
        return [self.features_input] + [c.input for c in self.caches()]

    def output_names(self) -> list[str]:
        return [self.logits_output] + [c.output for c in self.caches()]

    def spec(self, extra: dict[str, Any] | None = None) -> StreamingSpec:
        from edgetune import __version__

        return StreamingSpec(
            knobs=self.knobs.to_dict(), family=self.model.family, model_config=self.model.describe(),
            vocabulary=self.vocabulary, blank_id=self.blank_id, features=self.features,
            chunk_ms=self.knobs.chunk_ms, chunk_frames=self.model.chunk_frames,
            subsampling=self.model.subsampling, lookahead_ms=0,
            features_input=self.features_input, logits_output=self.logits_output, caches=self.caches(),
            weight_storage=WEIGHT_STORAGE[self.knobs.bits], edgetune_version=__version__, extra=extra or {},
        )

    # ---------------------------------------------------------------- export
    def _torch_export(self) -> "Any":
        import onnx
        import torch

        from edgetune.model.quant import freeze_quant

        model = self.model.cpu().eval()
        try:
            freeze_quant(model)
        except ValueError as exc:
            raise ExportError(f"cannot export: {exc}") from None

        class _Chunk(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, feats: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return self.inner.forward_chunk(feats, *caches)

        example = (torch.zeros(1, model.chunk_frames, model.n_mels), *model.init_caches())
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes
            try:
                torch.onnx.export(_Chunk(model), example, buf, input_names=self.input_names(),
                                  output_names=self.output_names(), opset_version=self.opset,
                                  dynamo=False, do_constant_folding=True)
            except Exception as exc:
                raise ExportError(f"torch.onnx.export failed for {model.family} with knobs "
                                  f"{self.knobs.to_dict()}: {type(exc).__name__}: {exc}") from exc
        return onnx.load_from_string(buf.getvalue())

    def _convert(self, graph: Any) -> tuple[Any, dict[str, Any]]:
        import onnx
        import onnx.version_converter

        from edgetune.export import _passes

        info: dict[str, Any] = {"opset": self.target_opset}
        bits = self.knobs.bits
        if bits == 4:
            graph = onnx.version_converter.convert_version(graph, INT4_OPSET)
        if bits in (4, 8):
            info["folded_weights"] = _passes.fold_weight_quant(graph, int4=bits == 4)
            info["weight_quant"] = {
                "scheme": "per-output-channel symmetric",
                "grid": [-63, 63] if bits == 8 else [-7, 7],
                "reduce_range": bits == 8,
                "edge_layers": {"layers": list(self.model.edge_layers()), "grid": [-63, 63], "storage": "int8"}
                if bits == 4 else None,
            }
            info["activation_quant"] = "uint8 per-tensor asymmetric, inputs and outputs of every conv/linear"
        elif bits == 16:
            info["fp16"] = {"converted_initializers": _passes.convert_fp16(graph),
                            "io": "float32 with Cast at the graph edges", "float32_islands": []}
        _passes.remove_unused(graph)
        _passes.compact_names(graph)
        self._verify_storage(graph)
        return graph, info

    def _verify_storage(self, graph: Any) -> None:
        """The file must store what its weight_storage says: no float matrix left in an integer
        model, INT4 matrices in a 4-bit one, no float32 initializer in a float16 one."""
        from onnx import TensorProto

        bits = self.knobs.bits
        matrices = [i for i in graph.graph.initializer if len(i.dims) >= 2]
        kinds = {TensorProto.DataType.Name(i.data_type) for i in matrices}
        expected = {32: {"FLOAT"}, 16: {"FLOAT16"}, 8: {"INT8"}, 4: {"INT4", "INT8"}}[bits]
        floats16 = bits == 16 and any(i.data_type == TensorProto.FLOAT for i in graph.graph.initializer)
        if not kinds <= expected or (bits == 4 and "INT4" not in kinds) or floats16:
            raise ExportError(
                f"the {bits}-bit export stores weight matrices as {sorted(kinds)}, expected {sorted(expected)}: "
                f"the weight-folding pass missed a layer; this is an exporter bug, report it with the knobs "
                f"{self.knobs.to_dict()}")

    def export(self, path: str | os.PathLike, *, parity_features: Sequence[np.ndarray] | None = None,
               check: bool = True, threads: int = 1, strict: bool = True) -> ExportResult:
        """Write the streaming ONNX file to ``path``; run the parity gate on ``parity_features``.

        ``check=False`` skips the gate (latency-only exports of untrained models).
        ``strict=False`` keeps a file that fails the gate at ``path`` and records the failure in
        ``parity`` (``passed: False``) instead of raising: for benchmark tables
        that must measure every configuration. A shipped candidate always goes through the gate.
        """
        import onnx

        from edgetune.export import _passes

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        graph, info = self._convert(self._torch_export())
        spec = self.spec(extra=dict(info))
        _passes.set_metadata(graph, spec.metadata_props())
        try:
            onnx.checker.check_model(graph)
        except Exception as exc:
            raise ExportError(f"the exported graph for {path} fails onnx.checker: {exc}") from exc
        export_seconds = time.perf_counter() - t0
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        _passes.save_atomic(graph, tmp)
        parity = None
        if check:
            features = list(parity_features or [])
            try:
                parity = check_parity(self.model, tmp, features, self.tolerance, threads=threads,
                                      raise_on_failure=strict)
            except ParityError as exc:
                failed = path.with_name(path.stem + ".parity-failed.onnx")
                os.replace(tmp, failed)
                raise ParityError(f"{path}: {exc} (the failing file is kept as {failed})") from None
            except Exception:
                os.remove(tmp)
                raise
            spec = self.spec(extra={**info, "parity": {k: v for k, v in parity.items() if k != "examples"}})
            _passes.set_metadata(graph, spec.metadata_props())
            os.remove(tmp)
        else:
            os.replace(tmp, path)
        size = _passes.save_atomic(graph, path) if check else path.stat().st_size
        return ExportResult(path=path, size_bytes=size, spec=spec,
                            initializer_types=_passes.weight_storage_counts(graph), parity=parity,
                            export_seconds=export_seconds, extra=info)


def export_streaming_onnx(model: Any, knobs: Knobs, path: str | os.PathLike, *,
                          parity_features: Sequence[np.ndarray] | None = None, check: bool = True,
                          features: FeatureSpec | None = None, threads: int = 1,
                          strict: bool = True) -> ExportResult:
    """Export ``model`` (trained, QAT-enabled as its knobs say) to ``path``; see the module docstring."""
    exporter = StreamingOnnxExporter(model, knobs, features=features)
    return exporter.export(path, parity_features=parity_features, check=check, threads=threads, strict=strict)
