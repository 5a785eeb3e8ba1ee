"""The sherpa-onnx ``wenet_ctc`` layout of an edgetune streaming file (Python and C++ APIs only).

sherpa-onnx 2.0.1 (``online-wenet-ctc-model.cc``) runs a streaming wenet CTC model with six
inputs and reads three outputs, **by position**::

    inputs : x [1, 4C, 80] float, offset [1] int64, required_cache_size [1] int64 (= R),
             attn_cache [B, head, R, 2 * S / head], conv_cache [B, 1, S, K - 1],
             attn_mask bool [1, 1, R + C]
    outputs: logits [1, C, V], new attn_cache, new conv_cache

``C`` (``chunk_size``) and ``R = C * num_left_chunks`` come from the recognizer config
(``from_wenet_ctc(chunk_size=, num_left_chunks=)``), not from the model; ``B, head, S, K`` from
the metadata keys ``num_blocks, head, output_size, cnn_module_kernel`` (with ``right_context,
subsampling_factor, vocab_size``; a missing key ends the process). sherpa advances ``offset`` by
``C`` after each chunk and sets the first ``R - k * C`` entries of ``attn_mask`` to false for
chunk ``k < num_left_chunks``. Every dimension is static here, so a recognizer configured with
another ``chunk_size`` or ``num_left_chunks`` is refused by ONNX Runtime (x or attn_cache shape).

The adapter around the unchanged edgetune graph:

- **one cache tensor for all layers, padded**: ``head = 1``, ``S`` = the widest attention or conv
  width over layers, ``K - 1`` = the longest conv state. Layer ``i`` reads
  ``attn_cache[i, 0, R-L:R, :2w_i]`` (its K|V, ``L`` = edgetune's left context) and
  ``conv_cache[i, 0, :E_i, K-k_i:]``; the new caches are zero-padded back to those shapes, so a
  pruned model whose widths differ by layer maps exactly (the padding is never read);
- **the left-context mask**: edgetune's ``cache_mask`` is ``attn_mask[0, 0, R-L:R]`` (``R >= L``:
  ``num_left_chunks = ceil(L / C)``); the ``C`` entries of the current chunk are always true;
- **the sample scale**: for wenet models sherpa turns ``normalize_samples`` off and multiplies
  samples by 32768 before Kaldi fbank, so every mel energy is ``2**30`` times larger and each
  log-mel value ``x`` arrives as ``max(x + 30 ln 2, ln FLT_EPSILON)``. The graph starts with
  ``Max(x - 30 ln 2, ln FLT_EPSILON)``, which gives edgetune's features back (exactly in real
  arithmetic; measured float error in ``docs/sherpa-wenet-ctc.md``).

``offset`` and ``required_cache_size`` are declared (sherpa feeds them) and not read.
Batch: sherpa's wenet model has no batched states (``StackStates`` stops for more than one
stream), so the graph is batch 1. onnx + numpy only; :class:`WenetRunner` needs onnxruntime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetune.errors import ExportError
from edgetune.export.metadata import CacheSpec, StreamingSpec

if TYPE_CHECKING:
    from edgetune.export.sherpa import SherpaLayer

MODEL_TYPE = "wenet_ctc"
SAMPLE_SCALE = 32768.0  # sherpa-onnx multiplies samples by this for wenet_ctc (normalize_samples = false)
#: what the scale adds to every Kaldi log-mel value: ln(32768 ** 2) = 30 ln 2, in float32
FEATURE_SHIFT = np.float32(2.0 * math.log(SAMPLE_SCALE))
#: Kaldi fbank's floor, log(FLT_EPSILON) in float32 (kaldi-native-fbank takes log(max(e, FLT_EPSILON)))
LOG_FLOOR = np.log(np.float32(np.finfo(np.float32).eps))
INPUTS = ("x", "offset", "required_cache_size", "attn_cache", "conv_cache", "attn_mask")
OUTPUTS = ("logits", "new_attn_cache", "new_conv_cache")


@dataclass(frozen=True)
class WenetGeometry:
    """The shared cache tensors of sherpa's wenet_ctc model, sized for every layer of one file."""

    num_blocks: int        # B: layers
    output_size: int       # S: widest attention (w) or conv (E) width over layers
    cnn_module_kernel: int  # K: longest conv state + 1
    chunk_size: int        # C: encoder frames per chunk (the recognizer's chunk_size)
    num_left_chunks: int   # the recognizer's num_left_chunks: R = C * num_left_chunks >= L
    left: int              # L: edgetune's left context in encoder frames

    @property
    def required_cache_size(self) -> int:
        return self.chunk_size * self.num_left_chunks

    @property
    def attn_shape(self) -> tuple[int, int, int, int]:
        return (self.num_blocks, 1, self.required_cache_size, 2 * self.output_size)

    @property
    def conv_shape(self) -> tuple[int, int, int, int]:
        return (self.num_blocks, 1, self.output_size, self.cnn_module_kernel - 1)

    def padding(self, layers: list["SherpaLayer"]) -> dict[str, int]:
        """Floats per stream in the shared caches vs those the layers use (the cost of one width)."""
        used = sum(self.left * 2 * la.attn_dim + la.conv_dim * la.conv_cache for la in layers)
        total = int(np.prod(self.attn_shape)) + int(np.prod(self.conv_shape))
        return {"cache_floats": total, "used_floats": used, "padding_floats": total - used}


