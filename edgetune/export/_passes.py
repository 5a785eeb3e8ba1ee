"""ONNX graph passes applied after ``torch.onnx.export``: onnx + numpy only.

- :func:`fold_weight_quant`: a fake-quant export computes ``QuantizeLinear(W_fp32)`` at run
  time, so the file stores fp32 weights. This pass evaluates those QuantizeLinear nodes once
  and stores their integer result (INT8, or INT4 where every value fits [-7, 7] and 4-bit
  storage is asked for), feeding DequantizeLinear directly. The file size on disk is then
  the deployment size.
- :func:`convert_fp16`: a real float16 model: every float initializer/constant and every
  internal tensor in float16, float32 graph inputs/outputs through Casts at the edges.
- :func:`decompose_layernorm`: ``LayerNormalization`` as ReduceMean/Sub/Mul/Sqrt/Div, in a form
  ONNX Runtime does not fuse back, so a quantized model gives the same logits in every ORT
  version (see the function).
- :func:`set_metadata`, :func:`save_atomic`.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgetune._io import atomic_write_bytes

INT4_MIN, INT4_MAX = -8, 7


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Values of initializers and Constant nodes (tensor-valued only), by output name."""
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


def _int4_tensor(name: str, values: np.ndarray) -> onnx.TensorProto:
    """An INT4 tensor, packed two values per byte (first value in the low nibble) in raw_data."""
    flat = values.astype(np.int8).flatten()
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.int8)])
    nibbles = (flat.astype(np.uint8) & 0x0F)
    packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)
    return helper.make_tensor(name, TensorProto.INT4, values.shape, packed.tobytes(), raw=True)


