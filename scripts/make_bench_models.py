#!/usr/bin/python3
# Exports torchvision ResNet-18/50, MobileNetV2 and VGG-16 (random weights, fixed seed) to ONNX for benchmarks.
# Usage: /usr/bin/python3 scripts/make_bench_models.py [--out .bench/models] [--models resnet18,...]
import argparse
import os

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=".bench/models")
    ap.add_argument("--models", default="resnet18,resnet50,mobilenet_v2,vgg16")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for name in args.models.split(","):
        path = os.path.join(args.out, name + ".onnx")
        if os.path.exists(path):
            print("exists:", path)
            continue
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
        print("wrote", path, os.path.getsize(path) // 1024, "KiB")


if __name__ == "__main__":
    main()
