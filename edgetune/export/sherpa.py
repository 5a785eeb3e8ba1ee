"""Rewrite an edgetune streaming ONNX file into one that sherpa-onnx loads as ``zipformer2_ctc``.

sherpa-onnx (k2-fsa, 2.0.1) matches a streaming CTC model's inputs and outputs **by
position** and sizes its states from metadata; names are ignored. Its ``zipformer2_ctc``
signature, for ``m`` layers in stacks, is::

    inputs : x [N, T, 80], then per layer  key [L, N, Dk], nonlin_attn [1, N, L, 3E/4],
             val1 [L, N, Dv], val2 [L, N, Dv], conv1 [N, E, K/2], conv2 [N, E, K/2],
             then embed_states [N, 128, 3, 19], processed_lens int64 [N]
    outputs: logits [N, T', V], then the next value of every state, in input order

The rewrite keeps the edgetune graph (same weights, same QDQ / INT4 nodes) and adds a thin
adapter around it; every layer is its own "stack" (``num_encoder_layers = 1,1,...``), so a
pruned model whose widths differ by layer maps exactly:

- K/V cache ``[1, L, 2w]`` = Concat(key, val1) after moving sherpa's ``[L, 1, w]`` to
  ``[1, L, w]`` (``num_heads = 1``, ``query_head_dims = value_head_dims = w``);
- conv cache ``[1, E, K-1]``: for an odd kernel ``K`` it is Concat(conv1, conv2), each
  ``[1, E, (K-1)/2]``; for an even kernel conv1 holds all of it (declared kernel
  ``2(K-1)``) and conv2 is passed through;
- ``nonlin_attn``, ``val2`` and ``embed_states`` are passed through unchanged;
- the left-context validity mask (edgetune's ``cache_mask``) is computed from
  ``processed_lens`` (encoder frames seen so far): position ``j`` of ``L`` is valid iff
  ``j + processed_lens >= L``; the output adds the chunk's encoder frames.

``T = decode_chunk_len = chunk_frames``: edgetune's subsampling (kernel = stride) needs no
right context. sherpa decodes a chunk only when more than ``T`` frames are ready, so the end of
an utterance is decoded only after tail padding: :func:`tail_padding_samples`.

Batched ``decode_streams``: the graph is one ``Scan`` over the stream axis (``x [N, T, 80]``,
states stacked along sherpa's axes, :data:`STATE_BATCH_AXIS`) whose body is the batch-1 graph,
so each stream runs exactly the nodes of one-stream decoding. onnx + numpy only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import ExportError
from edgetune.export.metadata import METADATA_KEY, CacheSpec, StreamingSpec

MODEL_TYPE = "zipformer2_ctc"
#: the sherpa-onnx streaming CTC layouts edgetune writes (the first is the default)
MODEL_TYPES = (MODEL_TYPE, "wenet_ctc")
EMBED_STATES_SHAPE = (1, 128, 3, 19)
SPACE_SYMBOL = "\u2581"   # sherpa's SymbolTable turns "▁" back into a space
BLANK_SYMBOL = "<blank>"  # one of the names sherpa looks up for the CTC blank
ENCODER_SUBSAMPLING = 4   # feature frames per encoder frame (edgetune.knobs.SUBSAMPLING)

__all__ = ["MODEL_TYPE", "MODEL_TYPES", "SherpaExport", "SherpaLayer", "export_sherpa", "sherpa_chunks",
           "tail_padding_samples", "tokens_txt"]


@dataclass(frozen=True)
class SherpaLayer:
    """One edgetune layer as a sherpa stack of one layer."""

    attn_dim: int      # w: width of K (and of V)
    conv_dim: int      # E: channels of the causal depthwise conv
    conv_cache: int    # K - 1 frames of conv state

    @property
    def split(self) -> bool:
        """Odd kernel: the conv cache splits into conv1 + conv2 halves."""
        return self.conv_cache % 2 == 0

    @property
    def declared_kernel(self) -> int:
        """``cnn_module_kernels`` entry: sherpa sizes conv1 and conv2 as ``[N, E, kernel // 2]``."""
        return self.conv_cache + 1 if self.split else 2 * self.conv_cache

    @property
    def half(self) -> int:
        return self.declared_kernel // 2

    @property
    def nonlin_dim(self) -> int:
        return 3 * self.conv_dim // 4


@dataclass
class SherpaExport:
    """What :func:`export_sherpa` wrote."""

    model: Path
    tokens: Path
    howto: Path
    size_bytes: int
    spec: StreamingSpec
    metadata: dict[str, str]
    source_sha256: str


def _layers(spec: StreamingSpec) -> tuple[list[SherpaLayer], int, int]:
    """(layers, left context L in encoder frames, encoder frames per chunk) from the edgetune caches."""
    if spec.family != "conformer_lite":
        raise ExportError(f"sherpa-onnx export supports the conformer_lite family, but the model is "
                          f"{spec.family!r}; export a conformer_lite candidate")
    caches = {c.input: c for c in spec.caches}
    n_layers = len(spec.model_config.get("layers", []))
    expected = ["cache_mask"] + [f"cache_{k}_{i}" for i in range(n_layers) for k in ("kv", "conv")]
    if [c.input for c in spec.caches] != expected:
        raise ExportError(f"sherpa-onnx export expects the caches {expected}, but the file declares "
                          f"{[c.input for c in spec.caches]}: re-export the model with this edgetune")
    left = int(caches["cache_mask"].shape[1])
    if left < 1:
        raise ExportError("sherpa-onnx needs a left context of at least one chunk (left_context_len >= 1), "
                          "but the model has none; use a model with left_chunks >= 1")
    layers = []
    for i in range(n_layers):
        kv, conv = caches[f"cache_kv_{i}"].shape, caches[f"cache_conv_{i}"].shape
        if kv[1] != left or kv[2] % 2:
            raise ExportError(f"cache_kv_{i} has shape {list(kv)}; expected [1, {left}, 2*width]")
        if conv[2] < 1:
            raise ExportError(f"cache_conv_{i} has shape {list(conv)}: a conv kernel of 1 has no state; "
                              f"sherpa-onnx needs conv_kernel >= 2")
        layers.append(SherpaLayer(attn_dim=int(kv[2]) // 2, conv_dim=int(conv[1]), conv_cache=int(conv[2])))
    if spec.chunk_frames % ENCODER_SUBSAMPLING:
        raise ExportError(f"chunk_frames {spec.chunk_frames} is not a multiple of {ENCODER_SUBSAMPLING}")
    return layers, left, spec.chunk_frames // ENCODER_SUBSAMPLING


def state_specs(layers: list[SherpaLayer], left: int) -> list[CacheSpec]:
    """The sherpa states in sherpa's order, as edgetune cache specs (so edgetune's runner can run the file too)."""
    out: list[CacheSpec] = []
    for i, la in enumerate(layers):
        for name, shape in (("key", (left, 1, la.attn_dim)), ("nonlin_attn", (1, 1, left, la.nonlin_dim)),
                            ("val1", (left, 1, la.attn_dim)), ("val2", (left, 1, la.attn_dim)),
                            ("conv1", (1, la.conv_dim, la.half)), ("conv2", (1, la.conv_dim, la.half))):
            out.append(CacheSpec(f"{name}_{i}", f"new_{name}_{i}", shape))
    out.append(CacheSpec("embed_states", "new_embed_states", EMBED_STATES_SHAPE))
    out.append(CacheSpec("processed_lens", "new_processed_lens", (1,), "int64"))
    return out


#: the axis along which sherpa stacks each state of a batch (OnlineZipformer2CtcModel::StackStates)
STATE_BATCH_AXIS = {"key": 1, "nonlin_attn": 1, "val1": 1, "val2": 1, "conv1": 0, "conv2": 0,
                    "embed_states": 0, "processed_lens": 0}


def state_batch_axis(name: str) -> int:
    """``key_3`` -> 1, ``embed_states`` -> 0: where sherpa concatenates streams for ``decode_streams``."""
    return STATE_BATCH_AXIS[name if name in STATE_BATCH_AXIS else name.rsplit("_", 1)[0]]


def sherpa_metadata(layers: list[SherpaLayer], left: int, chunk_frames: int, vocab_size: int) -> dict[str, str]:
    """The metadata keys sherpa's OnlineZipformer2CtcModel reads (each one missing kills the process)."""
    def row(values: list[int]) -> str:
        return ",".join(str(int(v)) for v in values)

    return {
        "model_type": MODEL_TYPE, "model_author": "edgetune", "vocab_size": str(vocab_size),
        "encoder_dims": row([la.conv_dim for la in layers]),
        "query_head_dims": row([la.attn_dim for la in layers]),
        "value_head_dims": row([la.attn_dim for la in layers]),
        "num_heads": row([1] * len(layers)),
        "num_encoder_layers": row([1] * len(layers)),
        "cnn_module_kernels": row([la.declared_kernel for la in layers]),
        "left_context_len": row([left] * len(layers)),
        "T": str(chunk_frames), "decode_chunk_len": str(chunk_frames),
    }


def tokens_txt(vocabulary: list[str], blank_id: int) -> str:
    """sherpa's ``tokens.txt``: one ``symbol id`` per line, space as ``▁``, the blank as ``<blank>``."""
    lines = []
    for i, sym in enumerate(vocabulary):
        sym = BLANK_SYMBOL if i == blank_id else (SPACE_SYMBOL if sym == " " else sym)
        if not sym or any(ch.isspace() for ch in sym):
            raise ExportError(f"vocabulary entry {i} ({vocabulary[i]!r}) cannot be written to tokens.txt: "
                              f"symbols other than the space must not contain whitespace")
        lines.append(f"{sym} {i}")
    return "\n".join(lines) + "\n"


def tail_padding_samples(spec: StreamingSpec) -> int:
    """Zero samples to append before ``input_finished()`` so sherpa decodes every frame of the audio:
    one chunk plus two frames (sherpa runs a chunk only once more than ``T`` frames are ready)."""
    return (spec.chunk_frames + 2) * spec.features.hop_length


def sherpa_chunks(n_frames: int, chunk_frames: int) -> int:
    """How many chunks sherpa decodes from ``n_frames`` feature frames: chunk ``k`` runs iff
    ``k * chunk + T < n_frames`` (``OnlineRecognizerCtcImpl::IsReady``, ``T = decode_chunk_len``)."""
    return max(0, (int(n_frames) - 1) // int(chunk_frames))


# ------------------------------------------------------------------------------------ the graph
def _adapt(model: Any, layers: list[SherpaLayer], left: int, enc_chunk: int, spec: StreamingSpec) -> None:
    """Rewrite ``model`` (an onnx.ModelProto of an edgetune file) in place into the sherpa layout."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    old_inputs = {i.name: i for i in g.input}
    old_outputs = {o.name: o for o in g.output}
    feats = old_inputs[spec.features_input]
    x_name = "x"
    if x_name in old_inputs or any(x_name in n.output for n in g.node):
        raise ExportError("the graph already has a tensor named 'x'; this is an exporter bug")
    pre: list[Any] = [helper.make_node("Identity", [x_name], [spec.features_input], name="sherpa_x")]
    post: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    perm = [1, 0, 2]
    for i, la in enumerate(layers):
        w, h = la.attn_dim, la.half
        # in: key/val1 [L, 1, w] -> cache_kv [1, L, 2w]
        pre += [helper.make_node("Transpose", [f"key_{i}"], [f"sherpa_k_{i}"], perm=perm, name=f"sherpa_in_k_{i}"),
                helper.make_node("Transpose", [f"val1_{i}"], [f"sherpa_v_{i}"], perm=perm, name=f"sherpa_in_v_{i}"),
                helper.make_node("Concat", [f"sherpa_k_{i}", f"sherpa_v_{i}"], [f"cache_kv_{i}"], axis=2,
                                 name=f"sherpa_in_kv_{i}")]
        if la.split:
            pre.append(helper.make_node("Concat", [f"conv1_{i}", f"conv2_{i}"], [f"cache_conv_{i}"], axis=2,
                                        name=f"sherpa_in_conv_{i}"))
        else:
            pre.append(helper.make_node("Identity", [f"conv1_{i}"], [f"cache_conv_{i}"], name=f"sherpa_in_conv_{i}"))
        # out: new_cache_kv [1, L, 2w] -> new_key/new_val1 [L, 1, w]
        split = const(f"sherpa_split_kv_{i}", np.array([w, w], dtype=np.int64))
        post += [helper.make_node("Split", [f"new_cache_kv_{i}", split], [f"sherpa_nk_{i}", f"sherpa_nv_{i}"],
                                  axis=2, name=f"sherpa_out_split_{i}"),
                 helper.make_node("Transpose", [f"sherpa_nk_{i}"], [f"new_key_{i}"], perm=perm, name=f"sherpa_out_k_{i}"),
                 helper.make_node("Transpose", [f"sherpa_nv_{i}"], [f"new_val1_{i}"], perm=perm,
                                  name=f"sherpa_out_v_{i}"),
                 helper.make_node("Identity", [f"nonlin_attn_{i}"], [f"new_nonlin_attn_{i}"], name=f"sherpa_pass_na_{i}"),
                 helper.make_node("Identity", [f"val2_{i}"], [f"new_val2_{i}"], name=f"sherpa_pass_v2_{i}")]
        if la.split:
            csplit = const(f"sherpa_split_conv_{i}", np.array([h, h], dtype=np.int64))
            post.append(helper.make_node("Split", [f"new_cache_conv_{i}", csplit], [f"new_conv1_{i}", f"new_conv2_{i}"],
                                         axis=2, name=f"sherpa_out_conv_{i}"))
        else:
            post += [helper.make_node("Identity", [f"new_cache_conv_{i}"], [f"new_conv1_{i}"], name=f"sherpa_out_conv_{i}"),
                     helper.make_node("Identity", [f"conv2_{i}"], [f"new_conv2_{i}"], name=f"sherpa_pass_c2_{i}")]
    # validity mask of the left context from processed_lens: [1, L] float, 1 where filled
    positions = const("sherpa_positions", np.arange(left, dtype=np.int64)[None, :])
    left_len = const("sherpa_left_len", np.array(left, dtype=np.int64))
    step = const("sherpa_chunk_len", np.array([enc_chunk], dtype=np.int64))
    pre += [helper.make_node("Add", [positions, "processed_lens"], ["sherpa_pos_plus"], name="sherpa_mask_add"),
            helper.make_node("GreaterOrEqual", ["sherpa_pos_plus", left_len], ["sherpa_mask_bool"], name="sherpa_mask_ge"),
            helper.make_node("Cast", ["sherpa_mask_bool"], ["cache_mask"], to=TensorProto.FLOAT, name="sherpa_mask")]
    post += [helper.make_node("Identity", ["embed_states"], ["new_embed_states"], name="sherpa_pass_embed"),
             helper.make_node("Add", ["processed_lens", step], ["new_processed_lens"], name="sherpa_lens")]

    states = state_specs(layers, left)
    elem = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}
    new_inputs = [helper.make_tensor_value_info(x_name, TensorProto.FLOAT,
                                                [d.dim_value for d in feats.type.tensor_type.shape.dim])]
    new_inputs += [helper.make_tensor_value_info(s.input, elem[s.dtype], list(s.shape)) for s in states]
    logits = old_outputs[spec.logits_output]
    new_outputs = [logits] + [helper.make_tensor_value_info(s.output, elem[s.dtype], list(s.shape)) for s in states]
    # the old cache_mask output is no longer needed: the mask lives in processed_lens
    from edgetune.export._passes import rewire

    rewire(model, new_inputs, new_outputs, pre + list(g.node) + post, inits)


def _batch_over_scan(model: Any, states: list[CacheSpec]) -> None:
    """Wrap the batch-1 graph in an ONNX ``Scan`` over the stream axis, so ``decode_streams`` can
    pass ``N`` streams (``x [N, T, 80]``, states stacked along sherpa's batch axes): the body runs
    each stream in turn with the unchanged nodes (weights stay outer-scope initializers). N = 1
    is exactly the batch-1 graph."""
    from onnx import TensorProto, helper

    g = model.graph
    axes = [0] + [state_batch_axis(s.input) for s in states]   # x, then the states
    out_axes = [0] + [state_batch_axis(s.input) for s in states]  # logits, then the new states
    body_nodes, body_in, body_out, outer_in, outer_out = [], [], [], [], []

    def strip(vi: Any, axis: int, name: str, batch: str | None) -> Any:
        t = vi.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        if batch is None:
            del dims[axis]
        else:
            dims[axis] = batch
        return helper.make_tensor_value_info(name, t.elem_type, dims)

    # names are unique across scopes (SSA): inside the body the batch-1 tensors get a suffix
    one = {vi.name: f"{vi.name}__one" for vi in [*g.input, *g.output]}
    for n in g.node:
        n.input[:] = [one.get(i, i) for i in n.input]
        n.output[:] = [one.get(o, o) for o in n.output]
    for vi, axis in zip(g.input, axes):
        body_in.append(strip(vi, axis, f"{vi.name}__stream", None))
        outer_in.append(strip(vi, axis, vi.name, "N"))
        ax = f"sherpa_axis_in_{vi.name}"
        body_nodes += [helper.make_node("Constant", [], [ax], value=helper.make_tensor(ax, TensorProto.INT64, [1], [axis])),
                       helper.make_node("Unsqueeze", [f"{vi.name}__stream", ax], [one[vi.name]],
                                        name=f"sherpa_stream_{vi.name}")]
    body_nodes += list(g.node)
    for vi, axis in zip(g.output, out_axes):
        body_out.append(strip(vi, axis, f"{vi.name}__stream", None))
        outer_out.append(strip(vi, axis, vi.name, "N"))
        ax = f"sherpa_axis_out_{vi.name}"
        body_nodes += [helper.make_node("Constant", [], [ax], value=helper.make_tensor(ax, TensorProto.INT64, [1], [axis])),
                       helper.make_node("Squeeze", [one[vi.name], ax], [f"{vi.name}__stream"],
                                        name=f"sherpa_unstream_{vi.name}")]
    value_info = [vi for vi in g.value_info if vi.name not in one]
    body = helper.make_graph(body_nodes, "sherpa_stream", body_in, body_out, value_info=value_info)
    scan = helper.make_node("Scan", [vi.name for vi in g.input], [vi.name for vi in g.output], name="sherpa_streams",
                            body=body, num_scan_inputs=len(axes), scan_input_axes=axes, scan_output_axes=out_axes)
    del g.node[:]
    g.node.append(scan)
    del g.value_info[:]
    del g.input[:]
    g.input.extend(outer_in)
    del g.output[:]
    g.output.extend(outer_out)


#: ``layernorm`` settings of the ship step: keep the study's file, or rewrite LayerNormalization in
#: primitive ops (:func:`edgetune.export._passes.decompose_layernorm`)
LAYERNORM_MODES = ("fused", "primitive")


def primitive_layernorm_copy(source: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Write ``dest``: the edgetune file ``source`` with LayerNormalization in primitive ops, so its
    logits do not depend on the ONNX Runtime version (sherpa-onnx 2.0.1 bundles ORT 1.28.2, whose
    fused kernel rounds differently from 1.30+; in a quantized model that can flip a near-tied
    frame). Same weights; the metadata records ``layernorm: primitive`` and the source's sha256,
    and the copy is stamped as an edgetune file. Returns the number of nodes rewritten (0: the
    copy equals the source's graph). It costs latency: every LayerNormalization becomes 8-9 nodes
    (benchmarks/results/ort-versions-vm.json)."""
    import onnx

    from edgetune.export import _passes
    from edgetune.export._integrity import verify_model

    source, dest = Path(source), Path(dest)
    model = onnx.load(str(source))
    verify_model(source, model)
    meta = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in meta:
        raise ExportError(f"{str(source)!r} has no '{METADATA_KEY}' metadata: not an edgetune streaming model")
    spec = StreamingSpec.from_json(meta[METADATA_KEY])
    replaced = _passes.decompose_layernorm(model)
    extra = {**spec.extra, "layernorm": {"mode": "primitive", "rewritten_nodes": replaced,
                                         "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest()}}
    _passes.set_metadata(model, dataclasses.replace(spec, extra=extra).metadata_props())
    dest.parent.mkdir(parents=True, exist_ok=True)
    _passes.save_atomic(model, dest)  # stamps the copy
    return replaced


def sherpa_exportable(source: str | os.PathLike, model_type: str = MODEL_TYPE) -> str | None:
    """None when :func:`export_sherpa` converts ``source`` (into a temporary folder, the logits
    check included), else why not, e.g. for the report's front table. Decoding in sherpa-onnx
    itself is ``edgetune ship``'s job."""
    import tempfile

    from edgetune.errors import EdgetuneError

    with tempfile.TemporaryDirectory(prefix="edgetune-sherpa-") as tmp:
        try:
            export_sherpa(source, tmp, model_type=model_type)
        except EdgetuneError as exc:
            return str(exc)
    return None


def export_sherpa(source: str | os.PathLike, out_dir: str | os.PathLike, *, model_type: str = MODEL_TYPE,
                  model_name: str = "model.onnx", check: bool = True) -> SherpaExport:
    """Write ``out_dir/model.onnx`` (sherpa-onnx ``model_type`` layout: ``zipformer2_ctc``, the
    default, or ``wenet_ctc``: :mod:`edgetune.export._sherpa_wenet`), ``tokens.txt`` and ``README.md``
    from an edgetune streaming ONNX file. ``check`` runs the rewritten graph in ONNX Runtime beside
    the source on random features and raises ExportError if the logits differ."""
    import onnx

    from edgetune.export import _passes
    from edgetune.export import _sherpa_wenet as wenet

    if model_type not in MODEL_TYPES:
        raise ExportError(f"unknown sherpa-onnx model type {model_type!r}; valid types: {', '.join(MODEL_TYPES)}")
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_file():
        raise ExportError(f"model file {str(source)!r} does not exist; pass an edgetune model.onnx")
    try:
        model = onnx.load(str(source))
    except Exception as exc:
        raise ExportError(f"{str(source)!r} is not a readable ONNX file: {exc}") from None
    from edgetune.export._integrity import verify_model

    verify_model(source, model)  # a source modified after export is refused (ArtifactError)
    meta = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in meta:
        raise ExportError(f"{str(source)!r} has no '{METADATA_KEY}' metadata: not an edgetune streaming model "
                          f"(a file that is already in the sherpa layout cannot be converted again)")
    spec = StreamingSpec.from_json(meta[METADATA_KEY])
    if spec.extra.get("sherpa_onnx"):
        raise ExportError(f"{str(source)!r} is already a sherpa-onnx export; pass the edgetune model it came from")
    if spec.features.n_mels != 80 or spec.features.sample_rate != 16000:
        raise ExportError(f"sherpa-onnx feeds 80-bin fbank at 16 kHz; the model expects {spec.features.n_mels} "
                          f"bins at {spec.features.sample_rate} Hz")
    layers, left, enc_chunk = _layers(spec)
    src_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    info: dict[str, Any] = {"model_type": model_type, "source_sha256": src_sha,
                            "tail_padding_samples": tail_padding_samples(spec)}
    if model_type == wenet.MODEL_TYPE:
        geo = wenet.wenet_geometry(layers, left, enc_chunk)
        wenet.adapt_wenet(model, layers, geo, spec)
        _passes.remove_unused(model)  # the old new_cache_mask branch
        states = wenet.wenet_caches(geo)
        info.update(batch=1, chunk_size=geo.chunk_size, num_left_chunks=geo.num_left_chunks,
                    sample_scale=wenet.SAMPLE_SCALE, **geo.padding(layers))
        sherpa_meta = wenet.wenet_metadata(geo, ENCODER_SUBSAMPLING, len(spec.vocabulary))
    else:
        _adapt(model, layers, left, enc_chunk, spec)
        _passes.remove_unused(model)  # the old new_cache_mask branch
        states = state_specs(layers, left)
        _batch_over_scan(model, states)
        info["batch"] = "N"
        sherpa_meta = sherpa_metadata(layers, left, spec.chunk_frames, len(spec.vocabulary))
    shipped = dataclasses.replace(spec, features_input="x", caches=states,
                                  extra={**spec.extra, "sherpa_onnx": info})
    _passes.set_metadata(model, {**sherpa_meta, **shipped.metadata_props()})
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ExportError(f"the sherpa-onnx graph for {source} fails onnx.checker: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / model_name
    size = _passes.save_atomic(model, path)
    if check:
        _check_same_logits(source, path, spec, info)
    tokens = out_dir / "tokens.txt"
    tokens.write_text(tokens_txt(spec.vocabulary, spec.blank_id), encoding="utf-8")
    howto = out_dir / "README.md"
    text = wenet_howto_text if model_type == wenet.MODEL_TYPE else howto_text
    howto.write_text(text(shipped, model_name, src_sha), encoding="utf-8")
    return SherpaExport(model=path, tokens=tokens, howto=howto, size_bytes=size, spec=shipped,
                        metadata=sherpa_meta, source_sha256=src_sha)


def _check_same_logits(source: Path, shipped: Path, spec: StreamingSpec, info: dict[str, Any]) -> None:
    """Both files in ONNX Runtime on the same random chunks, two more than the left context holds
    (so the mask computed from processed_lens, or sherpa's attn_mask, saturates): the logits must
    agree up to float rounding (the adapter only moves tensors). wenet_ctc: the shipped file gets
    the features sherpa's x32768 samples give, on a grid where the scale round-trips exactly."""
    from edgetune._runner import StreamingModel
    from edgetune.export._sherpa_wenet import WenetRunner

    a = StreamingModel(str(source))
    left = int(next(c.shape[1] for c in spec.caches if c.input == "cache_mask"))
    chunks = -(-left // (spec.chunk_frames // ENCODER_SUBSAMPLING)) + 2
    rng = np.random.default_rng(0)
    feats = (rng.standard_normal((chunks * spec.chunk_frames, spec.features.n_mels)) * 3 - 8).astype(np.float32)
    if info["model_type"] == "wenet_ctc":  # on a 2**-10 grid above the floor: x + shift - shift == x
        feats = np.clip(np.round(feats * 1024) / 1024, -15.9, 10.0).astype(np.float32)
    la = a.run_utterance(feats)
    if info["model_type"] == "wenet_ctc":
        b = WenetRunner(str(shipped), info["chunk_size"], info["num_left_chunks"])
        c = spec.chunk_frames
        lb = np.concatenate([b.step(b.scale(feats[k * c:(k + 1) * c])) for k in range(chunks)], axis=0)
    else:
        lb = StreamingModel(str(shipped)).run_utterance(feats)
    diff = float(np.max(np.abs(la - lb))) if la.shape == lb.shape else float("inf")
    if not diff <= 1e-4:
        raise ExportError(f"the sherpa-onnx graph {shipped} disagrees with its source {source} in ONNX Runtime: "
                          f"max |logit difference| {diff:g} > 1e-4 over {chunks} chunks; this is an exporter bug")


def _python_decode(constructor: str, tail: int) -> str:
    """The how-tos' Python snippet: ``OnlineRecognizer.<constructor>``, one wave, tail padding."""
    return f"""```python
import numpy as np, sherpa_onnx, soundfile as sf

rec = sherpa_onnx.OnlineRecognizer.{constructor}
wave, rate = sf.read("audio.wav", dtype="float32")      # mono, 16 kHz
s = rec.create_stream()
s.accept_waveform(rate, wave)
s.accept_waveform(rate, np.zeros({tail}, dtype=np.float32))  # tail padding
s.input_finished()
while rec.is_ready(s):
    rec.decode_stream(s)
print(rec.get_result(s))
```"""


def _command_line(model_args: str, tail: int) -> str:
    """sherpa-onnx's C++ binary (``pip install sherpa-onnx-bin``): its default 0.5 s of leading
    silence moves every chunk boundary and changes the transcripts, so no left padding, and the
    tail padding as right padding (benchmarks/ship_cpp.py)."""
    return (f"Command line (`pip install sherpa-onnx-bin`): `sherpa-onnx {model_args} --tokens=tokens.txt "
            f"--left-padding=0 --right-padding={tail / 16000:g} audio.wav`. Without `--left-padding=0` the "
            "binary puts 0.5 s of silence in front, which moves the chunk boundaries and changes the transcripts.")


def howto_text(spec: StreamingSpec, model_name: str, source_sha256: str) -> str:
    """A short how-to for sherpa-onnx (Python, Android) beside the exported files."""
    tail = tail_padding_samples(spec)
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(spec.knobs.items()) if k in ("bits", "sparsity",
                                                                                  "depth_multiplier", "chunk_ms"))
    python = _python_decode(f'from_zipformer2_ctc(\n    tokens="tokens.txt", model="{model_name}", num_threads=1, '
                            'sample_rate=16000, feature_dim=80)', tail)
    command = _command_line(f"--zipformer2-ctc-model={model_name}", tail)
    return f"""# Run this model in sherpa-onnx

`{model_name}` is an edgetune streaming CTC model ({knobs}) in sherpa-onnx's
`zipformer2_ctc` layout, with `tokens.txt` beside it. It was converted from the edgetune
file with sha256 `{source_sha256}`; weights (and their {spec.weight_storage} storage) are unchanged.
Chunk: {spec.chunk_ms} ms. Features: sherpa's own (80-bin Kaldi fbank, 16 kHz, samples in [-1, 1]).

Decode one stream (`decode_stream`) or several ready streams at once (`decode_streams`): the
graph runs each stream of the batch through the same nodes, so the tokens do not depend on
the batch. Append
**{tail} zero samples** ({1000 * tail / spec.features.sample_rate:.0f} ms, or more) before
`input_finished()`: sherpa decodes a chunk only when more than one chunk of frames is ready.

## Python (`pip install sherpa-onnx`)

{python}

{command}

## Android / iOS

Copy both files into the app's assets and use the `OnlineRecognizer` of the sherpa-onnx
Kotlin (or Swift) API with `OnlineModelConfig(zipformer2Ctc = OnlineZipformer2CtcModelConfig(model =
"{model_name}"), tokens = "tokens.txt", numThreads = 1)` and
`FeatureConfig(sampleRate = 16000, featureDim = 80)`; feed audio with `acceptWaveform`, call
`decode` while `isReady`, and append the tail padding above before `inputFinished`.
"""


def read_sherpa_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata_props of a file (for tests and reports)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def wenet_howto_text(spec: StreamingSpec, model_name: str, source_sha256: str) -> str:
    """The how-to for a ``wenet_ctc`` export: Python (and C++) only, one stream per decode call."""
    info = spec.extra["sherpa_onnx"]
    tail = info["tail_padding_samples"]
    c, n = info["chunk_size"], info["num_left_chunks"]
    python = _python_decode(f'from_wenet_ctc(\n    tokens="tokens.txt", model="{model_name}", chunk_size={c}, '
                            f'num_left_chunks={n},\n    num_threads=1, sample_rate=16000, feature_dim=80)', tail)
    command = _command_line(f"--wenet-ctc-model={model_name} --wenet-ctc-chunk-size={c} "
                            f"--wenet-ctc-num-left-chunks={n}", tail)
    return f"""# Run this model in sherpa-onnx (wenet_ctc)

`{model_name}` is an edgetune streaming CTC model ({spec.chunk_ms} ms chunks, {spec.weight_storage}
weights, unchanged from the edgetune file with sha256 `{source_sha256}`) in sherpa-onnx's
`wenet_ctc` layout, with `tokens.txt` beside it. sherpa-onnx offers `wenet_ctc` in Python and
C++ only (no C API, Kotlin or Swift) and decodes one stream per model run: for Android, iOS or
batched decoding export the default `zipformer2_ctc` layout (`edgetune ship MODEL --out DIR`).

The recognizer **must** be built with `chunk_size={c}` and `num_left_chunks={n}`: sherpa takes
them from its config, not from the model, and ONNX Runtime refuses other values (the input
shapes are fixed). sherpa scales samples by 32768 for wenet models; the graph undoes that, so
feed samples in [-1, 1] as usual. Append **{tail} zero samples** before `input_finished()`.

{python}

{command}
"""