def remove_unused(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads, and initializers nobody reads (iterates to a fixed point)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = Counter(i for n in graph.node for i in n.input) + Counter(outputs)
        dead = [n for n in graph.node if all(used[o] == 0 for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input} | outputs
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def fold_weight_quant(model: onnx.ModelProto, *, int4: bool = False) -> dict[str, int]:
    """Replace ``QuantizeLinear(constant W)`` by its integer result, stored as an initializer.

    ``int4``: store weights whose values all lie in [-7, 7] as INT4 (needs opset >= 21; the
    caller converts the opset first). Returns counts of folded weights per storage type.
    """
    consts = _constants(model)
    graph = model.graph
    counts: Counter[str] = Counter()
    new_inits: list[onnx.TensorProto] = []
    for node in list(graph.node):
        if node.op_type != "QuantizeLinear" or node.input[0] not in consts:
            continue
        if len(node.input) < 3 or node.input[1] not in consts or node.input[2] not in consts:
            continue
        w, scale, zp = consts[node.input[0]], consts[node.input[1]], consts[node.input[2]]
        if zp.dtype != np.int8:
            continue  # only weights (int8 carrier); activations stay dynamic
        axis = _attr(node, "axis", 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * w.ndim
            shape[axis % w.ndim] = scale.size
            scale_b, zp_b = scale.reshape(shape), zp.reshape(shape).astype(np.int32)
        else:
            scale_b, zp_b = scale, zp.astype(np.int32)
        q = np.clip(np.rint(w.astype(np.float32) / scale_b) + zp_b, -128, 127).astype(np.int8)
        name = f"{node.input[0]}_quantized"
        use_int4 = int4 and int(np.abs(q).max(initial=0)) <= INT4_MAX and not zp.any()
        if use_int4:
            tensor = _int4_tensor(name, q)
            zp_tensor = _int4_tensor(f"{name}_zero_point", zp)
            new_inits.append(zp_tensor)
            zp_name = zp_tensor.name
            counts["int4"] += 1
        else:
            tensor = numpy_helper.from_array(q, name)
            zp_name = node.input[2]
            counts["int8"] += 1
        new_inits.append(tensor)
        # every DequantizeLinear reading this Q now reads the stored integers
        for consumer in graph.node:
            if consumer.op_type == "DequantizeLinear" and consumer.input[0] == node.output[0]:
                consumer.input[0] = name
                if use_int4:
                    consumer.input[2] = zp_name
        graph.node.remove(node)
    graph.initializer.extend(new_inits)
    remove_unused(model)
    return dict(counts)


def decompose_layernorm(model: onnx.ModelProto) -> int:
    """Replace every ``LayerNormalization`` node by ``(x - mean) / sqrt(mean((x - mean)^2) + eps)
    * scale + bias`` in primitive ops; returns how many were replaced.

    Why: the fused LayerNormalization kernel changed between ONNX Runtime 1.29 and 1.30 by about
    1e-6. In a quantized model a QuantizeLinear that lands on a rounding boundary turns that into a
    whole int8 step, which can flip a near-tied frame: sherpa-onnx 2.0.1 (which bundles ORT 1.28.2)
    then decoded 59 of 60 smoke utterances like edgetune's ORT 1.32 (reports/smoke/ship-int4.md).
    The square is a Mul, not a Pow: ORT's LayerNormFusion matches ``Pow(d, 2)`` and would rebuild the
    fused node. The primitive kernels give the same floats in ORT 1.28 and 1.32.
    """
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    axes = "edgetune_ln_axes"
    replaced = 0
    for i, node in enumerate(graph.node):
        if node.op_type != "LayerNormalization":
            nodes.append(node)
            continue
        axis = _attr(node, "axis", -1)
        if axis != -1 or any(node.output[1:]):
            raise ValueError(f"LayerNormalization over axis {axis} or with Mean/InvStdDev outputs is not supported")
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        x, scale = node.input[0], node.input[1]
        bias = node.input[2] if len(node.input) > 2 else ""
        p = f"edgetune_ln{i}_"
        inits.append(numpy_helper.from_array(np.array(eps, np.float32), p + "eps"))

        def mean(src: str, dst: str) -> onnx.NodeProto:
            if opset >= 18:  # axes became an input in opset 18
                return helper.make_node("ReduceMean", [src, axes], [dst], keepdims=1)
            return helper.make_node("ReduceMean", [src], [dst], axes=[-1], keepdims=1)

        y = node.output[0]
        nodes += [
            mean(x, p + "mean"),
            helper.make_node("Sub", [x, p + "mean"], [p + "d"]),
            helper.make_node("Mul", [p + "d", p + "d"], [p + "sq"]),
            mean(p + "sq", p + "var"),
            helper.make_node("Add", [p + "var", p + "eps"], [p + "ve"]),
            helper.make_node("Sqrt", [p + "ve"], [p + "std"]),
            helper.make_node("Div", [p + "d", p + "std"], [p + "n"]),
            helper.make_node("Mul", [p + "n", scale], [p + "ns" if bias else y]),
        ]
        if bias:
            nodes.append(helper.make_node("Add", [p + "ns", bias], [y]))
        replaced += 1
    if replaced:
        if opset >= 18:
            inits.append(numpy_helper.from_array(np.array([-1], np.int64), axes))
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(inits)
    return replaced


def compact_names(model: onnx.ModelProto) -> None:
    """Shorten internal tensor names and drop node names: in a model of a few hundred kB the
    exporter's long scoped names are a measurable part of the file. Graph inputs and outputs
    keep their names (they are the contract)."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    mapping: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping):x}"
        return mapping[name]

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.name = ""
        for j, name in enumerate(node.input):
            node.input[j] = short(name)
        for j, name in enumerate(node.output):
            node.output[j] = short(name)
    del graph.value_info[:]


def weight_storage_counts(model: onnx.ModelProto) -> dict[str, int]:
    """How many initializers of each element type the file stores (e.g. {'INT8': 13, 'FLOAT': 30})."""
    return dict(Counter(TensorProto.DataType.Name(i.data_type) for i in model.graph.initializer))


def _to_fp16(t: onnx.TensorProto) -> onnx.TensorProto:
    arr = numpy_helper.to_array(t)
    return numpy_helper.from_array(arr.astype(np.float16), t.name)


def convert_fp16(model: onnx.ModelProto) -> int:
    """Convert a float32 graph to float16 compute; inputs/outputs stay float32 (Cast at the edges).

    Converts float initializers, Constant nodes, ``Cast(to=FLOAT)`` and ``ConstantOfShape``
    values. Returns the number of converted initializers. Every op of an edgetune model
    (MatMul, Conv, LayerNormalization, Softmax, ...) has a float16 CPU kernel in ONNX Runtime,
    so nothing is kept in float32 inside the graph.
    """
    graph = model.graph
    n = 0
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(_to_fp16(init))
            n += 1
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type in ("Constant", "ConstantOfShape") and attr.name == "value" \
                    and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_to_fp16(attr.t))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    # float32 edges: cast inputs down, outputs up
    edge_nodes = []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{inp.name}__fp16"
        for node in graph.node:
            for j, name in enumerate(node.input):
                if name == inp.name:
                    node.input[j] = half
        edge_nodes.append(helper.make_node("Cast", [inp.name], [half], to=TensorProto.FLOAT16,
                                           name=f"cast_in_{inp.name}"))
    for out in graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{out.name}__fp16"
        for node in graph.node:
            for j, name in enumerate(node.output):
                if name == out.name:
                    node.output[j] = half
            for j, name in enumerate(node.input):
                if name == out.name:
                    node.input[j] = half
        graph.node.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT,
                                           name=f"cast_out_{out.name}"))
    for node in reversed(edge_nodes):
        graph.node.insert(0, node)
    del graph.value_info[:]  # stale float32 annotations; ORT re-infers
    return n


def rewire(model: onnx.ModelProto, inputs: list, outputs: list, nodes: list, initializers: list) -> None:
    """Give the main graph new inputs, outputs and nodes (and more initializers), then the lowest
    IR version its opsets allow: a signature adapter wraps the graph this way."""
    g = model.graph
    del g.input[:]
    g.input.extend(inputs)
    del g.output[:]
    g.output.extend(outputs)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(initializers)
    model.ir_version = max(min(model.ir_version, onnx.IR_VERSION), helper.find_min_ir_version_for(
        list(model.opset_import)))


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Write ``props`` into metadata_props (replacing existing keys)."""
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def save_atomic(model: onnx.ModelProto, path: str | os.PathLike) -> int:
    """Serialize to ``path`` atomically (:func:`edgetune._io.atomic_write_bytes`); returns the size in bytes.

    Stamps the content digest first (:mod:`edgetune.export._integrity`)."""
    from edgetune.export._integrity import stamp

    stamp(model)
    data = model.SerializeToString()
    atomic_write_bytes(path, data)
    return len(data)
