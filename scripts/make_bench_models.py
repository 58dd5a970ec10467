#!/usr/bin/python3
# Exports torchvision ResNet-18/50, MobileNetV2 and VGG-16 (random weights, fixed seed) to ONNX for benchmarks.
# Usage: /usr/bin/python3 scripts/make_bench_models.py [--out .bench/models] [--models resnet18,...]
#        [--opencv-variants models/mobilenet.onnx ...]
import argparse
import os

import onnx
import onnx.numpy_helper
import torch
import torchvision


def inline_shared_initializers(path):
    """Replaces each Identity that reads an initializer with a copy of that initializer.

    With random weights every BatchNorm of one width has the same mean/var/scale/bias, so the exporter
    deduplicates them into one initializer plus Identity nodes; OpenCV 4.6's ONNX importer rejects an
    Identity without a runtime input. The copy is the same model, readable by every peer."""
    model = onnx.load(path)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    keep = []
    changed = False
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
            inits[copy.name] = copy
            changed = True
        else:
            keep.append(node)
    if changed:
        del graph.node[:]
        graph.node.extend(keep)
        onnx.checker.check_model(model)
        onnx.save(model, path)


def write_opencv_variant(path, out_dir):
    """Writes NAME.opencv.onnx when the model has opset-11 Clip nodes (min/max as inputs).

    OpenCV 4.6's importer reads only the older form (min/max as attributes). The variant moves the
    constant bounds into attributes: the same network, for the OpenCV peer only."""
    model = onnx.load(path)
    graph = model.graph
    consts = {}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = float(onnx.numpy_helper.to_array(node.attribute[0].t))
    for i in graph.initializer:
        if len(i.dims) == 0:
            consts[i.name] = float(onnx.numpy_helper.to_array(i))
    changed = False
    for node in graph.node:
        if node.op_type == "Clip" and len(node.input) > 1:
            bounds = [consts[name] if name else None for name in node.input[1:]]
            del node.input[1:]
            for key, value in zip(("min", "max"), bounds):
                if value is not None:
                    node.attribute.append(onnx.helper.make_attribute(key, value))
            changed = True
    if changed:
        name = os.path.basename(path)[: -len(".onnx")] + ".opencv.onnx"
        onnx.save(model, os.path.join(out_dir, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=".bench/models")
    ap.add_argument("--models", default="resnet18,resnet50,mobilenet_v2,vgg16")
    ap.add_argument("--opencv-variants", nargs="*", default=[],
                    help="also write OpenCV-readable variants of these ONNX files into --out")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for path in args.opencv_variants:
        write_opencv_variant(path, args.out)
    torch.manual_seed(0)
    for name in args.models.split(","):
        path = os.path.join(args.out, name + ".onnx")
        if os.path.exists(path):
            inline_shared_initializers(path)
            write_opencv_variant(path, args.out)
            print("exists:", path)
            continue
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
        inline_shared_initializers(path)
        write_opencv_variant(path, args.out)
        print("wrote", path, os.path.getsize(path) // 1024, "KiB")


if __name__ == "__main__":
    main()
