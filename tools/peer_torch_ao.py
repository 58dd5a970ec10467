#!/usr/bin/python3
# Peer baseline: PyTorch's own torch.ao.quantization observers at aciq's quantization points, same models and data.
"""Top-1 of the bundled models with activation ranges from PyTorch's stock observers.

Setup (everything else as in tools/parity_check.py, whose ONNX loader / interpreter / BN folding this imports):

* Models: the ONNX files given with --model, run by parity_check.OnnxModel on torch.nn.functional, with every
  BatchNormalization that follows a Conv/Gemm folded into it (as aciq and the seed do).
* Quantization points: aciq's default placement "outputs" -- the output of every Conv/Gemm after BN folding,
  before its activation (ReLU, residual add, ...). Roles and widths as `aciq layers` reports them: the first
  Conv ("first-conv") and every Gemm ("linear", the last one "classifier") at 8 bits, every other Conv
  ("conv") at the swept width M. The network input is not quantized. Only this placement is implemented.
* Calibration: the first --calib-limit (2000) Fashion-MNIST train images, preprocessed as parity_check.py does
  ((x/255 - 0.2860) / 0.3530), fed through the fp32 model (weights not quantized) in batches of --calib-batch
  (default 32, i.e. 63 observer updates; movavg and histogram depend on it).
  One observer instance per (point, observer kind, width), each built with dtype=torch.quint8,
  qscheme=torch.per_tensor_affine, quant_min=0, quant_max=2^M-1 and PyTorch's defaults otherwise (no
  reduce_range):
    minmax     MinMaxObserver
    movavg     MovingAverageMinMaxObserver (averaging_constant 0.01)
    histogram  HistogramObserver (bins 2048, upsample_rate 128), exactly as shipped (with the installed
               release's histc range handling, see hist-float). NOTE: the shipped class
               sets dst_nbins = 2 ** torch.iinfo(dtype).bits = 256 for quint8 whatever quant_min/quant_max are,
               so its L2 (norm-minimization) range search always assumes 256 levels; only the final
               scale/zero point use [0, 2^M-1].
    hist-Mbit  the same HistogramObserver with dst_nbins set to quant_max - quant_min + 1 = 2^M after
               construction (the one change that makes the L2 search assume the 2^M levels that run).
    hist-float, hist-float-Mbit
               histogram / hist-Mbit with PyTorch 1.13's histc range truncation undone: 1.13's forward()
               bins each batch over [int(lo), int(hi)] but labels the bins [lo, hi] (later releases pass the
               float bounds); see FloatRangeHistogramObserver.
  hist-Mbit, hist-float and hist-float-Mbit are not stock PyTorch; they are listed as separate rows so that they
  are never confused with the stock "histogram" row.
* Weights: every Conv/Gemm weight (after BN folding) int8 per output channel, symmetric:
  PerChannelMinMaxObserver(ch_axis=output channel, dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
  applied with torch.fake_quantize_per_channel_affine (range [-128, 127]). Biases stay fp32.
* Evaluation: the 10,000 test images; each point's output replaced by
  torch.fake_quantize_per_tensor_affine(y, scale, zero_point, 0, 2^M-1) with (scale, zero_point) from that
  observer's calculate_qparams(). fp32 is the unquantized model (must equal aciq's fp32 top-1; with --aciq
  the script checks that against `aciq eval`).

Usage: /usr/bin/python3 tools/peer_torch_ao.py [--model models/resnet20.onnx ...] [--bits 8,4,3,2]
       [--observers minmax,movavg,histogram,...] [--markdown FILE] [--json FILE] [--aciq build/aciq]
"""
import argparse
import json
import os
import platform
import sys
import time

import torch
from torch.ao.quantization import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                                   PerChannelMinMaxObserver)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_check  # noqa: E402  (the ONNX interpreter, BN folding and data loading)

DEFAULT_MODELS = ["models/resnet20.onnx", "models/vgg_bn.onnx", "models/mobilenet.onnx"]


class FloatRangeHistogramObserver(HistogramObserver):
    """HistogramObserver with the histogram built over the float range it records (not stock PyTorch 1.13).

    PyTorch 1.13's forward() calls torch.histc(x, bins, min=int(lo), max=int(hi)) and then treats the bins as
    spanning [lo, hi], so every batch is binned over the integer-truncated range and stretched onto the float
    one; later releases pass lo/hi unchanged. This subclass runs the stock forward() with torch.histc given the
    same lo/hi without the int() (it recomputes them exactly as forward() does and checks that int() of them is
    what forward() passed)."""

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach()
        x_min, x_max = torch.aminmax(x)
        if (self.min_val == float("inf") and self.max_val == float("-inf")) or \
                self.min_val.item() == self.max_val.item():
            lo, hi = x_min, x_max
        else:
            lo, hi, _, _ = self._adjust_min_max(torch.min(x_min, self.min_val), torch.max(x_max, self.max_val),
                                                self.upsample_rate)
        lo, hi = float(lo), float(hi)
        histc = torch.histc

        def float_histc(t, bins, min, max, **kw):
            assert (min, max) == (int(lo), int(hi)), "HistogramObserver.forward no longer matches this shim"
            return histc(t, bins, min=lo, max=hi, **kw)

        torch.histc = float_histc
        try:
            return super().forward(x_orig)
        finally:
            torch.histc = histc


