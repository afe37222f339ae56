"""Legacy Caffe formats -> the current format, the way BVLC Caffe's `UpgradeNetAsNeeded` and
`UpgradeSolverAsNeeded` do it (src/caffe/util/upgrade_proto.cpp at 9b89154).

A net goes through these upgrades, in Caffe's order; each one is a (needs, apply) pair and each applied one
reports a single warning under its step name:

  "V0LayerParameter"     `layers { layer { type: "conv" } }` -> V1 `layers { type: CONVOLUTION }`, with the
                         `padding` layers folded into the conv/pool layer that reads them
  "data transformation"  scale / mean_file / crop_size / mirror inside the data_param, image_data_param or
                         window_data_param of a V1 layer -> transform_param
  "V1LayerParameter"     `layers { type: ENUM }` -> `layer { type: "String" }`
  "input fields"         net-level input / input_shape / input_dim -> a first layer "input" of type "Input"
  "BatchNorm params"     a BatchNorm layer with exactly 3 `param {}` gets lr_mult 0 and decay_mult 0

A solver has one upgrade, "solver_type": the `solver_type` enum -> the `type` string.

Where netc goes beyond Caffe it says so: a transformation field left in the data parameter of a
current-format `layer {}` entry, which Caffe neither moves nor reads, is left where it is with a warning
under "ignored transform fields" (not an upgrade step: nothing changes), and a few inputs Caffe mishandles
silently or crashes on are reported as errors instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from netc import caffe_pb2
from netc.errors import Diagnostic, UpgradeError, did_you_mean, quote_list

__all__ = [
    "UpgradeContext",
    "RecordingContext",
    "upgrade_net",
    "upgrade_solver",
    "NET_UPGRADES",
    "SOLVER_UPGRADES",
    "IGNORED_TRANSFORM_FIELDS",
    "SOLVER_TYPE_NAMES",
    "V1_TYPE_NAMES",
    "V0_TYPES",
]


class UpgradeContext(Protocol):
    def warn(self, step: str, message: str, layer: int | None = None) -> None: ...

    def error(self, message: str, layer: int | None = None, field: str | None = None) -> None: ...


@dataclass
class RecordingContext:
    """An UpgradeContext that keeps what it is told, for callers without their own diagnostics sink."""

    warnings: list[tuple[str, str, int | None]] = field(default_factory=list)
    errors: list[tuple[str, int | None, str | None]] = field(default_factory=list)

    def warn(self, step: str, message: str, layer: int | None = None) -> None:
        self.warnings.append((step, message, layer))

    def error(self, message: str, layer: int | None = None, field: str | None = None) -> None:
        self.errors.append((message, layer, field))

    @property
    def steps(self) -> list[str]:
        """The steps that reported, in order, each once."""
        return list(dict.fromkeys(step for step, _, _ in self.warnings))

    def raise_if_errors(self) -> None:
        if self.errors:
            raise UpgradeError([Diagnostic("error", message) for message, _, _ in self.errors])


@dataclass(frozen=True)
class Upgrade:
    """One upgrade: `needs(msg)` says whether it applies; `apply(...)` performs it and returns the sentence
    that the step's warning carries (None where an error stopped it from doing anything)."""

    step: str
    needs: Callable[..., bool]
    apply: Callable[..., str | None]


_V1Type = caffe_pb2.V1LayerParameter.LayerType

