"""The network's ONNX graph: its inputs, outputs and recorded configuration, and its
construction from the trained layers' arrays, without Keras.

The graph's initializers are the Keras layers' arrays in float16, already in the layout
ONNX's operators take (LSTM gates reordered and stacked, conv kernels transposed), so
loading has only a Cast to float32 to fold: folding layout nodes at load would hold
several copies of every weight at once. The layout changes are permutations, so
:func:`graph_weights` gives back exactly the arrays that were saved: an ensemble, a model
with more vector rows, or the graph of an ensemble's first members alone
(:func:`first_members`) is made from a graph without Keras. Only ``onnx`` is needed, and
only when a graph is built or read.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .config import CONFIG_FILE, GRAPH_FILE, VOCAB_FILE, ModelConfig, ModelLoadError

#: The input of a graph that reads gazetteer features ``(B, T, 2 * labels)``.
GAZETTEER_INPUT = "gazetteer"
#: Graph metadata written by the export: the model configuration (JSON) and the character count.
CONFIG_KEY, CHARS_KEY = "spacy_aner.config", "spacy_aner.chars"
#: The char features of rows the caller kept (input) and of the rows the graph computed (output).
CACHED_INPUT, CHAR_FEATURES = "cached_char_features", "char_features"

Weights = Dict[str, List[np.ndarray]]
OPSET = 18


def char_width(config: ModelConfig) -> int:
    """Char features per word, all members together."""
    return config.members * config.char_filters * len(config.char_kernels)


def check_record(recorded: Dict[str, str], config: ModelConfig, n_chars: int, path: Path) -> None:
    """Refuse the graph at ``path`` whose metadata ``recorded`` names another configuration or
    character set than ``config`` and ``n_chars``: the graph is complete in itself, so ONNX
    Runtime would run it anyway, or fail only on the first call. The export records both."""
    try:
        graph_config, graph_chars = json.loads(recorded[CONFIG_KEY]), int(recorded[CHARS_KEY])
        graph_config = {**asdict(ModelConfig()), **graph_config}  # fields added since have their defaults
    except (KeyError, ValueError, TypeError):
        raise ModelLoadError(f"{path}: not a graph written by spacy-aner (no recorded configuration)") from None
    want = asdict(config)
    differ = sorted(k for k in set(want) | set(graph_config) if want.get(k) != graph_config.get(k))
    if differ or graph_chars != n_chars:
        what = ", ".join(f"{k} {graph_config.get(k)!r} (config.json: {want.get(k)!r})" for k in differ)
        if graph_chars != n_chars:
            what = ", ".join(filter(None, [what, f"{graph_chars} characters ({VOCAB_FILE}: {n_chars})"]))
        raise ModelLoadError(f"{path}: made for another model than {CONFIG_FILE} and {VOCAB_FILE} describe: {what}")


def member_prefix(member: int) -> str:
    """Layer-name prefix of ensemble member ``member``; member 0 keeps the single-model names."""
    return "" if member == 0 else f"m{member}_"


def bilstm_layer_name(layer: int, prefix: str = "") -> str:
    return prefix + ("bilstm" if layer == 0 else f"bilstm_{layer + 1}")


class GraphBuilder:
    """Nodes and float16 initializers of one graph, named after the Keras layers."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.initializers: list = []

    def weight(self, name: str, array: np.ndarray) -> str:
        """A stored weight, cast back to float32 in the graph."""
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array, np.float16), name))
        return self.node("Cast", [name], to=1)

    def const(self, name: str, array) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: List[str], output: Optional[str] = None, **attrs) -> str:
        output = output or f"{inputs[0]}:{op}:{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attrs))
        return output


def gate_order(units: int) -> np.ndarray:
    """Keras's gates (input, forget, cell, output) in ONNX's order (input, output, forget, cell)."""
    return np.concatenate([np.arange(k * units, (k + 1) * units) for k in (0, 3, 1, 2)]).astype(np.int64)


def lstm_arrays(arrays: List[np.ndarray], units: int) -> Dict[str, np.ndarray]:
    """ONNX LSTM's ``W`` (2, 4u, in), ``R`` (2, 4u, u) and ``B`` (2, 8u) from a Keras
    Bidirectional layer's six arrays (kernel, recurrent kernel, bias per direction)."""
    order = gate_order(units)
    return {"W": np.stack([arrays[3 * d][:, order].T for d in (0, 1)]),
            "R": np.stack([arrays[3 * d + 1][:, order].T for d in (0, 1)]),
            "B": np.stack([np.concatenate([arrays[3 * d + 2][order], np.zeros(4 * units, np.float32)])
                           for d in (0, 1)])}


