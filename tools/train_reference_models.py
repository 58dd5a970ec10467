# Trains aciq's reference models (ResNet-20, VGG-BN, MobileNet) on Fashion-MNIST and exports them to ONNX + reference_models.json.
"""Train the reference Fashion-MNIST models and export them to ONNX.

Reads the Fashion-MNIST IDX .gz files directly (no download), normalizes
x = (uint8 / 255 - 0.2860) / 0.3530 in float32 (input 1x28x28), trains each
model with fixed seeds and deterministic algorithms, exports it to ONNX opset 13
(input "input" [N,1,28,28], output "logits" [N,10], dynamic batch, BatchNormalization
nodes kept, ReLU6 as Clip) and writes OUT/reference_models.json with the fp32
accuracy measured in PyTorch (eval mode) on the 10k test set.

Usage (Debian's python, which has torch):
  /usr/bin/python3 tools/train_reference_models.py [--out models] [--models resnet20,vgg_bn,mobilenet]
"""
import argparse
import datetime
import gzip
import hashlib
import json
import os
import shlex
import struct
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

# Per-model defaults, chosen so that all three train in well under 30 min on 2 CPU cores.
DEFAULT_EPOCHS = {"resnet20": 4, "vgg_bn": 3, "mobilenet": 2}
DEFAULT_LR = {"resnet20": 0.1, "vgg_bn": 0.05, "mobilenet": 0.1}
# channels_last is faster on CPU for these two (measured); it does not change the exported graph.
CHANNELS_LAST = {"resnet20": True, "vgg_bn": False, "mobilenet": True}
OPSET = 13


def read_idx_gz(path):
    """Read an IDX file (.gz) into a numpy array of its declared shape (uint8 data)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file (magic %02x%02x)" % (path, dtype, ndim))
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: expected %d bytes of data, got %d" % (path, int(np.prod(dims)), arr.size))
    return arr.reshape(dims)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalize(images_u8):
    """uint8 [N,28,28] -> float32 [N,1,28,28]: (x / 255 - MEAN) / STD, every step in float32."""
    x = torch.from_numpy(images_u8.copy()).to(torch.float32).unsqueeze(1)
    return (x / 255.0 - rm.MEAN) / rm.STD


def load_split(data_dir, prefix):
    images = read_idx_gz(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx_gz(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError("%s/%s: bad shapes %s / %s" % (data_dir, prefix, images.shape, labels.shape))
    return normalize(images), torch.from_numpy(labels.astype(np.int64))


def augment(x, gen, mode):
    """Batch augmentation: 'flip' = random horizontal flip; 'crop-flip' adds random crop with padding 2."""
    if mode == "none":
        return x
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if mode == "crop-flip":
        pad = 2
        # pad with the normalized value of a black pixel so the border looks like the background
        bg = (0.0 - rm.MEAN) / rm.STD
        xp = F.pad(x, (pad, pad, pad, pad), value=bg)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        out = torch.empty_like(x)
        for i in range(n):
            out[i] = xp[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
        x = out
    return x


@torch.no_grad()
def evaluate(model, x, y, batch=100, channels_last=False):
    """Eval-mode top-1 / top-5 correct counts on (x, y)."""
    model.eval()
    top1 = top5 = 0
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        logits = model(xb)
        yb = y[i:i + batch]
        pred5 = logits.topk(5, dim=1).indices
        top1 += int((pred5[:, 0] == yb).sum())
        top5 += int((pred5 == yb[:, None]).any(dim=1).sum())
    return top1, top5


def train_one(name, args, train_x, train_y, test_x, test_y):
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[name]
    lr = args.lr if args.lr is not None else DEFAULT_LR[name]
    cl = CHANNELS_LAST[name]
    # Seed per model so each result is reproducible whatever else is in --models.
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = rm.build(name)
    nparams = rm.param_count(model)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    n = train_x.shape[0]
    steps_per_epoch = (n + args.batch - 1) // args.batch
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=max(epochs, 1), steps_per_epoch=steps_per_epoch,
                                                pct_start=0.25, div_factor=10.0, final_div_factor=100.0)
    print("[%s] %d params, %d epochs, lr %g, batch %d, augment %s, %d train samples"
          % (name, nparams, epochs, lr, args.batch, args.augment, n), flush=True)
    train_seconds = 0.0
    for epoch in range(epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        correct = 0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb = augment(train_x[idx], gen, args.augment)
            yb = train_y[idx]
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * yb.shape[0]
            correct += int((logits.argmax(1) == yb).sum())
        dt = time.time() - t0
        train_seconds += dt
        msg = "[%s] epoch %d/%d  loss %.4f  train %.2f%%  %.0fs" % (
            name, epoch + 1, epochs, loss_sum / n, 100.0 * correct / n, dt)
        if not args.no_epoch_eval or epoch + 1 == epochs:
            t1, _ = evaluate(model, test_x, test_y, channels_last=cl)
            msg += "  test top1 %.2f%%" % (100.0 * t1 / test_x.shape[0])
        print(msg, flush=True)
    # Back to the default contiguous layout for final evaluation and export.
    model = model.to(memory_format=torch.contiguous_format).eval()
    return model, nparams, epochs, lr, train_seconds


def export_onnx(model, path):
    model.eval()
    dummy = torch.zeros(1, *rm.INPUT_SHAPE)
    # TrainingMode.PRESERVE with the model in eval mode: BatchNormalization nodes stay in the graph
    # (TrainingMode.EVAL would let the exporter fold BN into the preceding Conv).
    # The exporter warns about constant folding under PRESERVE even when the model is in eval mode; it is harmless here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
        torch.onnx.export(model, dummy, path, opset_version=OPSET, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    _inline_identity_initializers(path)


def _inline_identity_initializers(path):
    """The exporter deduplicates initializers with equal values and re-creates them with Identity nodes;
    give each such output its own initializer instead so the graph holds only the model's real ops."""
    import onnx
    m = onnx.load(path)
    inits = {t.name: t for t in m.graph.initializer}
    keep = []
    changed = False
    for node in m.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            m.graph.initializer.append(t)
            changed = True
        else:
            keep.append(node)
    if changed:
        del m.graph.node[:]
        m.graph.node.extend(keep)
        onnx.save(m, path)