# V1 enum name -> current type string.  [upgrade_proto.cpp UpgradeV1LayerType]
V1_TYPE_NAMES: dict[str, str] = {
    "NONE": "",
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "DATA": "Data",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# V0 type string -> V1 enum name.  "padding" is not a type: those layers are folded away first.
# [upgrade_proto.cpp UpgradeV0LayerType]
V0_TYPES: dict[str, str] = {
    "accuracy": "ACCURACY",
    "bnll": "BNLL",
    "concat": "CONCAT",
    "conv": "CONVOLUTION",
    "data": "DATA",
    "dropout": "DROPOUT",
    "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN",
    "hdf5_data": "HDF5_DATA",
    "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL",
    "images": "IMAGE_DATA",
    "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS",
    "pool": "POOLING",
    "relu": "RELU",
    "sigmoid": "SIGMOID",
    "softmax": "SOFTMAX",
    "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT",
    "tanh": "TANH",
    "window_data": "WINDOW_DATA",
}

_PADDING = "padding"

# A V0 field that belongs to particular layer types: V0 type -> (V1 *_param, its field).  A field given on a
# type not listed is an error, as in Caffe ("Unknown parameter kernelsize for layer type relu").
_data = ("data", "hdf5_data", "images", "window_data")
_V0_TYPED_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "num_output": {"conv": ("convolution_param", "num_output"),
                   "innerproduct": ("inner_product_param", "num_output")},
    "biasterm": {"conv": ("convolution_param", "bias_term"),
                 "innerproduct": ("inner_product_param", "bias_term")},
    "weight_filler": {"conv": ("convolution_param", "weight_filler"),
                      "innerproduct": ("inner_product_param", "weight_filler")},
    "bias_filler": {"conv": ("convolution_param", "bias_filler"),
                    "innerproduct": ("inner_product_param", "bias_filler")},
    "pad": {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size"), "pool": ("pooling_param", "kernel_size")},
    "group": {"conv": ("convolution_param", "group")},
    "stride": {"conv": ("convolution_param", "stride"), "pool": ("pooling_param", "stride")},
    # V0 PoolMethod and PoolingParameter.PoolMethod have the same numbers (MAX 0, AVE 1, STOCHASTIC 2).
    "pool": {"pool": ("pooling_param", "pool")},
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    "local_size": {"lrn": ("lrn_param", "local_size")},
    "alpha": {"lrn": ("lrn_param", "alpha")},
    "beta": {"lrn": ("lrn_param", "beta")},
    "k": {"lrn": ("lrn_param", "k")},
    "source": {"data": ("data_param", "source"), "hdf5_data": ("hdf5_data_param", "source"),
               "images": ("image_data_param", "source"), "window_data": ("window_data_param", "source"),
               "infogain_loss": ("infogain_loss_param", "source")},
    "batchsize": {"data": ("data_param", "batch_size"), "hdf5_data": ("hdf5_data_param", "batch_size"),
                  "images": ("image_data_param", "batch_size"),
                  "window_data": ("window_data_param", "batch_size")},
    "rand_skip": {"data": ("data_param", "rand_skip"), "images": ("image_data_param", "rand_skip")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "det_fg_threshold": {"window_data": ("window_data_param", "fg_threshold")},
    "det_bg_threshold": {"window_data": ("window_data_param", "bg_threshold")},
    "det_fg_fraction": {"window_data": ("window_data_param", "fg_fraction")},
    "det_context_pad": {"window_data": ("window_data_param", "context_pad")},
    "det_crop_mode": {"window_data": ("window_data_param", "crop_mode")},
    "hdf5_output_param": {"hdf5_output": ("hdf5_output_param", "")},  # "" = the whole message
}
del _data

# V0 transformation fields go straight to transform_param, whatever the layer type (Caffe does not check it).
_V0_TRANSFORM_FIELDS = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size", "mirror": "mirror"}

# V0 fields carried over as they are, and those Caffe's upgrade has no place for (dropped, with a note).
_V0_PLAIN_FIELDS = ("name", "type", "blobs", "blobs_lr", "weight_decay")
_V0_DROPPED_FIELDS = ("new_num", "new_channels")

# The old transformation fields of the three data parameters, by the layer type that reads each parameter.
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_DATA_PARAMS_V1 = {_V1Type.Value("DATA"): "data_param", _V1Type.Value("IMAGE_DATA"): "image_data_param",
                   _V1Type.Value("WINDOW_DATA"): "window_data_param"}
_DATA_PARAMS = {"Data": "data_param", "ImageData": "image_data_param", "WindowData": "window_data_param"}

# The step name of the warnings about those fields in current-format layers: not one of Caffe's upgrades
# (nothing is changed), so the steps a file reports stay Caffe's.
IGNORED_TRANSFORM_FIELDS = "ignored transform fields"

# V1LayerParameter fields the V1 step maps by hand; every other field is a `*_param` copied by name.
_V1_MAPPED_FIELDS = ("bottom", "top", "name", "include", "exclude", "type", "blobs", "param",
                     "blob_share_mode", "blobs_lr", "weight_decay", "loss_weight", "layer")

# solver_type enum name -> type string.  [upgrade_proto.cpp UpgradeSolverType]
SOLVER_TYPE_NAMES: dict[str, str] = {
    "SGD": "SGD",
    "NESTEROV": "Nesterov",
    "ADAGRAD": "AdaGrad",
    "RMSPROP": "RMSProp",
    "ADADELTA": "AdaDelta",
    "ADAM": "Adam",
}


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def _names(labels: list[str], limit: int = 4) -> str:
    """'a, b, c' or 'a, b, c, d and 5 more'."""
    shown = ", ".join(labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def _quoted(names: list[str]) -> list[str]:
    return [f'"{n}"' for n in names]


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _value(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _layer_label(name: str, index: int) -> str:
    return f'"{name}"' if name else f"#{index}"


def _set_field(msg, name: str, value) -> None:
    """msg.name = value, for any kind of field: appended when repeated, copied when a message."""
    fd = msg.DESCRIPTOR.fields_by_name[name]
    # `is_repeated` since protobuf 5.x; `label`, its older spelling, is gone in 7.x.
    repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
    if repeated:
        getattr(msg, name).append(value)
    elif fd.message_type is not None:
        getattr(msg, name).CopyFrom(value)
    else:
        setattr(msg, name, value)


# ---------------------------------------------------------------------------------------------------------
# V0 -> V1


def _needs_v0(net: caffe_pb2.NetParameter) -> bool:
    return any(l.HasField("layer") for l in net.layers)


_Kept = list[tuple[int, caffe_pb2.V1LayerParameter]]


def _fold_padding(net: caffe_pb2.NetParameter, ctx: UpgradeContext,
                  origins: list[int | None]) -> tuple[_Kept, list[str], list[str]]:
    """Drops the V0 `padding` layers: each one's `pad` goes to the conv/pool layer that reads its output,
    whose bottom is rewired to the padding layer's input.  [upgrade_proto.cpp UpgradeV0PaddingLayers]

    Returns the kept layers (copies) with their original index, the folded padding layers and the padding
    layers that nothing reads (Caffe drops those too, silently).
    """
    layers = net.layers
    last_producer: dict[str, int | None] = {name: None for name in net.input}
    kept: _Kept = []
    folded: list[str] = []
    read: set[int] = set()
    for i, conn in enumerate(layers):
        v0 = conn.layer
        is_padding = v0.type == _PADDING
        if not is_padding:
            copy = caffe_pb2.V1LayerParameter()
            copy.CopyFrom(conn)
            kept.append((origins[i], copy))
        for j, blob in enumerate(conn.bottom):
            # Caffe stops on a bottom that nothing produced so far; netc leaves that to the graph stage,
            # which reports it with the blobs that do exist.
            src = last_producer.get(blob)
            if src is None or layers[src].layer.type != _PADDING:
                continue
            pad_layer = layers[src]
            read.add(src)
            who = f'layer {_layer_label(v0.name, i)}'
            pad_name = _layer_label(pad_layer.layer.name, src)
            problems = []
            if v0.type not in ("conv", "pool"):
                problems.append(f'it is of type "{v0.type}", and only a "conv" or "pool" layer can read a '
                                f'"padding" layer')
            if len(conn.bottom) != 1:
                problems.append(f"it has {len(conn.bottom)} bottoms, not 1")
            if len(pad_layer.bottom) != 1:
                problems.append(f"the padding layer has {len(pad_layer.bottom)} bottoms, not 1")
            if len(pad_layer.top) != 1:
                problems.append(f"the padding layer has {len(pad_layer.top)} tops, not 1")
            if problems:
                ctx.error(f'{who} reads the output of V0 padding layer {pad_name}, which cannot be folded '
                          f'into it: ' + "; ".join(problems), layer=origins[i], field="bottom")
                continue
            target = kept[-1][1]
            target.layer.pad = pad_layer.layer.pad
            target.bottom[j] = pad_layer.bottom[0]
            folded.append(pad_name)
        for blob in conn.top:
            last_producer[blob] = i
    unread = [_layer_label(l.layer.name, i) for i, l in enumerate(layers)
              if l.layer.type == _PADDING and i not in read]
    return kept, folded, unread


def _v0_layer_to_v1(conn: caffe_pb2.V1LayerParameter, index: int | None,
                    ctx: UpgradeContext, dropped: list[str]) -> caffe_pb2.V1LayerParameter:
    """One V0 layer (a V1 `layers {}` holding a V0 `layer {}`) -> a V1 layer.
    [upgrade_proto.cpp UpgradeV0LayerParameter]"""
    out = caffe_pb2.V1LayerParameter()
    out.bottom.extend(conn.bottom)
    out.top.extend(conn.top)
    v0 = conn.layer
    label = _layer_label(v0.name or conn.name, index if index is not None else -1)

    # The outer `layers {}` of a V0 file holds only layer/bottom/top; Caffe's upgrade drops anything else,
    # which would silently change the net (an include rule, a V1 parameter), so netc refuses it.
    extra = [fd.name for fd, _ in conn.ListFields() if fd.name not in ("layer", "bottom", "top")]
    if not conn.HasField("layer"):
        ctx.error(f"layer {label} is in the V1 format, but other layers of this file are V0 layers "
                  f"(`layers {{ layer {{ ... }} }}`): a net cannot mix the two formats",
                  layer=index, field="type" if conn.HasField("type") else None)
        return out
    if extra:
        ctx.error(f'V0 layer {label}: field {quote_list(extra)} of the outer "layers" block would be dropped '
                  f'by the V0 upgrade; a V0 layer keeps its parameters in the inner "layer" block',
                  layer=index, field=extra[0])

    if v0.HasField("name"):
        out.name = v0.name
    kind = v0.type
    if not v0.HasField("type"):
        ctx.error(f"V0 layer {label} has no type", layer=index, field="type")
    elif kind not in V0_TYPES:
        hint = did_you_mean(kind, V0_TYPES)
        ctx.error(f'V0 layer {label} has unknown type "{kind}"'
                  + (f'; did you mean "{hint[0]}"?' if hint else ""), layer=index, field="type")
    else:
        out.type = _V1Type.Value(V0_TYPES[kind])
    known_type = kind in V0_TYPES
    out.blobs.extend(v0.blobs)
    out.blobs_lr.extend(v0.blobs_lr)
    out.weight_decay.extend(v0.weight_decay)

    for fd, value in v0.ListFields():
        name = fd.name
        if name in _V0_PLAIN_FIELDS:
            continue
        if name in _V0_TRANSFORM_FIELDS:
            _set_field(out.transform_param, _V0_TRANSFORM_FIELDS[name], value)
            continue
        if name in _V0_DROPPED_FIELDS:
            dropped.append(f"{name} of layer {label}")
            continue
        targets = _V0_TYPED_FIELDS[name]
        if kind in targets:
            param, sub = targets[kind]
            if sub:
                _set_field(getattr(out, param), sub, value)
            else:
                getattr(out, param).CopyFrom(value)
        elif known_type:
            ctx.error(f'V0 layer {label}: field "{name}" has no meaning for a "{kind}" layer (only '
                      f"{quote_list(sorted(targets))} layers have it); Caffe's upgrade rejects it too",
                      layer=index, field=name)
    return out


def _upgrade_v0(net: caffe_pb2.NetParameter, origins: list[int | None], ctx: UpgradeContext) -> str:
    kept, folded, unread = _fold_padding(net, ctx, origins)
    dropped: list[str] = []
    new_layers = [_v0_layer_to_v1(conn, index, ctx, dropped) for index, conn in kept]

    # Caffe rebuilds the net from name, the layers, input, input_dim and force_backward only.
    lost = [fd.name for fd, _ in net.ListFields()
            if fd.name not in ("name", "layers", "input", "input_dim", "force_backward", "layer")]
    for name in lost:
        net.ClearField(name)
    del net.layers[:]
    net.layers.extend(new_layers)
    origins[:] = [index for index, _ in kept]

    folded = list(dict.fromkeys(folded))
    message = f"converted {_plural(len(kept), 'V0 layer')} to the V1 format"
    if folded:
        message += f', folding {_plural(len(folded), "padding layer")} ({_names(folded)}) into the pad of ' \
                   f"the convolution or pooling layer that reads it"
    if unread:
        message += f"; removed {_plural(len(unread), 'padding layer')} that nothing reads ({_names(unread)})"
    if dropped:
        message += f"; dropped {_names(dropped)}, which Caffe's upgrade has no place for"
    if lost:
        message += f"; dropped the net-level {quote_list(lost)}, which Caffe's V0 upgrade does not carry over"
    return message


# ---------------------------------------------------------------------------------------------------------
# Data transformation fields -> transform_param


def _legacy_transform_layers(layers, params_by_type) -> list[int]:
    """Indices of the layers whose data parameter (the one their type reads) still holds transformation
    fields."""
    return [i for i, layer in enumerate(layers)
            if layer.type in params_by_type
            and any(getattr(layer, params_by_type[layer.type]).HasField(f) for f in _TRANSFORM_FIELDS)]


def _needs_data_transform(net: caffe_pb2.NetParameter) -> bool:
    """[upgrade_proto.cpp NetNeedsDataUpgrade]  V1 `layers {}` only, as in Caffe."""
    return bool(_legacy_transform_layers(net.layers, _DATA_PARAMS_V1))


def _upgrade_data_transform(net: caffe_pb2.NetParameter, origins: list[int | None], ctx: UpgradeContext) -> str:
    """[upgrade_proto.cpp UpgradeNetDataTransformation]  Every DATA / IMAGE_DATA / WINDOW_DATA layer ends up
    with its data parameter and a transform_param, even empty ones, and a legacy value overwrites one already
    in transform_param."""
    step = "data transformation"
    moved: list[str] = []
    params: list[str] = []
    fields: list[str] = []
    legacy_v1 = set(_legacy_transform_layers(net.layers, _DATA_PARAMS_V1))
    for i, layer in enumerate(net.layers):
        param_name = _DATA_PARAMS_V1.get(layer.type)
        if not param_name:
            continue
        param, transform = getattr(layer, param_name), layer.transform_param
        param.SetInParent()
        transform.SetInParent()
        if i not in legacy_v1:
            continue
        moved.append(_layer_label(layer.name, i))
        params.append(param_name)
        for f in _TRANSFORM_FIELDS:
            if not param.HasField(f):
                continue
            new = getattr(param, f)
            if transform.HasField(f) and getattr(transform, f) != new:
                ctx.warn(step, f"layer {_layer_label(layer.name, i)}: {param_name}.{f} {_value(new)} replaces "
                               f"transform_param.{f} {_value(getattr(transform, f))}, as in Caffe",
                         layer=origins[i])
            setattr(transform, f, new)
            param.ClearField(f)
            fields.append(f)
    return (f"moved {', '.join(dict.fromkeys(fields))} of "
            f"{_plural(len(moved), 'layer')} ({_names(moved)}) from {' / '.join(dict.fromkeys(params))} "
            f"into transform_param")


def _warn_ignored_transform_fields(net: caffe_pb2.NetParameter, ctx: UpgradeContext) -> None:
    """One warning per transformation field left in the data parameter of a current-format layer.  Caffe's
    upgrade does not look at `layer {}` entries and its data layers read only transform_param, so such a
    field changes nothing in Caffe; netc leaves it in place too, so that shapes agree with Caffe's (a
    data_param.crop_size does not crop)."""
    for i in _legacy_transform_layers(net.layer, _DATA_PARAMS):
        layer = net.layer[i]
        param_name = _DATA_PARAMS[layer.type]
        param, transform = getattr(layer, param_name), layer.transform_param
        for f in _TRANSFORM_FIELDS:
            if not param.HasField(f):
                continue
            if transform.HasField(f):
                read = f"only transform_param is read, which gives {f} {_value(getattr(transform, f))}"
                fix = "remove it"
            else:
                read, fix = "only transform_param is read", "move it into transform_param"
            ctx.warn(IGNORED_TRANSFORM_FIELDS,
                     f"layer {_layer_label(layer.name, i)}: {param_name}.{f} is ignored by Caffe ({read}); {fix}",
                     layer=i)


# ---------------------------------------------------------------------------------------------------------
# V1 -> current


def _needs_v1(net: caffe_pb2.NetParameter) -> bool:
    return len(net.layers) > 0


def _v1_layer_to_current(v1: caffe_pb2.V1LayerParameter) -> caffe_pb2.LayerParameter:
    """[upgrade_proto.cpp UpgradeV1LayerParameter]"""
    out = caffe_pb2.LayerParameter()
    out.bottom.extend(v1.bottom)
    out.top.extend(v1.top)
    if v1.HasField("name"):
        out.name = v1.name
    out.include.extend(v1.include)
    out.exclude.extend(v1.exclude)
    if v1.HasField("type"):
        out.type = V1_TYPE_NAMES[_V1Type.Name(v1.type)]
    out.blobs.extend(v1.blobs)

    # One ParamSpec per position given by any of the four per-blob lists, each list filling its own field.
    def spec(i: int) -> caffe_pb2.ParamSpec:
        while len(out.param) <= i:
            out.param.add()
        return out.param[i]

    for i, name in enumerate(v1.param):
        spec(i).name = name
    for i, mode in enumerate(v1.blob_share_mode):
        # V1 and ParamSpec DimCheckMode have the same names and numbers (STRICT 0, PERMISSIVE 1).
        spec(i).share_mode = caffe_pb2.ParamSpec.DimCheckMode.Value(
            caffe_pb2.V1LayerParameter.DimCheckMode.Name(mode))
    for i, lr in enumerate(v1.blobs_lr):
        spec(i).lr_mult = lr
    for i, decay in enumerate(v1.weight_decay):
        spec(i).decay_mult = decay
    out.loss_weight.extend(v1.loss_weight)

    # Every other V1 field is a `*_param` message that LayerParameter has under the same name.
    for fd, value in v1.ListFields():
        if fd.name not in _V1_MAPPED_FIELDS:
            getattr(out, fd.name).CopyFrom(value)
    return out


def _upgrade_v1(net: caffe_pb2.NetParameter, origins: list[int | None], ctx: UpgradeContext) -> str:
    new_layers = [_v1_layer_to_current(v1) for v1 in net.layers]
    del net.layers[:]
    net.layer.extend(new_layers)
    return f'converted {len(new_layers)} V1 "layers" to the current "layer" format'


# ---------------------------------------------------------------------------------------------------------
# Net-level input fields -> Input layer


def _needs_input(net: caffe_pb2.NetParameter) -> bool:
    # Caffe looks at `input` only and leaves a stray input_shape/input_dim in place (unused); netc clears it.
    return bool(net.input) or bool(net.input_shape) or bool(net.input_dim)


def _upgrade_input(net: caffe_pb2.NetParameter, origins: list[int | None], ctx: UpgradeContext) -> str | None:
    """[upgrade_proto.cpp UpgradeNetInput]  The layer is named "input", whatever the blobs are called."""
    inputs = list(net.input)
    shapes: list[list[int]] | None = None
    note = ""
    bad = False
    if net.input_shape:
        if len(net.input_shape) != len(inputs):
            bad = True
            ctx.error(f"{_plural(len(net.input_shape), 'input_shape')} given for "
                      f"{_plural(len(inputs), 'input')} ({_names(_quoted(inputs))}): give one input_shape "
                      f"per input", field="input_shape")
        else:
            shapes = [list(s.dim) for s in net.input_shape]
        if net.input_dim:
            note = "; input_dim is ignored because input_shape is given, as in Caffe"
    elif net.input_dim:
        if len(net.input_dim) != 4 * len(inputs):
            bad = True
            ctx.error(f"{_plural(len(net.input_dim), 'input_dim')} given for "
                      f"{_plural(len(inputs), 'input')} ({_names(_quoted(inputs))}): input_dim gives 4 "
                      f"dimensions (N, C, H, W) per input, so {4 * len(inputs)} are needed", field="input_dim")
        else:
            dims = list(net.input_dim)
            shapes = [dims[4 * i:4 * i + 4] for i in range(len(inputs))]

    for name in ("input", "input_shape", "input_dim"):
        net.ClearField(name)
    if bad:
        return None
    if not inputs:
        return "dropped input_shape / input_dim, which name no input blob (Caffe ignores them)"
    if shapes is None:
        return (f"dropped the net-level input {_names(_quoted(inputs))}: it gives no shape (as in old "
                f"caffemodels), so no Input layer is made")
    layer = caffe_pb2.LayerParameter(name="input", type="Input", top=inputs)
    for dims in shapes:
        layer.input_param.shape.add().dim.extend(dims)
    net.layer.insert(0, layer)
    origins.insert(0, None)
    described = ", ".join(f'"{n}" {"x".join(map(str, d))}' for n, d in zip(inputs, shapes))
    return (f'replaced the net-level input fields by a first layer "input" of type "Input" '
            f"({described}){note}")


# ---------------------------------------------------------------------------------------------------------
# BatchNorm with 3 param {}


def _needs_batchnorm(net: caffe_pb2.NetParameter) -> bool:
    return any(l.type == "BatchNorm" and len(l.param) == 3 for l in net.layer)


def _upgrade_batchnorm(net: caffe_pb2.NetParameter, origins: list[int | None], ctx: UpgradeContext) -> str:
    """[upgrade_proto.cpp UpgradeNetBatchNorm]  BatchNorm's 3 blobs (mean, variance, moving-average factor)
    are statistics, never learned; old nets declared 3 `param {}` to pin them at lr_mult 0."""
    fixed = []
    for i, layer in enumerate(net.layer):
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0
            fixed.append(_layer_label(layer.name, i))
    return (f"set lr_mult and decay_mult to 0 in the 3 param {{}} of {_plural(len(fixed), 'BatchNorm layer')} "
            f"({_names(fixed)}): their blobs are statistics, not learned")


NET_UPGRADES: tuple[Upgrade, ...] = (
    Upgrade("V0LayerParameter", _needs_v0, _upgrade_v0),
    Upgrade("data transformation", _needs_data_transform, _upgrade_data_transform),
    Upgrade("V1LayerParameter", _needs_v1, _upgrade_v1),
    Upgrade("input fields", _needs_input, _upgrade_input),
    Upgrade("BatchNorm params", _needs_batchnorm, _upgrade_batchnorm),
)


def upgrade_net(net: caffe_pb2.NetParameter, ctx: UpgradeContext) -> list[int | None]:
    """Upgrade `net` in place. Returns, for each layer of the upgraded net.layer, the index of the layer
    it came from in the ORIGINAL file's layer list (net.layers for V0/V1 files, net.layer for current
    files), or None for a layer the upgrade created (the Input layer)."""
    if net.layer and net.layers:
        ctx.error('both "layer" and "layers" are given: a net is either in the current format or in the V1 '
                  'format', field="layers")
        return list(range(len(net.layer)))
    origins: list[int | None] = list(range(len(net.layers) or len(net.layer)))
    _warn_ignored_transform_fields(net, ctx)
    for upgrade in NET_UPGRADES:
        if upgrade.needs(net):
            message = upgrade.apply(net, origins, ctx)
            if message is not None:
                ctx.warn(upgrade.step, message)
    return origins


# ---------------------------------------------------------------------------------------------------------
# Solvers


def _needs_solver_type(solver: caffe_pb2.SolverParameter) -> bool:
    return solver.HasField("solver_type")


def _upgrade_solver_type(solver: caffe_pb2.SolverParameter, ctx: UpgradeContext) -> str | None:
    """[upgrade_proto.cpp UpgradeSolverType]"""
    old = caffe_pb2.SolverParameter.SolverType.Name(solver.solver_type)
    if solver.HasField("type"):
        ctx.error(f'both "solver_type" ({old}) and "type" ("{solver.type}") are given: "solver_type" is the '
                  f'deprecated spelling of "type"; keep only "type"', field="solver_type")
        return None
    solver.type = SOLVER_TYPE_NAMES[old]
    solver.ClearField("solver_type")
    return f'replaced the deprecated solver_type: {old} by type: "{solver.type}"'


SOLVER_UPGRADES: tuple[Upgrade, ...] = (
    Upgrade("solver_type", _needs_solver_type, _upgrade_solver_type),
)


def upgrade_solver(solver: caffe_pb2.SolverParameter, ctx: UpgradeContext) -> None:
    """Upgrade `solver` in place.  An inline net_param / train_net_param / test_net_param is left as it
    is: Caffe's upgrade_solver_proto_text does not touch it, and its Solver does not upgrade it either."""
    for upgrade in SOLVER_UPGRADES:
        if upgrade.needs(solver):
            message = upgrade.apply(solver, ctx)
            if message is not None:
                ctx.warn(upgrade.step, message)


# --------------------------------------------------------------------------------------------------------
# Fork-only fields, met while binding (they are not in caffe.proto, so they never reach a message).

def _ceil_mode(pooling: caffe_pb2.PoolingParameter, value) -> str:
    """`pooling_param { ceil_mode: false }` (Caffe forks such as SSD's) -> `round_mode: FLOOR`.  The binder
    has already refused a second ceil_mode and a round_mode given beside it, in either order."""
    from netc.bind import _bool  # the binder's own bool conversion (raises its _Bad)

    ceil = _bool(value, None)
    pooling.round_mode = caffe_pb2.PoolingParameter.CEIL if ceil else caffe_pb2.PoolingParameter.FLOOR
    mode = "CEIL" if ceil else "FLOOR"
    return (f"upgrade (ceil_mode): the fork field ceil_mode: {'true' if ceil else 'false'} is read as round_mode: "
            f"{mode}; BVLC Caffe rejects ceil_mode (netc --strict does too)")


def register_fork_fields(register: Callable) -> None:
    register("caffe.PoolingParameter", "ceil_mode", replaces="round_mode")(_ceil_mode)
