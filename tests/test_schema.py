"""schema/caffe.proto against the field tables of shared/reference/caffe-semantics.md section 1.

The expected tables below are transcribed from that document (sections 1.1 to 1.3), not from caffe.proto,
so that a typo in the schema (a field number, a default, a packed flag) shows up as a disagreement between
two independent readings.  Notation follows the document: a field is optional unless marked repeated or
required; `default` is present only where the document gives one in brackets.
"""
from __future__ import annotations

import difflib
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from google.protobuf import descriptor_pb2, text_format
from google.protobuf.descriptor import FieldDescriptor

from netc import caffe_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "schema" / "caffe.proto"

NO_DEFAULT = object()


class Field(NamedTuple):
    name: str
    number: int
    label: str  # "optional", "repeated" or "required"
    type: str | None  # scalar type, or message/enum name relative to package caffe; None: the doc omits it
    default: Any = NO_DEFAULT  # enum defaults are value names
    packed: bool = False


def opt(name: str, number: int, type_: str | None, default: Any = NO_DEFAULT) -> Field:
    return Field(name, number, "optional", type_, default)


def rep(name: str, number: int, type_: str, packed: bool = False) -> Field:
    return Field(name, number, "repeated", type_, packed=packed)


def req(name: str, number: int, type_: str) -> Field:
    return Field(name, number, "required", type_)