def _histogram(cls, mbit):
    def make(quant_min, quant_max):
        obs = cls(dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=quant_min, quant_max=quant_max)
        if mbit:
            obs.dst_nbins = quant_max - quant_min + 1  # the L2 search assumes the 2^M levels that run
        return obs
    return make


OBSERVERS = {
    "minmax": lambda lo, hi: MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                            quant_min=lo, quant_max=hi),
    "movavg": lambda lo, hi: MovingAverageMinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                                         quant_min=lo, quant_max=hi),
    "histogram": _histogram(HistogramObserver, False),
    "hist-Mbit": _histogram(HistogramObserver, True),
    "hist-float": _histogram(FloatRangeHistogramObserver, False),
    "hist-float-Mbit": _histogram(FloatRangeHistogramObserver, True),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def points(model):
    """[(node name, role)] for aciq's "outputs" placement: every Conv/Gemm output after BN folding."""
    out = []
    first_conv = model.convs[0].name
    classifier = model.linears[-1].name if model.linears else None
    for n in model.nodes:
        if n.op_type == "Conv":
            out.append((n.name, "first-conv" if n.name == first_conv else "conv"))
        elif n.op_type in ("Gemm", "MatMul"):
            out.append((n.name, "classifier" if n.name == classifier else "linear"))
    return out


def point_bits(role, m):
    return m if role == "conv" else 8


def quantize_weights(model):
    """Fake-quantize every Conv/Gemm weight in place (int8 per output channel, symmetric); returns the originals."""
    saved = {}
    for n in model.convs + model.linears:
        name = n.input[1]
        if name in saved:
            continue
        w = model.inits[name]
        if n.op_type == "Conv" or (n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute)):
            axis = 0
        else:  # Gemm without transB, MatMul: weight is [in, out]
            axis = w.dim() - 1
        obs = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        obs(w)
        scale, zp = obs.calculate_qparams()
        saved[name] = w
        model.inits[name] = torch.fake_quantize_per_channel_affine(w, scale.float(), zp.to(torch.int32), axis,
                                                                   obs.quant_min, obs.quant_max)
    return saved


def calibrate(model, pts, x, kinds, widths, batch):
    """One calibration pass feeding every observer; returns {(point, kind, bits): (scale, zero_point, qmax)}."""
    observers = {}
    for name, role in pts:
        for kind in kinds:
            for m in sorted({point_bits(role, m) for m in widths}):
                observers[(name, kind, m)] = OBSERVERS[kind](0, 2 ** m - 1)
    by_point = {}
    for key, obs in observers.items():
        by_point.setdefault(key[0], []).append(obs)

    def hook(n, y):
        for obs in by_point[n.name]:
            obs(y)
        return y

    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            model.run(x[i:i + batch], hook)
    qparams = {}
    for key, obs in observers.items():
        t0 = time.time()
        scale, zp = obs.calculate_qparams()
        qparams[key] = (float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]), obs.quant_max)
        if time.time() - t0 > 5:
            log(f"  calculate_qparams {key} took {time.time() - t0:.1f} s")
    return qparams


def evaluate(model, x, y, batch, hook=None):
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            correct += (model.run(x[i:i + batch], hook).argmax(dim=1) == y[i:i + batch]).sum().item()
    return 100.0 * correct / x.shape[0]


def fq_hook(pts, qparams, kind, m):
    table = {}
    for name, role in pts:
        scale, zp, qmax = qparams[(name, kind, point_bits(role, m))]
        table[name] = (scale, zp, qmax)

    def hook(n, t):
        scale, zp, qmax = table[n.name]
        return torch.fake_quantize_per_tensor_affine(t, scale, zp, 0, qmax)
    return hook


