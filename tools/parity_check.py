#!/usr/bin/python3
# Independent check of aciq's simulated quantization: re-implements the seed's default policy in PyTorch
# (its own ONNX interpreter on torch.nn.functional, BN folding, statistics, gemmlowp fake quantization) and
# compares top-1 with `aciq eval` on the same model and data. Not part of the normal test run.
#
# Usage: /usr/bin/python3 tools/parity_check.py --aciq build/aciq --model models/resnet20.onnx [--model ...]
#        [--qtypes int4] [--clips no,laplace,gaus,mix] [--calib-limit 2000] [--tolerance 0.3]
import argparse
import gzip
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

FASHION = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530

# The exact optima (see docs/clipping.md); aciq's default uses these, not the seed's 2-decimal tables.
ALPHA_LAPLACE = {1: 1.86281686, 2: 2.83068299, 3: 3.89722946, 4: 5.02864014, 5: 6.20476633, 6: 7.41312621,
                 7: 8.64561998, 8: 9.89675977}
ALPHA_GAUS = {1: 1.23990527, 2: 1.71063517, 3: 2.15159274, 4: 2.55913646, 5: 2.93620061, 6: 3.28691422,
              7: 3.61511422, 8: 3.92403549}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(split, limit=None):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(FASHION, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(FASHION, f"{prefix}-labels-idx1-ubyte.gz"))
    if limit:
        x, y = x[:limit], y[:limit]
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - MEAN) / STD
    return x, torch.from_numpy(y.astype(np.int64))


class OnnxModel:
    """A minimal ONNX interpreter on torch ops for the reference models, with BN folded like the seed."""

    def __init__(self, path):
        m = onnx.load(path)
        self.inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
        self.nodes = list(m.graph.node)
        self.input = [i.name for i in m.graph.input if i.name not in self.inits][0]
        self.output = m.graph.output[0].name
        self._fold_bn()
        self.convs = [n for n in self.nodes if n.op_type == "Conv"]
        self.linears = [n for n in self.nodes if n.op_type in ("Gemm", "MatMul")]

    def _fold_bn(self):
        consumers = {}
        for n in self.nodes:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        kept = []
        producer = {n.output[0]: n for n in self.nodes}
        for n in self.nodes:
            if n.op_type == "BatchNormalization" and n.input[0] in producer and \
                    producer[n.input[0]].op_type in ("Conv", "Gemm") and len(consumers[n.input[0]]) == 1:
                p = producer[n.input[0]]
                eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
                gamma, beta, mean, var = (self.inits[i].double() for i in n.input[1:5])
                s = gamma / torch.sqrt(var + eps)
                w = self.inits[p.input[1]].double()
                if p.op_type == "Conv" or any(a.name == "transB" and a.i for a in p.attribute):
                    w = w * s.reshape(-1, *([1] * (w.dim() - 1)))
                else:
                    w = w * s.reshape(1, -1)
                b = self.inits[p.input[2]].double() if len(p.input) > 2 and p.input[2] else torch.zeros_like(s)
                wname, bname = p.input[1] + "_folded", p.name + "_bias_folded"
                self.inits[wname] = w.float()
                self.inits[bname] = (b * s + beta - mean * s).float()
                first = p.input[0]
                del p.input[:]
                p.input.extend([first, wname, bname])
                p.output[0] = n.output[0]
                continue
            kept.append(n)
        self.nodes = kept

    def run(self, x, hook=None):
        env = {self.input: x}
        get = lambda name: env[name] if name in env else self.inits[name]
        for n in self.nodes:
            a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
            ins = [get(i) if i else None for i in n.input]
            t = n.op_type
            if t == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", [1, 1]),
                             padding=(pads[0], pads[1]), dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
                assert pads[0] == pads[2] and pads[1] == pads[3]
            elif t == "Gemm":
                w = ins[1].t() if a.get("transB", 0) else ins[1]
                y = ins[0] @ w
                if len(ins) > 2 and ins[2] is not None:
                    y = y + ins[2]
            elif t == "MatMul":
                y = ins[0] @ ins[1]
            elif t == "Relu":
                y = F.relu(ins[0])
            elif t == "Clip":
                lo = ins[1].item() if len(ins) > 1 and ins[1] is not None else a.get("min", -math.inf)
                hi = ins[2].item() if len(ins) > 2 and ins[2] is not None else a.get("max", math.inf)
                y = torch.clamp(ins[0], lo, hi)
            elif t == "Add":
                y = ins[0] + ins[1]
            elif t == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif t == "MaxPool":
                pads = a.get("pads", [0, 0, 0, 0])
                y = F.max_pool2d(ins[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), (pads[0], pads[1]),
                                 ceil_mode=bool(a.get("ceil_mode", 0)))
            elif t == "AveragePool":
                pads = a.get("pads", [0, 0, 0, 0])
                y = F.avg_pool2d(ins[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), (pads[0], pads[1]),
                                 ceil_mode=bool(a.get("ceil_mode", 0)),
                                 count_include_pad=bool(a.get("count_include_pad", 0)))
            elif t == "Flatten":
                y = torch.flatten(ins[0], a.get("axis", 1))
            elif t == "Reshape":
                shape = [int(v) for v in ins[1].tolist()]
                y = ins[0].reshape([ins[0].shape[i] if s == 0 else s for i, s in enumerate(shape)])
            elif t in ("Dropout", "Identity"):
                y = ins[0]
            elif t == "Constant":
                y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
            elif t == "Shape":
                y = torch.tensor(list(ins[0].shape), dtype=torch.int64)
            elif t == "Gather":
                y = torch.index_select(ins[0], a.get("axis", 0), ins[1].reshape(-1)).reshape(ins[1].shape)
            elif t == "Unsqueeze":
                y = ins[0]
                for ax in sorted(ins[1].tolist() if len(ins) > 1 else a["axes"]):
                    y = y.unsqueeze(ax)
            elif t == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            else:
                raise SystemExit(f"parity_check: op {t} not implemented")
            if hook is not None and t in ("Conv", "Gemm", "MatMul"):
                y = hook(n, y)
            env[n.output[0]] = y
        return env[self.output]