# Every message of sections 1.1-1.3, in the document's order.  Enum-typed fields name the enum by where
# the document lists it ("Enums:" after a message means nested in that message); Phase is shared by
# NetState, NetStateRule and LayerParameter, so it is the one top-level enum.
MESSAGES: dict[str, list[Field]] = {
    "BlobShape": [
        rep("dim", 1, "int64", packed=True),
    ],
    "BlobProto": [
        opt("shape", 7, "BlobShape"),
        rep("data", 5, "float", packed=True),
        rep("diff", 6, "float", packed=True),
        rep("double_data", 8, "double", packed=True),
        rep("double_diff", 9, "double", packed=True),
        opt("num", 1, "int32", 0),
        opt("channels", 2, "int32", 0),
        opt("height", 3, "int32", 0),
        opt("width", 4, "int32", 0),
    ],
    "Datum": [
        # The document gives no type for these three: only name, number and label are checked.
        opt("channels", 1, None),
        opt("height", 2, None),
        opt("width", 3, None),
        opt("data", 4, "bytes"),
        opt("label", 5, "int32"),
        rep("float_data", 6, "float"),
        opt("encoded", 7, "bool", False),
    ],
    "FillerParameter": [
        opt("type", 1, "string", "constant"),
        opt("value", 2, "float", 0),
        opt("min", 3, "float", 0),
        opt("max", 4, "float", 1),
        opt("mean", 5, "float", 0),
        opt("std", 6, "float", 1),
        opt("sparse", 7, "int32", -1),
        opt("variance_norm", 8, "FillerParameter.VarianceNorm", "FAN_IN"),
    ],
    "NetParameter": [
        opt("name", 1, "string"),
        rep("input", 3, "string"),
        rep("input_shape", 8, "BlobShape"),
        rep("input_dim", 4, "int32"),
        opt("force_backward", 5, "bool", False),
        opt("state", 6, "NetState"),
        opt("debug_info", 7, "bool", False),
        rep("layer", 100, "LayerParameter"),
        rep("layers", 2, "V1LayerParameter"),
    ],
    "NetState": [
        opt("phase", 1, "Phase", "TEST"),
        opt("level", 2, "int32", 0),
        rep("stage", 3, "string"),
    ],
    "NetStateRule": [
        opt("phase", 1, "Phase"),
        opt("min_level", 2, "int32"),
        opt("max_level", 3, "int32"),
        rep("stage", 4, "string"),
        rep("not_stage", 5, "string"),
    ],
    "ParamSpec": [
        opt("name", 1, "string"),
        opt("share_mode", 2, "ParamSpec.DimCheckMode"),
        opt("lr_mult", 3, "float", 1.0),
        opt("decay_mult", 4, "float", 1.0),
    ],
    "LayerParameter": [
        opt("name", 1, "string"),
        opt("type", 2, "string"),
        rep("bottom", 3, "string"),
        rep("top", 4, "string"),
        opt("phase", 10, "Phase"),
        rep("loss_weight", 5, "float"),
        rep("param", 6, "ParamSpec"),
        rep("blobs", 7, "BlobProto"),
        rep("propagate_down", 11, "bool"),
        rep("include", 8, "NetStateRule"),
        rep("exclude", 9, "NetStateRule"),
        opt("transform_param", 100, "TransformationParameter"),
        opt("loss_param", 101, "LossParameter"),
        # The document names only the field here; the message type follows from the name (section 1.2).
        opt("accuracy_param", 102, "AccuracyParameter"),
        opt("argmax_param", 103, "ArgMaxParameter"),
        opt("batch_norm_param", 139, "BatchNormParameter"),
        opt("bias_param", 141, "BiasParameter"),
        opt("clip_param", 148, "ClipParameter"),
        opt("concat_param", 104, "ConcatParameter"),
        opt("contrastive_loss_param", 105, "ContrastiveLossParameter"),
        opt("convolution_param", 106, "ConvolutionParameter"),
        opt("crop_param", 144, "CropParameter"),
        opt("data_param", 107, "DataParameter"),
        opt("dropout_param", 108, "DropoutParameter"),
        opt("dummy_data_param", 109, "DummyDataParameter"),
        opt("eltwise_param", 110, "EltwiseParameter"),
        opt("elu_param", 140, "ELUParameter"),
        opt("embed_param", 137, "EmbedParameter"),
        opt("exp_param", 111, "ExpParameter"),
        opt("flatten_param", 135, "FlattenParameter"),
        opt("hdf5_data_param", 112, "HDF5DataParameter"),
        opt("hdf5_output_param", 113, "HDF5OutputParameter"),
        opt("hinge_loss_param", 114, "HingeLossParameter"),
        opt("image_data_param", 115, "ImageDataParameter"),
        opt("infogain_loss_param", 116, "InfogainLossParameter"),
        opt("inner_product_param", 117, "InnerProductParameter"),
        opt("input_param", 143, "InputParameter"),
        opt("log_param", 134, "LogParameter"),
        opt("lrn_param", 118, "LRNParameter"),
        opt("memory_data_param", 119, "MemoryDataParameter"),
        opt("mvn_param", 120, "MVNParameter"),
        opt("parameter_param", 145, "ParameterParameter"),
        opt("pooling_param", 121, "PoolingParameter"),
        opt("power_param", 122, "PowerParameter"),
        opt("prelu_param", 131, "PReLUParameter"),
        opt("python_param", 130, "PythonParameter"),
        opt("recurrent_param", 146, "RecurrentParameter"),
        opt("reduction_param", 136, "ReductionParameter"),
        opt("relu_param", 123, "ReLUParameter"),
        opt("reshape_param", 133, "ReshapeParameter"),
        opt("scale_param", 142, "ScaleParameter"),
        opt("sigmoid_param", 124, "SigmoidParameter"),
        opt("softmax_param", 125, "SoftmaxParameter"),
        opt("spp_param", 132, "SPPParameter"),
        opt("slice_param", 126, "SliceParameter"),
        opt("swish_param", 147, "SwishParameter"),
        opt("tanh_param", 127, "TanHParameter"),
        opt("threshold_param", 128, "ThresholdParameter"),
        opt("tile_param", 138, "TileParameter"),
        opt("window_data_param", 129, "WindowDataParameter"),
    ],
    "TransformationParameter": [
        opt("scale", 1, "float", 1),
        opt("mirror", 2, "bool", False),
        opt("crop_size", 3, "uint32", 0),
        opt("mean_file", 4, "string"),
        rep("mean_value", 5, "float"),
        opt("force_color", 6, "bool", False),
        opt("force_gray", 7, "bool", False),
    ],
    "LossParameter": [
        opt("ignore_label", 1, "int32"),
        opt("normalization", 3, "LossParameter.NormalizationMode", "VALID"),
        opt("normalize", 2, "bool"),  # deprecated
    ],
    "SolverParameter": [
        opt("net", 24, "string"),
        opt("net_param", 25, "NetParameter"),
        opt("train_net", 1, "string"),
        rep("test_net", 2, "string"),
        opt("train_net_param", 21, "NetParameter"),
        rep("test_net_param", 22, "NetParameter"),
        opt("train_state", 26, "NetState"),
        rep("test_state", 27, "NetState"),
        rep("test_iter", 3, "int32"),
        opt("test_interval", 4, "int32", 0),
        opt("test_compute_loss", 19, "bool", False),
        opt("test_initialization", 32, "bool", True),
        # No explicit default: base_lr, display, max_iter, lr_policy, gamma, power, momentum and
        # weight_decay take the proto2 zero values.
        opt("base_lr", 5, "float"),
        opt("display", 6, "int32"),
        opt("average_loss", 33, "int32", 1),
        opt("max_iter", 7, "int32"),
        opt("iter_size", 36, "int32", 1),
        opt("lr_policy", 8, "string"),
        opt("gamma", 9, "float"),
        opt("power", 10, "float"),
        opt("momentum", 11, "float"),
        opt("weight_decay", 12, "float"),
        opt("regularization_type", 29, "string", "L2"),
        opt("stepsize", 13, "int32"),
        rep("stepvalue", 34, "int32"),
        opt("clip_gradients", 35, "float", -1),
        opt("snapshot", 14, "int32", 0),
        opt("snapshot_prefix", 15, "string"),
        opt("snapshot_diff", 16, "bool", False),
        opt("snapshot_format", 37, "SolverParameter.SnapshotFormat", "BINARYPROTO"),
        opt("solver_mode", 17, "SolverParameter.SolverMode", "GPU"),
        opt("device_id", 18, "int32", 0),
        opt("random_seed", 20, "int64", -1),
        opt("type", 40, "string", "SGD"),
        opt("delta", 31, "float", 1e-8),
        opt("momentum2", 39, "float", 0.999),
        opt("rms_decay", 38, "float", 0.99),
        opt("debug_info", 23, "bool", False),
        opt("snapshot_after_train", 28, "bool", True),
        opt("solver_type", 30, "SolverParameter.SolverType", "SGD"),
        opt("layer_wise_reduce", 41, "bool", True),
        rep("weights", 42, "string"),
    ],
    "SolverState": [
        opt("iter", 1, "int32"),
        opt("learned_net", 2, "string"),
        rep("history", 3, "BlobProto"),
        opt("current_step", 4, "int32", 0),
    ],
    "AccuracyParameter": [
        opt("top_k", 1, "uint32", 1),
        opt("axis", 2, "int32", 1),
        opt("ignore_label", 3, "int32"),
    ],
    "ArgMaxParameter": [
        opt("out_max_val", 1, "bool", False),
        opt("top_k", 2, "uint32", 1),
        opt("axis", 3, "int32"),
    ],
    "BatchNormParameter": [
        opt("use_global_stats", 1, "bool"),
        opt("moving_average_fraction", 2, "float", 0.999),
        opt("eps", 3, "float", 1e-5),
    ],
    "BiasParameter": [
        opt("axis", 1, "int32", 1),
        opt("num_axes", 2, "int32", 1),
        opt("filler", 3, "FillerParameter"),
    ],
    "ClipParameter": [
        req("min", 1, "float"),
        req("max", 2, "float"),
    ],
    "ConcatParameter": [
        opt("axis", 2, "int32", 1),
        opt("concat_dim", 1, "uint32", 1),
    ],
    "ContrastiveLossParameter": [
        opt("margin", 1, "float", 1.0),
        opt("legacy_version", 2, "bool", False),
    ],
    "ConvolutionParameter": [
        opt("num_output", 1, "uint32"),
        opt("bias_term", 2, "bool", True),
        rep("pad", 3, "uint32"),
        rep("kernel_size", 4, "uint32"),
        rep("stride", 6, "uint32"),
        rep("dilation", 18, "uint32"),
        opt("pad_h", 9, "uint32", 0),
        opt("pad_w", 10, "uint32", 0),
        opt("kernel_h", 11, "uint32"),
        opt("kernel_w", 12, "uint32"),
        opt("stride_h", 13, "uint32"),
        opt("stride_w", 14, "uint32"),
        opt("group", 5, "uint32", 1),
        opt("weight_filler", 7, "FillerParameter"),
        opt("bias_filler", 8, "FillerParameter"),
        opt("engine", 15, "ConvolutionParameter.Engine", "DEFAULT"),
        opt("axis", 16, "int32", 1),
        opt("force_nd_im2col", 17, "bool", False),
    ],
    "CropParameter": [
        opt("axis", 1, "int32", 2),
        rep("offset", 2, "uint32"),
    ],
    "DataParameter": [
        opt("source", 1, "string"),
        opt("batch_size", 4, "uint32"),
        opt("rand_skip", 7, "uint32", 0),
        opt("backend", 8, "DataParameter.DB", "LEVELDB"),
        opt("scale", 2, "float", 1),
        opt("mean_file", 3, "string"),
        opt("crop_size", 5, "uint32", 0),
        opt("mirror", 6, "bool", False),
        opt("force_encoded_color", 9, "bool", False),
        opt("prefetch", 10, "uint32", 4),
    ],
    "DropoutParameter": [
        opt("dropout_ratio", 1, "float", 0.5),
    ],
    "DummyDataParameter": [
        rep("data_filler", 1, "FillerParameter"),
        rep("shape", 6, "BlobShape"),
        rep("num", 2, "uint32"),
        rep("channels", 3, "uint32"),
        rep("height", 4, "uint32"),
        rep("width", 5, "uint32"),
    ],
    "EltwiseParameter": [
        opt("operation", 1, "EltwiseParameter.EltwiseOp", "SUM"),
        rep("coeff", 2, "float"),
        opt("stable_prod_grad", 3, "bool", True),
    ],
    "ELUParameter": [
        opt("alpha", 1, "float", 1),
    ],
    "EmbedParameter": [
        opt("num_output", 1, "uint32"),
        opt("input_dim", 2, "uint32"),
        opt("bias_term", 3, "bool", True),
        opt("weight_filler", 4, "FillerParameter"),
        opt("bias_filler", 5, "FillerParameter"),
    ],
    "ExpParameter": [
        opt("base", 1, "float", -1.0),
        opt("scale", 2, "float", 1.0),
        opt("shift", 3, "float", 0.0),
    ],
    "FlattenParameter": [
        opt("axis", 1, "int32", 1),
        opt("end_axis", 2, "int32", -1),
    ],
    "HDF5DataParameter": [
        opt("source", 1, "string"),
        opt("batch_size", 2, "uint32"),
        opt("shuffle", 3, "bool", False),
    ],
    "HDF5OutputParameter": [
        opt("file_name", 1, "string"),
    ],
    "HingeLossParameter": [
        opt("norm", 1, "HingeLossParameter.Norm", "L1"),
    ],
    "ImageDataParameter": [
        opt("source", 1, "string"),
        opt("batch_size", 4, "uint32", 1),
        opt("rand_skip", 7, "uint32", 0),
        opt("shuffle", 8, "bool", False),
        opt("new_height", 9, "uint32", 0),
        opt("new_width", 10, "uint32", 0),
        opt("is_color", 11, "bool", True),
        opt("scale", 2, "float", 1),
        opt("mean_file", 3, "string"),
        opt("crop_size", 5, "uint32", 0),
        opt("mirror", 6, "bool", False),
        opt("root_folder", 12, "string", ""),
    ],
    "InfogainLossParameter": [
        opt("source", 1, "string"),
        opt("axis", 2, "int32", 1),
    ],
    "InnerProductParameter": [
        opt("num_output", 1, "uint32"),
        opt("bias_term", 2, "bool", True),
        opt("weight_filler", 3, "FillerParameter"),
        opt("bias_filler", 4, "FillerParameter"),
        opt("axis", 5, "int32", 1),
        opt("transpose", 6, "bool", False),
    ],
    "InputParameter": [
        rep("shape", 1, "BlobShape"),
    ],
    "LogParameter": [
        opt("base", 1, "float", -1.0),
        opt("scale", 2, "float", 1.0),
        opt("shift", 3, "float", 0.0),
    ],
    "LRNParameter": [
        opt("local_size", 1, "uint32", 5),
        opt("alpha", 2, "float", 1.0),
        opt("beta", 3, "float", 0.75),
        opt("norm_region", 4, "LRNParameter.NormRegion", "ACROSS_CHANNELS"),
        opt("k", 5, "float", 1.0),
        opt("engine", 6, "LRNParameter.Engine", "DEFAULT"),
    ],
    "MemoryDataParameter": [
        opt("batch_size", 1, "uint32"),
        opt("channels", 2, "uint32"),
        opt("height", 3, "uint32"),
        opt("width", 4, "uint32"),
    ],
    "MVNParameter": [
        opt("normalize_variance", 1, "bool", True),
        opt("across_channels", 2, "bool", False),
        opt("eps", 3, "float", 1e-9),
    ],
    "ParameterParameter": [
        opt("shape", 1, "BlobShape"),
    ],
    "PoolingParameter": [
        opt("pool", 1, "PoolingParameter.PoolMethod", "MAX"),
        opt("pad", 4, "uint32", 0),
        opt("pad_h", 9, "uint32", 0),
        opt("pad_w", 10, "uint32", 0),
        opt("kernel_size", 2, "uint32"),
        opt("kernel_h", 5, "uint32"),
        opt("kernel_w", 6, "uint32"),
        opt("stride", 3, "uint32", 1),
        opt("stride_h", 7, "uint32"),
        opt("stride_w", 8, "uint32"),
        opt("engine", 11, "PoolingParameter.Engine", "DEFAULT"),
        opt("global_pooling", 12, "bool", False),
        opt("round_mode", 13, "PoolingParameter.RoundMode", "CEIL"),
    ],
    "PowerParameter": [
        opt("power", 1, "float", 1.0),
        opt("scale", 2, "float", 1.0),
        opt("shift", 3, "float", 0.0),
    ],
    "PReLUParameter": [
        opt("filler", 1, "FillerParameter"),
        opt("channel_shared", 2, "bool", False),
    ],
    "PythonParameter": [
        opt("module", 1, "string"),
        opt("layer", 2, "string"),
        opt("param_str", 3, "string", ""),
        opt("share_in_parallel", 4, "bool", False),
    ],
    "RecurrentParameter": [
        opt("num_output", 1, "uint32", 0),
        opt("weight_filler", 2, "FillerParameter"),
        opt("bias_filler", 3, "FillerParameter"),
        opt("debug_info", 4, "bool", False),
        opt("expose_hidden", 5, "bool", False),
    ],
    "ReductionParameter": [
        opt("operation", 1, "ReductionParameter.ReductionOp", "SUM"),
        opt("axis", 2, "int32", 0),
        opt("coeff", 3, "float", 1.0),
    ],
    "ReLUParameter": [
        opt("negative_slope", 1, "float", 0),
        opt("engine", 2, "ReLUParameter.Engine", "DEFAULT"),
    ],
    "ReshapeParameter": [
        opt("shape", 1, "BlobShape"),
        opt("axis", 2, "int32", 0),
        opt("num_axes", 3, "int32", -1),
    ],
    "ScaleParameter": [
        opt("axis", 1, "int32", 1),
        opt("num_axes", 2, "int32", 1),
        opt("filler", 3, "FillerParameter"),
        opt("bias_term", 4, "bool", False),
        opt("bias_filler", 5, "FillerParameter"),
    ],
    "SigmoidParameter": [
        opt("engine", 1, "SigmoidParameter.Engine", "DEFAULT"),
    ],
    "SliceParameter": [
        opt("axis", 3, "int32", 1),
        rep("slice_point", 2, "uint32"),
        opt("slice_dim", 1, "uint32", 1),
    ],
    "SoftmaxParameter": [
        opt("engine", 1, "SoftmaxParameter.Engine", "DEFAULT"),
        opt("axis", 2, "int32", 1),
    ],
    "SwishParameter": [
        opt("beta", 1, "float", 1),
    ],
    "TanHParameter": [
        opt("engine", 1, "TanHParameter.Engine", "DEFAULT"),
    ],
    "TileParameter": [
        opt("axis", 1, "int32", 1),
        opt("tiles", 2, "int32"),  # section 2.3 calls it required: a layer check, not a proto label
    ],
    "ThresholdParameter": [
        opt("threshold", 1, "float", 0),
    ],
    "WindowDataParameter": [
        opt("source", 1, "string"),
        opt("scale", 2, "float", 1),
        opt("mean_file", 3, "string"),
        opt("batch_size", 4, "uint32"),
        opt("crop_size", 5, "uint32", 0),
        opt("mirror", 6, "bool", False),
        opt("fg_threshold", 7, "float", 0.5),
        opt("bg_threshold", 8, "float", 0.5),
        opt("fg_fraction", 9, "float", 0.25),
        opt("context_pad", 10, "uint32", 0),
        opt("crop_mode", 11, "string", "warp"),
        opt("cache_images", 12, "bool", False),
        opt("root_folder", 13, "string", ""),
    ],
    "SPPParameter": [
        opt("pyramid_height", 1, "uint32"),
        opt("pool", 2, "SPPParameter.PoolMethod", "MAX"),
        opt("engine", 6, "SPPParameter.Engine", "DEFAULT"),
    ],
    "V1LayerParameter": [
        rep("bottom", 2, "string"),
        rep("top", 3, "string"),
        opt("name", 4, "string"),
        rep("include", 32, "NetStateRule"),
        rep("exclude", 33, "NetStateRule"),
        opt("type", 5, "V1LayerParameter.LayerType"),
        rep("blobs", 6, "BlobProto"),
        rep("param", 1001, "string"),
        rep("blob_share_mode", 1002, "V1LayerParameter.DimCheckMode"),
        rep("blobs_lr", 7, "float"),
        rep("weight_decay", 8, "float"),
        rep("loss_weight", 35, "float"),
        opt("accuracy_param", 27, "AccuracyParameter"),
        opt("argmax_param", 23, "ArgMaxParameter"),
        opt("concat_param", 9, "ConcatParameter"),
        opt("contrastive_loss_param", 40, "ContrastiveLossParameter"),
        opt("convolution_param", 10, "ConvolutionParameter"),
        opt("data_param", 11, "DataParameter"),
        opt("dropout_param", 12, "DropoutParameter"),
        opt("dummy_data_param", 26, "DummyDataParameter"),
        opt("eltwise_param", 24, "EltwiseParameter"),
        opt("exp_param", 41, "ExpParameter"),
        opt("hdf5_data_param", 13, "HDF5DataParameter"),
        opt("hdf5_output_param", 14, "HDF5OutputParameter"),
        opt("hinge_loss_param", 29, "HingeLossParameter"),
        opt("image_data_param", 15, "ImageDataParameter"),
        opt("infogain_loss_param", 16, "InfogainLossParameter"),
        opt("inner_product_param", 17, "InnerProductParameter"),
        opt("lrn_param", 18, "LRNParameter"),
        opt("memory_data_param", 22, "MemoryDataParameter"),
        opt("mvn_param", 34, "MVNParameter"),
        opt("pooling_param", 19, "PoolingParameter"),
        opt("power_param", 21, "PowerParameter"),
        opt("relu_param", 30, "ReLUParameter"),
        opt("sigmoid_param", 38, "SigmoidParameter"),
        opt("softmax_param", 39, "SoftmaxParameter"),
        opt("slice_param", 31, "SliceParameter"),
        opt("tanh_param", 37, "TanHParameter"),
        opt("threshold_param", 25, "ThresholdParameter"),
        opt("window_data_param", 20, "WindowDataParameter"),
        opt("transform_param", 36, "TransformationParameter"),
        opt("loss_param", 42, "LossParameter"),
        opt("layer", 1, "V0LayerParameter"),
    ],
    "V0LayerParameter": [
        opt("name", 1, "string"),
        opt("type", 2, "string"),
        opt("num_output", 3, "uint32"),
        opt("biasterm", 4, "bool", True),
        opt("weight_filler", 5, "FillerParameter"),
        opt("bias_filler", 6, "FillerParameter"),
        opt("pad", 7, "uint32", 0),
        opt("kernelsize", 8, "uint32"),
        opt("group", 9, "uint32", 1),
        opt("stride", 10, "uint32", 1),
        opt("pool", 11, "V0LayerParameter.PoolMethod", "MAX"),
        opt("dropout_ratio", 12, "float", 0.5),
        opt("local_size", 13, "uint32", 5),
        opt("alpha", 14, "float", 1.0),
        opt("beta", 15, "float", 0.75),
        opt("k", 22, "float", 1.0),
        opt("source", 16, "string"),
        opt("scale", 17, "float", 1),
        opt("meanfile", 18, "string"),
        opt("batchsize", 19, "uint32"),
        opt("cropsize", 20, "uint32", 0),
        opt("mirror", 21, "bool", False),
        rep("blobs", 50, "BlobProto"),
        rep("blobs_lr", 51, "float"),
        rep("weight_decay", 52, "float"),
        opt("rand_skip", 53, "uint32", 0),
        opt("det_fg_threshold", 54, "float", 0.5),
        opt("det_bg_threshold", 55, "float", 0.5),
        opt("det_fg_fraction", 56, "float", 0.25),
        opt("det_context_pad", 58, "uint32", 0),
        opt("det_crop_mode", 59, "string", "warp"),
        opt("new_num", 60, "int32", 0),
        opt("new_channels", 61, "int32", 0),
        opt("new_height", 62, "int32", 0),
        opt("new_width", 63, "int32", 0),
        opt("shuffle_images", 64, "bool", False),
        opt("concat_dim", 65, "uint32", 1),
        opt("hdf5_output_param", 1001, "HDF5OutputParameter"),
    ],
}

