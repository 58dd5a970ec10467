#!/usr/bin/python3
# PyTorch (CPU, eager, inference_mode) throughput of the architecture an ONNX file came from, random weights.
# Usage: torch_bench.py NAME BATCH ITERS THREADS CxHxW   (NAME: a torchvision model or a tools/reference_models one)
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import reference_models  # noqa: E402


def main():
    name, batch, iters, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    c, h, w = (int(v) for v in sys.argv[5].split("x"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = reference_models.build(name) if name in reference_models.MODELS else getattr(torchvision.models, name)()
    model.eval()
    x = torch.randn(batch, c, h, w)
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    print("throughput: %.2f img/s" % (batch / times[len(times) // 2]))


if __name__ == "__main__":
    main()
