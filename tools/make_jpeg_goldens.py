#!/usr/bin/python3
# Builds the JPEG preprocessing goldens of tests/data: torchvision 0.14's ImageFolder + Resize(256) +
# CenterCrop(224) + ToTensor + Normalize outputs for a handful of real JPEGs, which aciq must reproduce.
#
# Usage (needs /usr/bin/python3: torch 1.13, torchvision 0.14, PIL with libjpeg-turbo):
#   /usr/bin/python3 tools/make_jpeg_goldens.py --collect   copy/derive the JPEGs from files on this machine,
#                                                            then write the goldens
#   /usr/bin/python3 tools/make_jpeg_goldens.py             rewrite the goldens from the committed JPEGs
#
# Output, under tests/data/golden/:
#   imagenet_mini/val/<class>/<file>   the JPEGs (an ImageFolder tree)
#   jpeg/<n>.bin                       float32 little-endian, shape [3, rows, 224]: every second row of the
#                                      normalized [3, 224, 224] tensor, starting at row_offset (alternating
#                                      0/1 between samples so both parities are covered at half the size)
#   jpeg/index.json                    the samples in ImageFolder order with labels, sizes and bin layout
import argparse
import json
import os
import shutil
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import datasets, transforms

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "golden")
FOLDER = os.path.join(ROOT, "imagenet_mini")
OUT = os.path.join(ROOT, "jpeg")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
ROW_STRIDE = 2

RUST_BOOK = "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/embedded-book/assets"
GCLOUD = "/usr/lib/google-cloud-sdk/platform"
# Real JPEGs found on the build machine (camera photos and web images of varied size, subsampling and
# coding), copied byte for byte.
COPIES = [
    ("camera", "board_baseline_444.jpeg", RUST_BOOK + "/verify.jpeg"),  # 720x477, 4:4:4, EXIF
    ("camera", "board_progressive_422.jpg", RUST_BOOK + "/f3.jpg"),  # 720x477, progressive 4:2:2
    ("diagram", "class_diagram_420.jpg",
     GCLOUD + "/gsutil/third_party/pyparsing/docs/_static/pyparsingClassDiagram_1.5.2.jpg"),  # 1155x1659
    ("small", "flower_161.jpg", GCLOUD + "/gsutil/third_party/requests/ext/flower-of-life.jpg"),  # 161x161
    ("small", "logo_245x60.jpg",
     GCLOUD + "/google_appengine/google/appengine/tools/java/jetty12/jetty-home/modules/demo.d/root/images/"
     "webtide_logo.jpg"),  # 245x60: upscaled, long side 1045
]


def derive(dst_dir):
    """JPEGs re-encoded by PIL from the real photo: odd dimensions with 4:2:0 chroma, grayscale, CMYK."""
    photo = Image.open(RUST_BOOK + "/verify.jpeg").convert("RGB")
    odd = photo.crop((101, 57, 101 + 333, 57 + 265))  # 333x265: odd sizes, partial chroma blocks
    odd.save(os.path.join(dst_dir, "camera", "board_odd_333x265_420.jpg"), quality=88, subsampling=2)
    gray = Image.open(RUST_BOOK + "/f3.jpg").convert("L").crop((0, 40, 501, 40 + 377))  # 501x377, 1 channel
    os.makedirs(os.path.join(dst_dir, "mono"), exist_ok=True)
    gray.save(os.path.join(dst_dir, "mono", "board_gray_501x377.jpg"), quality=85)
    cmyk = photo.crop((200, 0, 200 + 300, 400)).convert("CMYK")  # 300x400, 4 channels (Adobe inverted)
    cmyk.save(os.path.join(dst_dir, "mono", "board_cmyk_300x400.jpg"), quality=90)


def collect():
    dst = os.path.join(FOLDER, "val")
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    for cls, name, src in COPIES:
        if not os.path.isfile(src):
            sys.exit(f"make_jpeg_goldens: source JPEG {src} is missing on this machine")
        os.makedirs(os.path.join(dst, cls), exist_ok=True)
        shutil.copyfile(src, os.path.join(dst, cls, name))
    derive(dst)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--collect", action="store_true", help="(re)create the JPEG folder from machine files")
    args = parser.parse_args()
    if args.collect:
        collect()
    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    ds = datasets.ImageFolder(os.path.join(FOLDER, "val"), transform=tf)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    samples = []
    for i, (path, label) in enumerate(ds.samples):
        x, y = ds[i]
        assert y == label and tuple(x.shape) == (3, 224, 224)
        offset = i % ROW_STRIDE
        rows = x.numpy()[:, offset::ROW_STRIDE, :].astype("<f4")
        name = f"{i}.bin"
        rows.tofile(os.path.join(OUT, name))
        with Image.open(path) as im:
            size, mode = im.size, im.mode
        samples.append({
            "path": os.path.relpath(path, os.path.join(FOLDER, "val")),
            "label": label,
            "width": size[0],
            "height": size[1],
            "mode": mode,
            "bin": name,
            "row_offset": offset,
            "row_stride": ROW_STRIDE,
            "shape": list(rows.shape),
        })
    index = {
        "generator": "tools/make_jpeg_goldens.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "PIL": PIL.__version__},
        "transform": "Resize(256) CenterCrop(224) ToTensor() Normalize(mean, std)",
        "mean": MEAN,
        "std": STD,
        "classes": ds.classes,
        "samples": samples,
    }
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"wrote {len(samples)} goldens for classes {ds.classes} to {OUT}")


if __name__ == "__main__":
    main()