# Messages in caffe.proto that the document does not list: only their existence is checked.
UNDOCUMENTED_MESSAGES = {"BlobProtoVector"}

ENGINE = {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2}
POOL_METHOD = {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}
DIM_CHECK_MODE = {"STRICT": 0, "PERMISSIVE": 1}

ENUMS: dict[str, dict[str, int]] = {
    "Phase": {"TRAIN": 0, "TEST": 1},
    "FillerParameter.VarianceNorm": {"FAN_IN": 0, "FAN_OUT": 1, "AVERAGE": 2},
    "ParamSpec.DimCheckMode": DIM_CHECK_MODE,
    "LossParameter.NormalizationMode": {"FULL": 0, "VALID": 1, "BATCH_SIZE": 2, "NONE": 3},
    "SolverParameter.SnapshotFormat": {"HDF5": 0, "BINARYPROTO": 1},
    "SolverParameter.SolverMode": {"CPU": 0, "GPU": 1},
    "SolverParameter.SolverType": {"SGD": 0, "NESTEROV": 1, "ADAGRAD": 2, "RMSPROP": 3, "ADADELTA": 4, "ADAM": 5},
    "ConvolutionParameter.Engine": ENGINE,
    "DataParameter.DB": {"LEVELDB": 0, "LMDB": 1},
    "EltwiseParameter.EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2},
    "HingeLossParameter.Norm": {"L1": 1, "L2": 2},
    "LRNParameter.NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1},
    "LRNParameter.Engine": ENGINE,
    "PoolingParameter.PoolMethod": POOL_METHOD,
    "PoolingParameter.Engine": ENGINE,
    "PoolingParameter.RoundMode": {"CEIL": 0, "FLOOR": 1},
    "ReductionParameter.ReductionOp": {"SUM": 1, "ASUM": 2, "SUMSQ": 3, "MEAN": 4},
    "ReLUParameter.Engine": ENGINE,
    "SigmoidParameter.Engine": ENGINE,
    "SoftmaxParameter.Engine": ENGINE,
    "TanHParameter.Engine": ENGINE,
    "SPPParameter.PoolMethod": POOL_METHOD,
    "SPPParameter.Engine": ENGINE,
    "V1LayerParameter.LayerType": {
        "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3, "CONTRASTIVE_LOSS": 37,
        "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7,
        "ELTWISE": 25, "EXP": 38, "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28,
        "IM2COL": 11, "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15,
        "MEMORY_DATA": 29, "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26,
        "RELU": 18, "SIGMOID": 19, "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20,
        "SOFTMAX_LOSS": 21, "SPLIT": 22, "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31,
    },
    "V1LayerParameter.DimCheckMode": DIM_CHECK_MODE,
    "V0LayerParameter.PoolMethod": POOL_METHOD,
}