def round_half_away(x):
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def gemmlowp_fq(x, offset, delta, bits):
    """The seed's gemmlowp.cu in float32: clamp before rounding, zero preserved when the window
    [offset, offset + delta] straddles 0 (tested in double, as the seed's Python does)."""
    straddles = offset < 0 < offset + delta
    lo, rng = np.float32(offset), np.float32(delta)
    if not rng > 0:
        return x
    qmax = np.float32(2 ** bits - 1)
    scale = np.float32(rng / qmax)
    if straddles:
        zp = np.float32(np.sign(lo / scale) * np.floor(np.abs(lo / scale) + 0.5))
        q = torch.clamp(x / float(scale) - float(zp), 0.0, float(qmax))
        return (round_half_away(q) + float(zp)) * float(scale)
    q = torch.clamp((x - float(lo)) / float(scale), 0.0, float(qmax))
    return round_half_away(q) * float(scale) + float(lo)


def collect(model, x):
    stats = {}

    def hook(n, y):
        flat = y.reshape(y.shape[0], -1).double()
        mu = flat.mean(dim=1, keepdim=True)
        s = stats.setdefault(n.name, {"min": [], "max": [], "mean": [], "std": [], "b": [], "numel": flat.shape[1]})
        s["min"].append(flat.min(dim=1).values)
        s["max"].append(flat.max(dim=1).values)
        s["mean"].append(mu[:, 0])
        s["std"].append(flat.std(dim=1))
        s["b"].append((flat - mu).abs().mean(dim=1))
        return y

    with torch.no_grad():
        for i in range(0, x.shape[0], 500):
            model.run(x[i:i + 500], hook)
    out = {}
    for name, s in stats.items():
        cat = {k: torch.cat(v) for k, v in s.items() if k != "numel"}
        out[name] = {"mean_min": cat["min"].mean().item(), "mean_max": cat["max"].mean().item(),
                     "min_min": cat["min"].min().item(), "max_max": cat["max"].max().item(),
                     "mean_mean": cat["mean"].mean().item(), "mean_std": cat["std"].mean().item(),
                     "mean_b": cat["b"].mean().item(), "numel": s["numel"]}
    return out


def mse_laplace(alpha, b, bits):
    return 2 * b * b * math.exp(-alpha / b) + alpha * alpha / (3 * 4 ** bits)


def mse_gaus(alpha, sigma, bits):
    clip = (sigma ** 2 + alpha ** 2) * (1 - math.erf(alpha / (sigma * math.sqrt(2)))) - \
        math.sqrt(2 / math.pi) * alpha * sigma * math.exp(-alpha ** 2 / (2 * sigma ** 2))
    return clip + alpha * alpha / (3 * 4 ** bits)


