"""Small but real streaming ONNX models for harness tests and benchmarks (no torch needed).

:func:`make_streaming_model` writes a graph that follows the contract in
``edgetune/export/metadata.py``: input ``features`` [1, chunk_frames, n_mels] plus a cache
of the last ``context`` hidden frames, output ``logits`` [1, chunk_frames // 4, vocab] plus
the updated cache, and the ``edgetune`` metadata entry. Its cost scales with ``width``
(O(width^2) per frame through ``depth`` dense layers), so a wider copy is a genuinely slower
model, which is what ``edgetune check`` has to catch.
"""

from __future__ import annotations

from pathlib import Path

from edgetune._io import atomic_write
from edgetune.export.metadata import CacheSpec, FeatureSpec, StreamingSpec

VOCAB = ["_", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]


def make_streaming_model(path: str | Path, *, width: int = 64, depth: int = 2, chunk_ms: int = 320,
                         n_mels: int = 80, context: int = 8, seed: int = 0, opset: int = 17) -> Path:
    """Write a streaming CTC model to ``path`` (atomically) and return the path."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    frames = chunk_ms // 10
    if frames % 4:
        raise ValueError(f"chunk_ms must be a multiple of 40, but got {chunk_ms}")
    rng = np.random.default_rng(seed)
    vocab = len(VOCAB)

    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        scale = 1.0 / np.sqrt(shape[0])
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [weight("w_in", (n_mels, width))]
    nodes = [helper.make_node("MatMul", ["features", "w_in"], ["h_in"]),
             helper.make_node("Relu", ["h_in"], ["h0"]),
             # cache: the last `context` hidden frames of the previous chunk, prepended in time
             helper.make_node("Concat", ["cache_in", "h0"], ["ctx"], axis=1)]
    inits += [numpy_helper.from_array(np.array([-context], np.int64), "cache_start"),
              numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "cache_end"),
              numpy_helper.from_array(np.array([1], np.int64), "time_axis"),
              numpy_helper.from_array(np.array([context], np.int64), "chunk_start")]
    nodes.append(helper.make_node("Slice", ["ctx", "cache_start", "cache_end", "time_axis"], ["cache_out"]))
    h = "ctx"
    for i in range(depth):
        inits.append(weight(f"w{i}", (width, width)))
        nodes += [helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Relu", [f"m{i}"], [f"h{i + 1}"])]
        h = f"h{i + 1}"
    # drop the context frames, stack 4 frames per output step (subsampling 4), project to the vocabulary
    inits += [numpy_helper.from_array(np.array([1, frames // 4, 4 * width], np.int64), "sub_shape"),
              weight("w_out", (4 * width, vocab))]
    nodes += [helper.make_node("Slice", [h, "chunk_start", "cache_end", "time_axis"], ["cur"]),
              helper.make_node("Reshape", ["cur", "sub_shape"], ["sub"]),
              helper.make_node("MatMul", ["sub", "w_out"], ["logits"])]
    graph = helper.make_graph(
        nodes, "edgetune_bench_toy",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, frames, n_mels]),
         helper.make_tensor_value_info("cache_in", TensorProto.FLOAT, [1, context, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, frames // 4, vocab]),
         helper.make_tensor_value_info("cache_out", TensorProto.FLOAT, [1, context, width])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edgetune.bench.testing")
    model.ir_version = 8
    spec = StreamingSpec(
        knobs={"bits": 32, "sparsity": 0.0, "depth_multiplier": width / 64, "chunk_ms": chunk_ms},
        family="bench-toy", model_config={"width": width, "depth": depth, "context": context},
        vocabulary=VOCAB, blank_id=0, features=FeatureSpec(n_mels=n_mels), chunk_ms=chunk_ms,
        chunk_frames=frames, subsampling=4, lookahead_ms=0, features_input="features",
        logits_output="logits", caches=[CacheSpec("cache_in", "cache_out", (1, context, width))],
        weight_storage="float32", edgetune_version="0.1.0")
    for key, value in spec.metadata_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path = Path(path)
    atomic_write(path, lambda tmp: onnx.save(model, str(tmp)))
    return path