_SCALAR_NAMES = {getattr(FieldDescriptor, n): n[len("TYPE_"):].lower() for n in dir(FieldDescriptor)
                 if n.startswith("TYPE_")}


def _label(f: FieldDescriptor) -> str:
    # protobuf 7 removed FieldDescriptor.label; 4.x has no is_repeated.  pyproject allows both.
    if hasattr(f, "is_repeated"):
        return "repeated" if f.is_repeated else "required" if f.is_required else "optional"
    return {f.LABEL_REPEATED: "repeated", f.LABEL_REQUIRED: "required", f.LABEL_OPTIONAL: "optional"}[f.label]


def _packed(f: FieldDescriptor) -> bool:
    return f.is_packed if hasattr(f, "is_packed") else f.GetOptions().packed


def _type_name(f: FieldDescriptor) -> str:
    if f.type == f.TYPE_MESSAGE:
        return f.message_type.full_name.removeprefix("caffe.")
    if f.type == f.TYPE_ENUM:
        return f.enum_type.full_name.removeprefix("caffe.")
    return _SCALAR_NAMES[f.type]


def _f32(x: float) -> bytes:
    return struct.pack("<f", x)


def _default_mismatch(f: FieldDescriptor, want: Any) -> str | None:
    if want is NO_DEFAULT:
        return None if not f.has_default_value else f"has default {f.default_value!r}, the doc gives none"
    if not f.has_default_value:
        return f"has no explicit default, the doc gives [{want!r}]"
    got = f.default_value
    if f.type == f.TYPE_ENUM:
        got = f.enum_type.values_by_number[got].name
    if f.type == f.TYPE_FLOAT:
        # Float defaults such as .999 or 1e-9 are only meaningful to float32 precision.
        same = _f32(got) == _f32(want)
    else:
        same = type(got) is type(want) and got == want
    return None if same else f"default {got!r}, doc [{want!r}]"