def keras_lstm_arrays(w: np.ndarray, r: np.ndarray, b: np.ndarray) -> List[np.ndarray]:
    """The inverse of :func:`lstm_arrays`."""
    units = r.shape[2]
    back = np.argsort(gate_order(units))
    return [a for d in (0, 1) for a in (w[d].T[:, back], r[d].T[:, back], b[d, :4 * units][back])]


def member_scores(g: GraphBuilder, weights: Weights, config: ModelConfig, prefix: str, member: int) -> Tuple[str, str]:
    """One member's unary scores (T, B, n_tags) and the char features it computed (rows, width):
    char CNNs over ``char_rows``, the first rows, whose features the runtime has not kept;
    the other rows' features are read from ``cached_char_features``; then BiLSTMs per token, dense."""
    chars = g.node("Gather", [g.weight(prefix + "char_embedding/0", weights[prefix + "char_embedding"][0]), "char_rows"])
    chars = g.node("Transpose", [chars], perm=[0, 2, 1])  # rows, dim, positions
    pooled = []
    for k in config.char_kernels:
        name = f"{prefix}char_cnn_{k}"
        kernel, bias = weights[name]
        w = g.weight(name + "/kernel", kernel[0].transpose(2, 1, 0))  # (1, k, dim, filters) -> (filters, dim, k)
        left = (k - 1) // 2  # Keras's "same" puts the odd zero on the right
        conv = g.node("Relu", [g.node("Conv", [chars, w, g.weight(name + "/1", bias)], pads=[left, k - 1 - left],
                                      kernel_shape=[k])])
        pooled.append(g.node("ReduceMax", [conv, g.const(name + "/pool_axis", np.array([2]))], keepdims=0))
    computed = g.node("Concat", pooled, axis=1)
    width = char_width(config) // config.members  # one member's share of the cached features
    cached = g.node("Slice", [CACHED_INPUT, g.const(prefix + "cached/start", np.array([member * width])),
                              g.const(prefix + "cached/end", np.array([(member + 1) * width])),
                              g.const(prefix + "cached/axis", np.array([1]))])
    features = g.node("Concat", [computed, cached], axis=0)
    x = g.node("Gather", [g.node("Concat", ["row_vectors", features], axis=1), "index"])  # B, T, D
    if config.gazetteer_labels:
        x = g.node("Concat", [x, GAZETTEER_INPUT], axis=2)
    x = g.node("Transpose", [x], perm=[1, 0, 2])
    for layer in range(config.lstm_layers):
        name = bilstm_layer_name(layer, prefix)
        w, r, b = (g.weight(f"{name}/{key}", a) for key, a in lstm_arrays(weights[name], config.lstm_units).items())
        y = g.node("LSTM", [x, w, r, b, "lengths"], direction="bidirectional", hidden_size=config.lstm_units)
        y = g.node("Transpose", [y], perm=[0, 2, 1, 3])  # T, B, 2, units
        x = g.node("Reshape", [y, g.const(name + "/shape", np.array([0, 0, 2 * config.lstm_units]))])
    kernel, bias = weights[prefix + "scores"]
    scores = g.node("Add", [g.node("MatMul", [x, g.weight(prefix + "scores/0", kernel)]),
                            g.weight(prefix + "scores/1", bias)])
    return scores, computed


def mean(g: GraphBuilder, values: List[str], output: str) -> str:
    total = values[0] if len(values) == 1 else g.node("Sum", values)
    return g.node("Mul", [total, g.const(f"{output}/share", np.array(1.0 / len(values), np.float32))], output)