def wenet_geometry(layers: list["SherpaLayer"], left: int, enc_chunk: int) -> WenetGeometry:
    if not layers:
        raise ExportError("sherpa-onnx wenet_ctc needs at least one encoder layer, but the model has none")
    return WenetGeometry(num_blocks=len(layers),
                         output_size=max(max(la.attn_dim, la.conv_dim) for la in layers),
                         cnn_module_kernel=max(la.conv_cache for la in layers) + 1,
                         chunk_size=enc_chunk, num_left_chunks=-(-left // enc_chunk), left=left)


def wenet_metadata(geo: WenetGeometry, subsampling: int, vocab_size: int) -> dict[str, str]:
    """The 7 keys OnlineWenetCtcModel reads, plus the recognizer settings this file needs (for humans).

    ``right_context = subsampling - 1`` makes sherpa's ChunkLength ``(C - 1) * subsampling +
    right_context + 1`` equal to ChunkShift ``C * subsampling``: edgetune's subsampling needs
    exactly ``subsampling`` frames per encoder frame, no look-ahead."""
    return {"model_type": MODEL_TYPE, "model_author": "edgetune", "vocab_size": str(vocab_size),
            "head": "1", "num_blocks": str(geo.num_blocks), "output_size": str(geo.output_size),
            "cnn_module_kernel": str(geo.cnn_module_kernel), "right_context": str(subsampling - 1),
            "subsampling_factor": str(subsampling),
            "chunk_size": str(geo.chunk_size), "num_left_chunks": str(geo.num_left_chunks)}


def adapt_wenet(model: Any, layers: list["SherpaLayer"], geo: WenetGeometry, spec: StreamingSpec) -> None:
    """Rewrite ``model`` (an onnx.ModelProto of an edgetune file) in place into the wenet_ctc layout."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    taken = ({i.name for i in g.input} | {o for n in g.node for o in n.output}) - {spec.logits_output}
    if taken & set(INPUTS + OUTPUTS):
        raise ExportError(f"the graph already has tensors named {sorted(taken & set(INPUTS + OUTPUTS))}; "
                          f"this is an exporter bug")
    old_outputs = {o.name: o for o in g.output}
    feats = {i.name: i for i in g.input}[spec.features_input]
    inits: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), f"wenet_{name}"))
        return f"wenet_{name}"

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> Any:
        return helper.make_node(op, inputs, [output], name=f"wenet_{output}", **attrs)

    R, L, S, K1 = geo.required_cache_size, geo.left, geo.output_size, geo.cnn_module_kernel - 1
    i64 = np.int64
    # features: undo sherpa's x32768 sample scale, then the Kaldi floor
    pre = [node("Sub", ["x", const("shift", FEATURE_SHIFT)], "wenet_x_unscaled"),
           node("Max", ["wenet_x_unscaled", const("floor", LOG_FLOOR)], spec.features_input)]
    post: list[Any] = []
    for i, la in enumerate(layers):
        w, E, k1 = la.attn_dim, la.conv_dim, la.conv_cache
        pre += [node("Gather", ["attn_cache", const(f"block_{i}", i64(i))], f"wenet_attn_{i}", axis=0),   # [1, R, 2S]
                node("Slice", [f"wenet_attn_{i}", const(f"kv_start_{i}", [R - L, 0]), const(f"kv_end_{i}", [R, 2 * w]),
                               const(f"kv_axes_{i}", [1, 2])], f"cache_kv_{i}"),                            # [1, L, 2w]
                node("Gather", ["conv_cache", f"wenet_block_{i}"], f"wenet_conv_{i}", axis=0),              # [1, S, K-1]
                node("Slice", [f"wenet_conv_{i}", const(f"conv_start_{i}", [0, K1 - k1]),
                               const(f"conv_end_{i}", [E, K1]), f"wenet_kv_axes_{i}"], f"cache_conv_{i}")]  # [1, E, k-1]
        post += [node("Pad", [f"new_cache_kv_{i}", const(f"kv_pads_{i}", [0, R - L, 0, 0, 0, 2 * (S - w)])],
                      f"wenet_new_attn_{i}"),                                                               # [1, R, 2S]
                 node("Unsqueeze", [f"wenet_new_attn_{i}", const(f"axis0_{i}", [0])], f"wenet_new_attn4_{i}"),
                 node("Pad", [f"new_cache_conv_{i}", const(f"conv_pads_{i}", [0, 0, K1 - k1, 0, S - E, 0])],
                      f"wenet_new_conv_{i}"),                                                               # [1, S, K-1]
                 node("Unsqueeze", [f"wenet_new_conv_{i}", f"wenet_axis0_{i}"], f"wenet_new_conv4_{i}")]
    # edgetune's validity mask of the left context: the L entries before the current chunk
    pre += [node("Slice", ["attn_mask", const("mask_start", [R - L]), const("mask_end", [R]), const("mask_axis", [2])],
                 "wenet_mask_l"),                                                                           # [1, 1, L]
            node("Reshape", ["wenet_mask_l", const("mask_shape", [1, L])], "wenet_mask_2d"),
            node("Cast", ["wenet_mask_2d"], "cache_mask", to=TensorProto.FLOAT)]
    post += [node("Concat", [f"wenet_new_attn4_{i}" for i in range(len(layers))], "new_attn_cache", axis=0),
             node("Concat", [f"wenet_new_conv4_{i}" for i in range(len(layers))], "new_conv_cache", axis=0)]
    if spec.logits_output != "logits":
        post.append(node("Identity", [spec.logits_output], "logits"))

    x_dims = [d.dim_value for d in feats.type.tensor_type.shape.dim]
    logits_dims = [d.dim_value for d in old_outputs[spec.logits_output].type.tensor_type.shape.dim]
    new_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims),
                  helper.make_tensor_value_info("offset", TensorProto.INT64, [1]),
                  helper.make_tensor_value_info("required_cache_size", TensorProto.INT64, [1]),
                  helper.make_tensor_value_info("attn_cache", TensorProto.FLOAT, list(geo.attn_shape)),
                  helper.make_tensor_value_info("conv_cache", TensorProto.FLOAT, list(geo.conv_shape)),
                  helper.make_tensor_value_info("attn_mask", TensorProto.BOOL, [1, 1, R + geo.chunk_size])]
    new_outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, logits_dims),
                   helper.make_tensor_value_info("new_attn_cache", TensorProto.FLOAT, list(geo.attn_shape)),
                   helper.make_tensor_value_info("new_conv_cache", TensorProto.FLOAT, list(geo.conv_shape))]
    from edgetune.export._passes import rewire

    rewire(model, new_inputs, new_outputs, pre + list(g.node) + post, inits)


def wenet_caches(geo: WenetGeometry) -> list[CacheSpec]:
    """The two fed-back states, as edgetune cache specs (``offset`` and ``attn_mask`` are sherpa's)."""
    return [CacheSpec("attn_cache", "new_attn_cache", geo.attn_shape),
            CacheSpec("conv_cache", "new_conv_cache", geo.conv_shape)]


class WenetRunner:
    """A wenet_ctc file in ONNX Runtime, fed the way OnlineWenetCtcModel::Forward feeds it
    (offset from R, ``attn_mask`` from the chunk index). ``step`` takes **scaled** features
    (what sherpa computes from samples x 32768); :meth:`scale` maps edgetune's features there."""

    def __init__(self, path: str, chunk_size: int, num_left_chunks: int, threads: int = 1) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        if len(self.inputs) != 6 or len(self.outputs) != 3:
            raise ExportError(f"{path} has {len(self.inputs)} inputs and {len(self.outputs)} outputs; "
                              f"sherpa-onnx's wenet_ctc needs 6 and 3")
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self.attn_shape, self.conv_shape = shapes[self.inputs[3]], shapes[self.inputs[4]]
        self.chunk_size, self.num_left_chunks = int(chunk_size), int(num_left_chunks)
        self.reset()

    def reset(self) -> None:
        self.attn = np.zeros(self.attn_shape, np.float32)
        self.conv = np.zeros(self.conv_shape, np.float32)
        self.offset = self.chunk_size * self.num_left_chunks

    @staticmethod
    def scale(feats: np.ndarray) -> np.ndarray:
        """edgetune features -> what sherpa's x32768 samples give (exact for features on a 2**-10 grid
        below 11: then ``x + shift - shift == x`` in float32)."""
        return np.maximum(np.asarray(feats, np.float32) + FEATURE_SHIFT, LOG_FLOOR).astype(np.float32)

    def step(self, chunk: np.ndarray) -> np.ndarray:
        """One chunk of scaled features [4C, 80] -> logits [C, V]; the caches and offset advance."""
        R, C = self.chunk_size * self.num_left_chunks, self.chunk_size
        k = self.offset // C - self.num_left_chunks
        mask = np.ones((1, 1, R + C), dtype=bool)
        if k < self.num_left_chunks:
            mask[..., :R - k * C] = False
        feeds = dict(zip(self.inputs, [np.asarray(chunk, np.float32)[None], np.array([self.offset], np.int64),
                                       np.array([R], np.int64), self.attn, self.conv, mask]))
        logits, self.attn, self.conv = self.session.run(self.outputs, feeds)
        self.offset += logits.shape[1]
        return logits[0]