def _message_mismatches(name: str, expected: list[Field]) -> list[str]:
    desc = getattr(caffe_pb2, name).DESCRIPTOR
    out = []
    for e in expected:
        f = desc.fields_by_name.get(e.name)
        if f is None:
            out.append(f"{e.name}: missing (doc: {e.name}={e.number})")
            continue
        if f.number != e.number:
            out.append(f"{e.name}: number {f.number}, doc {e.number}")
        if _label(f) != e.label:
            out.append(f"{e.name}: {_label(f)}, doc {e.label}")
        if e.type is not None and _type_name(f) != e.type:
            out.append(f"{e.name}: type {_type_name(f)}, doc {e.type}")
        if (msg := _default_mismatch(f, e.default)) is not None:
            out.append(f"{e.name}: {msg}")
        if f.has_presence != (e.label != "repeated"):
            out.append(f"{e.name}: has_presence is {f.has_presence} for a {e.label} proto2 field")
        if _packed(f) != e.packed:
            out.append(f"{e.name}: packed={_packed(f)}, doc packed={e.packed}")
    for extra in sorted(set(desc.fields_by_name) - {e.name for e in expected}):
        f = desc.fields_by_name[extra]
        out.append(f"{extra}={f.number}: in caffe.proto, not in the doc")
    return out