def build_graph(weights: Weights, config: ModelConfig):
    """The ONNX graph of the trained layers ``weights`` (all but the word table)."""
    from onnx import TensorProto, checker, helper

    g = GraphBuilder()
    prefixes = [member_prefix(m) for m in range(config.members)]
    members = [member_scores(g, weights, config, p, m) for m, p in enumerate(prefixes)]
    scores = mean(g, [s for s, _ in members], "member_mean")
    g.node("Concat", [c for _, c in members], CHAR_FEATURES, axis=1)
    g.node("Transpose", [scores], "scores", perm=[1, 0, 2])
    for i, name in enumerate(("transitions", "start", "end")):
        mean(g, [g.weight(f"{p}tag_scores/{i}", weights[p + "tag_scores"][i]) for p in prefixes], name)
    n_tags, value = len(config.tags), helper.make_tensor_value_info
    inputs = [value("row_vectors", TensorProto.FLOAT, ["rows", config.word_dim]),
              value("char_rows", TensorProto.INT64, ["computed_rows", config.max_word_chars]),
              value(CACHED_INPUT, TensorProto.FLOAT, ["cached_rows", char_width(config)]),
              value("index", TensorProto.INT64, ["batch", "time"]), value("lengths", TensorProto.INT32, ["batch"])]
    if config.gazetteer_labels:
        inputs.append(value(GAZETTEER_INPUT, TensorProto.FLOAT, ["batch", "time", 2 * len(config.gazetteer_labels)]))
    graph = helper.make_graph(
        g.nodes, "aner_lstm", inputs,
        [value("scores", TensorProto.FLOAT, ["batch", "time", n_tags]),
         value("transitions", TensorProto.FLOAT, [n_tags, n_tags]),
         value("start", TensorProto.FLOAT, [n_tags]), value("end", TensorProto.FLOAT, [n_tags]),
         value(CHAR_FEATURES, TensorProto.FLOAT, ["computed_rows", char_width(config)])],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="spacy-aner")
    n_chars = weights["char_embedding"][0].shape[0]
    helper.set_model_props(model, {CONFIG_KEY: json.dumps(asdict(config), sort_keys=True), CHARS_KEY: str(n_chars)})
    model.ir_version = 8  # read by every ONNX Runtime release that has opset 18
    checker.check_model(model)
    return model


def graph_weights(model) -> Weights:
    """The trained layers' arrays stored in an ONNX ``ModelProto``, as float32 in Keras's layout."""
    from onnx import TensorProto, numpy_helper

    stored: Dict[str, Dict[str, np.ndarray]] = {}
    for init in model.graph.initializer:
        layer, _, key = init.name.rpartition("/")
        if init.data_type == TensorProto.FLOAT16:
            stored.setdefault(layer, {})[key] = numpy_helper.to_array(init).astype(np.float32)
    weights: Weights = {}
    for layer, arrays in stored.items():
        if "W" in arrays:  # a bidirectional LSTM
            weights[layer] = keras_lstm_arrays(arrays["W"], arrays["R"], arrays["B"])
        elif "kernel" in arrays:  # a char CNN
            weights[layer] = [arrays["kernel"].transpose(2, 1, 0)[None], arrays["1"]]
        else:
            weights[layer] = [arrays[k] for k in sorted(arrays, key=int)]
    return weights


def parse_graph(graph: bytes, path: Path):
    """The ONNX ``ModelProto`` of ``graph``, read from ``path`` (named by the error if it is not one)."""
    import onnx

    try:
        return onnx.load_from_string(graph)
    except Exception as err:  # protobuf raises its own types for bad bytes
        raise ModelLoadError(f"{path}: not a readable ONNX graph ({type(err).__name__})") from None


def read_weights(path: Path | str) -> Weights:
    """:func:`graph_weights` of a model directory's graph."""
    path = Path(path) / GRAPH_FILE
    try:
        graph = path.read_bytes()
    except OSError as err:
        raise ModelLoadError(f"{path}: cannot be read ({err.strerror})") from None
    return graph_weights(parse_graph(graph, path))


def first_members(graph: bytes, config: ModelConfig, n_chars: int, members: int, path: Path) -> bytes:
    """The graph of the first ``members`` members of the ensemble ``config`` describes, averaged
    alone: the same arithmetic per member, a share of the work. ``graph``, the ensemble's, read
    from ``path``, is checked against ``config`` and ``n_chars`` first (:func:`check_record`)."""
    if not 1 <= members <= config.members:
        networks = f"{config.members} network" + ("s" if config.members > 1 else "")
        raise ValueError(f"members={members}, but the model in {path.parent} has {networks}")
    if members == config.members:
        return graph
    model = parse_graph(graph, path)
    check_record({p.key: p.value for p in model.metadata_props}, config, n_chars, path)
    try:
        return build_graph(graph_weights(model), replace(config, members=members)).SerializeToString()
    except Exception as err:  # weights not named as the export names them; onnx's checker refusing the result
        raise ModelLoadError(f"{path}: cannot take its first {members} members, the graph's weights are not "
                             f"those spacy-aner writes ({type(err).__name__}: {err})") from None