def markdown(results, widths, kinds, meta):
    lines = [f"PyTorch {meta['torch']} torch.ao.quantization observers at aciq's points (placement outputs; "
             f"first-conv/linear/classifier 8-bit, conv at the column's width); calibration: first "
             f"{meta['calib_limit']} Fashion-MNIST train images, batches of {meta['calib_batch']}; evaluation: "
             f"10,000 test images, top-1 %. Weights int8 per-channel symmetric (PerChannelMinMaxObserver), "
             f"biases fp32. Not stock PyTorch: hist-Mbit (HistogramObserver with dst_nbins = 2^M instead of 256), "
             f"hist-float (histc over the float range, not int()-truncated), hist-float-Mbit (both).",
             "",
             "| model | observer | " + " | ".join(f"int{m}" for m in widths) + " |",
             "|---|---|" + "---|" * len(widths)]
    for r in results:
        lines.append(f"| {r['model']} | fp32 | " + " | ".join(f"{r['fp32']:.3f}" for _ in widths) + " |")
        for kind in kinds:
            lines.append(f"| {r['model']} | {kind} | " +
                         " | ".join(f"{r['top1'][kind][str(m)]:.3f}" for m in widths) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="ONNX model (repeatable); default: the three bundled models")
    ap.add_argument("--bits", default="8,4,3,2", help="activation widths M for the conv points")
    ap.add_argument("--observers", default=",".join(OBSERVERS), help="subset of " + ",".join(OBSERVERS))
    ap.add_argument("--calib-limit", type=int, default=2000)
    ap.add_argument("--calib-batch", type=int, default=32, help="calibration batch size (movavg and histogram "
                    "depend on it)")
    ap.add_argument("--eval-batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--json", help="also write the results (and every point's qparams) to this file")
    ap.add_argument("--aciq", help="aciq binary: check the fp32 top-1 against `aciq eval` (exit 1 on mismatch)")
    args = ap.parse_args()
    models = args.model or DEFAULT_MODELS
    widths = [int(b) for b in args.bits.split(",")]
    kinds = args.observers.split(",")
    for k in kinds:
        if k not in OBSERVERS:
            ap.error(f"unknown observer {k}")
    torch.set_num_threads(args.threads)
    start = time.time()
    print(f"torch {torch.__version__} (python {platform.python_version()}, {args.threads} threads)", flush=True)
    xc, _ = parity_check.load_split("train", args.calib_limit)
    xt, yt = parity_check.load_split("test")
    results, fp32_ok = [], True
    for path in models:
        name = os.path.splitext(os.path.basename(path))[0]
        t0 = time.time()
        model = parity_check.OnnxModel(path)
        pts = points(model)
        log(f"{name}: {len(pts)} points; fp32 ...")
        fp32 = evaluate(model, xt, yt, args.eval_batch)
        rec = {"model": name, "path": path, "fp32": fp32, "top1": {}, "points": [], "qparams": {}}
        if args.aciq:
            theirs = parity_check.aciq_top1(args.aciq, path, None, "fp32", None)
            rec["aciq_fp32"] = theirs
            if abs(theirs - fp32) > 1e-9:
                fp32_ok = False
                log(f"{name}: fp32 top-1 {fp32:.3f} differs from aciq's {theirs:.3f}")
        log(f"{name}: fp32 {fp32:.3f}; calibrating ...")
        qparams = calibrate(model, pts, xc, kinds, widths, args.calib_batch)
        log(f"{name}: calibrated ({time.time() - t0:.1f} s)")
        saved = quantize_weights(model)
        for kind in kinds:
            rec["top1"][kind] = {}
            for m in widths:
                top1 = evaluate(model, xt, yt, args.eval_batch, fq_hook(pts, qparams, kind, m))
                rec["top1"][kind][str(m)] = top1
                log(f"{name}: {kind} int{m} {top1:.3f} ({time.time() - t0:.1f} s)")
        model.inits.update(saved)
        rec["points"] = [{"node": n, "role": r} for n, r in pts]
        for (n, kind, m), (scale, zp, qmax) in qparams.items():
            rec["qparams"].setdefault(kind, {}).setdefault(str(m), {})[n] = {
                "scale": scale, "zero_point": zp, "quant_max": qmax,
                "grid_min": (0 - zp) * scale, "grid_max": (qmax - zp) * scale}
        rec["seconds"] = time.time() - t0
        results.append(rec)
    meta = {"torch": torch.__version__, "calib_limit": args.calib_limit, "calib_batch": args.calib_batch,
            "bits": widths, "observers": kinds, "threads": args.threads, "placement": "outputs",
            "weights": "int8 per-channel symmetric (PerChannelMinMaxObserver, qint8), fake_quantize_per_channel_affine",
            "biases": "fp32"}
    table = markdown(results, widths, kinds, meta)
    wall = time.time() - start
    meta["wall_seconds"] = wall
    print(table, end="")
    print(f"wall time {wall:.1f} s", flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    sys.exit(0 if fp32_ok else 1)


if __name__ == "__main__":
    main()