def _fail_if_any(name: str, mismatches: list[str]) -> None:
    if mismatches:
        listing = "\n  ".join(mismatches)
        pytest.fail(f"caffe.{name} disagrees with caffe-semantics.md:\n  {listing}", pytrace=False)


def test_expected_table_is_consistent():
    # Guards the transcription itself: no number or name used twice within a message or an enum.
    for name, fields in MESSAGES.items():
        assert len({f.number for f in fields}) == len(fields), name
        assert len({f.name for f in fields}) == len(fields), name
    for name, values in ENUMS.items():
        assert len(set(values.values())) == len(values), name
    # "The next free id is 149" (section 1.1): the highest LayerParameter number in use is 148.
    assert max(f.number for f in MESSAGES["LayerParameter"]) == 148


def test_file_is_proto2_package_caffe():
    fdp = descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb)
    assert fdp.package == "caffe"
    assert fdp.syntax in ("", "proto2")  # protoc leaves syntax empty for proto2 files


def test_messages_and_enums_are_exactly_the_documented_ones():
    file = caffe_pb2.DESCRIPTOR
    assert set(file.message_types_by_name) == set(MESSAGES) | UNDOCUMENTED_MESSAGES
    assert set(file.enum_types_by_name) == {e for e in ENUMS if "." not in e}
    nested_enums, nested_messages = set(), set()
    for m in file.message_types_by_name.values():
        nested_enums |= {f"{m.name}.{e}" for e in m.enum_types_by_name}
        nested_messages |= {f"{m.name}.{n}" for n in m.nested_types_by_name}
    assert nested_enums == {e for e in ENUMS if "." in e}
    assert nested_messages == set()