def run_onnx_numpy(path, x):
    """Minimal numpy interpreter for the ops these models export (no onnxruntime on this machine).
    Used only to check that the ONNX file computes what the PyTorch model computes."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    env[m.graph.input[0].name] = x.astype(np.float64)

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def conv(x, w, b, a):
        n, c, h, wd = x.shape
        k = w.shape[2]
        s = a.get("strides", [1, 1])[0]
        p = a.get("pads", [0, 0, 0, 0])[0]
        g = a.get("group", 1)
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        oh, ow = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
        cols = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # n c oh ow k k
        cg, og = c // g, w.shape[0] // g
        out = np.empty((n, w.shape[0], oh, ow))
        for gi in range(g):
            out[:, gi * og:(gi + 1) * og] = np.einsum("nchwij,ocij->nohw", cols[:, gi * cg:(gi + 1) * cg],
                                                      w[gi * og:(gi + 1) * og])
        return out + (b[None, :, None, None] if b is not None else 0)

    for node in m.graph.node:
        a = attrs(node)
        i = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            r = numpy_helper.to_array(a["value"]).astype(np.float64)
        elif op == "Conv":
            r = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "BatchNormalization":
            sc = i[1] / np.sqrt(i[4] + a.get("epsilon", 1e-5))
            r = (i[0] - i[3][None, :, None, None]) * sc[None, :, None, None] + i[2][None, :, None, None]
        elif op == "Relu":
            r = np.maximum(i[0], 0)
        elif op == "Clip":
            r = np.clip(i[0], i[1], i[2])
        elif op == "Add":
            r = i[0] + i[1]
        elif op == "MaxPool":
            k, st = a["kernel_shape"][0], a["strides"][0]
            r = np.lib.stride_tricks.sliding_window_view(i[0], (k, k), axis=(2, 3))[:, :, ::st, ::st].max(axis=(4, 5))
        elif op == "GlobalAveragePool":
            r = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            r = i[0].reshape(i[0].shape[0], -1)
        elif op == "Gemm":
            w = i[1].T if a.get("transB", 0) else i[1]
            r = a.get("alpha", 1.0) * (i[0] @ w) + a.get("beta", 1.0) * i[2]
        elif op == "Identity":
            r = i[0]
        else:
            raise RuntimeError("%s: op %s not handled by the numpy check" % (path, op))
        env[node.output[0]] = r
    return env[m.graph.output[0].name]


def inspect_onnx(path, name):
    """Check the exported file and return {op_type: count}. Raises if the graph is not what aciq expects."""
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)
    opsets = {o.domain: o.version for o in m.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != OPSET:
        raise RuntimeError("%s: opset %s, expected %d" % (path, opsets, OPSET))
    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    if ops.get("BatchNormalization", 0) == 0:
        raise RuntimeError("%s: BatchNormalization nodes were folded away" % path)
    if name == "mobilenet" and ops.get("Clip", 0) == 0:
        raise RuntimeError("%s: ReLU6 did not export as Clip" % path)
    if [i.name for i in m.graph.input] != ["input"] or [o.name for o in m.graph.output] != ["logits"]:
        raise RuntimeError("%s: unexpected graph inputs/outputs" % path)

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    io = {"input": dims(m.graph.input[0]), "logits": dims(m.graph.output[0])}
    return dict(sorted(ops.items())), io


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models", help="output folder for <model>.onnx and reference_models.json (default: models)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the Fashion-MNIST *-idx?-ubyte.gz files (default: %(default)s)")
    ap.add_argument("--models", default=",".join(rm.MODELS),
                    help="comma-separated models to train (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs for every model (default per model: %s)"
                    % ", ".join("%s=%d" % kv for kv in DEFAULT_EPOCHS.items()))
    ap.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and augmentation (default: 0)")
    ap.add_argument("--batch", type=int, default=128, help="training batch size (default: 128)")
    ap.add_argument("--lr", type=float, default=None,
                    help="peak OneCycle learning rate for every model (default per model: %s)"
                    % ", ".join("%s=%g" % kv for kv in DEFAULT_LR.items()))
    ap.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay (default: 5e-4)")
    ap.add_argument("--augment", choices=["none", "flip", "crop-flip"], default="flip",
                    help="training augmentation (default: flip)")
    ap.add_argument("--train-limit", type=int, default=0,
                    help="train on the first N training samples only (smoke tests; 0 = all)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    ap.add_argument("--no-epoch-eval", action="store_true", help="skip the test-set evaluation after each epoch")
    args = ap.parse_args()

    names = [s.strip() for s in args.models.split(",") if s.strip()]
    for name in names:
        if name not in rm.MODELS:
            ap.error("unknown model %r (known: %s)" % (name, ", ".join(rm.MODELS)))

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    command = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)

    files = {k: os.path.join(args.data, k + ".gz") for k in
             ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]}
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    if args.train_limit:
        train_x, train_y = train_x[:args.train_limit], train_y[:args.train_limit]
    print("data: %d train, %d test from %s" % (train_x.shape[0], test_x.shape[0], args.data), flush=True)

    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "reference_models.json")
    report = {}
    if os.path.exists(json_path):  # keep entries of models not retrained in this run
        with open(json_path) as f:
            report = json.load(f)
    import onnx
    report.update({
        "dataset": {
            "name": "Fashion-MNIST",
            "test_files": [os.path.basename(files["t10k-images-idx3-ubyte"]), os.path.basename(files["t10k-labels-idx1-ubyte"])],
            "sha256": {os.path.basename(p): sha256(p) for p in files.values()},
        },
        "preprocess": {
            "input_shape": [1, 28, 28],
            "mean": rm.MEAN,
            "std": rm.STD,
            "formula": "float32: (x_uint8 / 255 - mean) / std",
        },
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "opset": OPSET},
    })
    report.setdefault("models", {})

    for name in names:
        t_start = time.time()
        model, nparams, epochs, lr, train_seconds = train_one(name, args, train_x, train_y, test_x, test_y)
        top1, top5 = evaluate(model, test_x, test_y)
        onnx_name = name + ".onnx"
        path = os.path.join(args.out, onnx_name)
        export_onnx(model, path)
        ops, io = inspect_onnx(path, name)
        with torch.no_grad():
            ref = model(test_x[:16]).double().numpy()
        got = run_onnx_numpy(path, test_x[:16].numpy())
        max_diff = float(np.abs(got - ref).max())
        if max_diff > 1e-3 or not np.array_equal(got.argmax(1), ref.argmax(1)):
            raise RuntimeError("%s: numpy run of the ONNX graph differs from PyTorch (max |diff| %g)" % (path, max_diff))
        ntest = test_x.shape[0]
        entry = {
            "file": onnx_name,
            "fp32_top1": round(100.0 * top1 / ntest, 3),
            "fp32_top5": round(100.0 * top5 / ntest, 3),
            "correct_top1": top1,
            "correct_top5": top5,
            "test_samples": ntest,
            "train_samples": int(train_x.shape[0]),
            "params": nparams,
            "train_seconds": round(train_seconds, 1),
            "wall_seconds": round(time.time() - t_start, 1),
            "epochs": epochs,
            "lr": lr,
            "batch": args.batch,
            "augment": args.augment,
            "seed": args.seed,
            "onnx_bytes": os.path.getsize(path),
            "onnx_ops": ops,
            "onnx_vs_torch_max_abs_diff_16": float("%.3g" % max_diff),
            "io": io,
            "command": command,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        report["models"][name] = entry
        print("[%s] fp32 top1 %.3f%% (%d/%d)  top5 %.3f%%  train %.0fs  -> %s (%d KiB)  onnx-vs-torch %.2g  ops %s"
              % (name, entry["fp32_top1"], top1, ntest, entry["fp32_top5"], train_seconds, path,
                 entry["onnx_bytes"] // 1024, max_diff, ops), flush=True)
        with open(json_path + ".tmp", "w") as f:
            json.dump(report, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(json_path + ".tmp", json_path)
    print("wrote", json_path, flush=True)


if __name__ == "__main__":
    main()