def point_window(s, bits, clip):
    """(offset, delta) of the seed's alpha2DeltaOffset."""
    lo, hi = s["mean_min"], s["mean_max"]
    if clip == "no":
        return lo, hi - lo
    alpha_l = ALPHA_LAPLACE[bits] * s["mean_b"]
    sigma = (hi - lo) * 0.5 * 0.35 * (1 + math.sqrt(math.pi * math.log(4))) / math.sqrt(2 * math.log(s["numel"]))
    alpha_g = ALPHA_GAUS[bits] * sigma
    if clip == "laplace":
        alpha = alpha_l
    elif clip == "gaus":
        alpha = alpha_g
    else:
        alpha = alpha_l if mse_laplace(alpha_l, s["mean_b"], bits) < mse_gaus(alpha_g, s["mean_std"], bits) else alpha_g
    r = hi - lo
    if alpha <= 0 or alpha >= r / 2:
        return lo, r
    return max(lo, s["mean_mean"] - alpha), 2 * alpha


def evaluate(model, x, y, stats=None, bits=None, clip=None):
    hook = None
    if stats is not None:
        first_conv, classifier = model.convs[0].name, model.linears[-1].name
        saved = {}
        for n in model.convs + model.linears:  # weights and biases: int8 per-tensor min/max
            for name in n.input[1:3]:
                if name and name not in saved:
                    saved[name] = model.inits[name]
                    w = model.inits[name]
                    lo, hi = w.min(), w.max()  # float32, as torch computes them
                    model.inits[name] = gemmlowp_fq(w, lo.item(), (hi - lo).item(), 8)

        def hook(n, t):
            s = stats[n.name]
            if n.op_type == "Conv":
                m = 8 if n.name == first_conv else bits
                offset, delta = point_window(s, m, clip)
                return gemmlowp_fq(t, offset, delta, m)
            if n.name == classifier:
                return gemmlowp_fq(t, s["min_min"], s["max_max"] - s["min_min"], 8)
            return gemmlowp_fq(t, s["mean_min"], s["mean_max"] - s["mean_min"], 8)
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 500):
            correct += (model.run(x[i:i + 500], hook).argmax(dim=1) == y[i:i + 500]).sum().item()
    if stats is not None:
        model.inits.update(saved)
    return 100.0 * correct / x.shape[0]


def aciq_top1(aciq, model, stats_path, qtype, clip):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [aciq, "eval", "--model", model, "--data", "fashion-mnist", "--split", "test", "-q", "--json", out.name]
        if qtype != "fp32":
            cmd += ["--qtype", qtype, "--clip", clip, "--stats", stats_path]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))["top1"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--aciq", default="build/aciq")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--qtypes", default="int4")
    ap.add_argument("--clips", default="no,laplace,gaus,mix")
    ap.add_argument("--calib-limit", type=int, default=2000)
    ap.add_argument("--tolerance", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    xc, _ = load_split("train", args.calib_limit)
    xt, yt = load_split("test")
    worst = 0.0
    print(f"{'model':<14} {'config':<14} {'pytorch':>8} {'aciq':>8} {'diff':>6}")
    for path in args.model:
        model = OnnxModel(path)
        stats = collect(model, xc)
        with tempfile.TemporaryDirectory() as d:
            stats_path = os.path.join(d, "stats.json")
            subprocess.run([args.aciq, "collect", "--model", path, "--data", "fashion-mnist", "--split", "train",
                            "--limit", str(args.calib_limit), "--stats", stats_path, "-q"], check=True,
                           stdout=subprocess.DEVNULL)
            configs = [("fp32", "-")] + [(q, c) for q in args.qtypes.split(",") for c in args.clips.split(",")]
            for qtype, clip in configs:
                bits = int(qtype[3:]) if qtype != "fp32" else None
                ours = evaluate(model, xt, yt, stats if bits else None, bits, clip)
                theirs = aciq_top1(args.aciq, path, stats_path, qtype, clip)
                diff = abs(ours - theirs)
                worst = max(worst, diff)
                name = os.path.basename(path)
                print(f"{name:<14} {qtype + '/' + clip:<14} {ours:8.3f} {theirs:8.3f} {diff:6.3f}", flush=True)
    print(f"largest top-1 difference: {worst:.3f} points (tolerance {args.tolerance})")
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