@pytest.mark.parametrize("name", list(MESSAGES))
def test_message_fields_match_reference(name):
    _fail_if_any(name, _message_mismatches(name, MESSAGES[name]))


@pytest.mark.parametrize("name", list(ENUMS))
def test_enum_values_match_reference(name):
    outer, _, inner = name.rpartition(".")
    scope = getattr(caffe_pb2, outer).DESCRIPTOR if outer else caffe_pb2.DESCRIPTOR
    enum = scope.enum_types_by_name[inner]
    got, want = {v.name: v.number for v in enum.values}, ENUMS[name]
    mismatches = [f"{k}: {got.get(k, 'missing')}, doc {want.get(k, 'absent')}"
                  for k in sorted(got.keys() | want.keys()) if got.get(k) != want.get(k)]
    _fail_if_any(name, mismatches)


def test_undocumented_messages_exist():
    for name in UNDOCUMENTED_MESSAGES:
        assert caffe_pb2.DESCRIPTOR.message_types_by_name[name].name == name


def _canonical(fdp: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Drop what differs between protoc versions but not between schemas.

    json_name is derived from the field name and kept out of Python gencode; float and double defaults
    are written as text whose digits depend on the protoc version ("0.999000013" from protoc 25,
    "0.999" from newer ones), so they are compared as the values they parse to.
    """
    fdp = descriptor_pb2.FileDescriptorProto.FromString(fdp.SerializeToString())

    def walk(m: descriptor_pb2.DescriptorProto) -> None:
        for f in m.field:
            f.ClearField("json_name")
            if f.HasField("default_value") and f.type == f.TYPE_FLOAT:
                f.default_value = repr(struct.unpack("<f", _f32(float(f.default_value)))[0])
            elif f.HasField("default_value") and f.type == f.TYPE_DOUBLE:
                f.default_value = repr(float(f.default_value))
        for n in m.nested_type:
            walk(n)

    for m in fdp.message_type:
        walk(m)
    return fdp


def test_committed_bindings_match_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    out = tmp_path / "caffe.pb"
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}",
           str(PROTO)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        pytest.fail(f"protoc rejected {PROTO}:\n{run.stderr}", pytrace=False)
    (fresh,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    committed = descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb)
    old, new = str(_canonical(committed)).splitlines(), str(_canonical(fresh)).splitlines()
    if old != new:
        diff = difflib.unified_diff(old, new, "netc/caffe_pb2.py", "schema/caffe.proto", n=6, lineterm="")
        pytest.fail("netc/caffe_pb2.py is stale; regenerate it with tools/gen_proto.py under grpcio-tools 1.62.3\n"
                    + "\n".join(diff), pytrace=False)


def _blob() -> caffe_pb2.BlobProto:
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([2, 3, 1, 1])
    blob.data.extend([0.5, -1.25, 3.0, 7.75, -0.125, 2.5])
    return blob


def test_netparameter_with_packed_blob_round_trips():
    net = caffe_pb2.NetParameter(name="roundtrip")
    layer = net.layer.add(name="ip", type="InnerProduct", bottom=["data"], top=["ip"])
    layer.inner_product_param.num_output = 2
    layer.blobs.append(_blob())
    back = caffe_pb2.NetParameter.FromString(net.SerializeToString())
    assert back == net
    assert list(back.layer[0].blobs[0].data) == [0.5, -1.25, 3.0, 7.75, -0.125, 2.5]


def test_blob_data_is_written_packed_and_read_either_way():
    # Field 5 (data) as one length-delimited record: tag (5 << 3) | 2 = 0x2a, then 6 floats = 24 bytes.
    blob = caffe_pb2.BlobProto(data=[0.5, -1.25, 3.0, 7.75, -0.125, 2.5])
    packed = blob.SerializeToString()
    assert packed == b"\x2a\x18" + struct.pack("<6f", *blob.data)
    # The unpacked form (tag (5 << 3) | 5 = 0x2d before every float) must parse to the same blob.
    unpacked = b"".join(b"\x2d" + _f32(x) for x in blob.data)
    assert caffe_pb2.BlobProto.FromString(unpacked) == blob


CONV_NET = """
name: "one_conv"
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param { lr_mult: 1 }
  param { lr_mult: 2 decay_mult: 0 }
  convolution_param {
    num_output: 3
    kernel_size: 5
    stride: 2
    pad_h: 1
    pad_w: 2
    weight_filler { type: "xavier" }
    engine: CAFFE
  }
  include { phase: TRAIN }
}
"""


def test_text_format_conv_layer_parses():
    net = text_format.Parse(CONV_NET, caffe_pb2.NetParameter())
    (conv,) = net.layer
    assert (conv.name, conv.type) == ("conv1", "Convolution")
    assert (list(conv.bottom), list(conv.top)) == (["data"], ["conv1"])
    p = conv.convolution_param
    assert (p.num_output, list(p.kernel_size), list(p.stride), p.pad_h, p.pad_w) == (3, [5], [2], 1, 2)
    assert p.engine == caffe_pb2.ConvolutionParameter.CAFFE
    assert p.weight_filler.type == "xavier"
    # Unset fields read as the schema defaults.
    assert p.bias_term is True and p.group == 1 and p.bias_filler.type == "constant"
    assert [(s.lr_mult, s.decay_mult) for s in conv.param] == [(1.0, 1.0), (2.0, 0.0)]
    assert conv.include[0].phase == caffe_pb2.TRAIN
    assert not conv.HasField("phase")
