#!/usr/bin/env python3
"""Loads a `noloco export` safetensors file with Python PyTorch alone and checks it.

1. Reads the file with json + struct + torch.frombuffer (no noloco code, no `safetensors`
   package): header length, JSON header, dtype F32, contiguous data_offsets, sizes = numel·4,
   and the tensor names/shapes the model's metadata implies (trainer/core/model.h layout).
2. If the `safetensors` package is installed, loads the file with safetensors.torch.load_file
   too and checks both give the same tensors.
3. Puts the weights into the Python twin of the model (tools/bench/train_speed.py, plain
   torch.nn) and prints the next-byte cross-entropy on a text file (--text), so a trained
   export shows a loss well below ln(256) = 5.55.

Usage: /usr/bin/python3 tools/export_check.py model.safetensors [--text FILE] [--bytes N]
Exits 1 with a message on the first failed check. docs/export.md describes the format.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F


def fail(msg):
    print("export_check: FAIL: " + msg)
    sys.exit(1)


def load_plain(path):
    """name -> float32 tensor, and the metadata, using only json/struct/torch."""
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8 or 8 + n > len(raw):
        fail("header length %d is not a multiple of 8 or runs past the file" % n)
    header = json.loads(raw[8 : 8 + n])
    data = bytearray(raw[8 + n :])
    meta = header.pop("__metadata__", {})
    tensors, at = {}, 0
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = t["data_offsets"]
        if t["dtype"] != "F32":
            fail("%s: dtype %s" % (name, t["dtype"]))
        if a != at:
            fail("%s: starts at %d, expected %d (gap or overlap)" % (name, a, at))
        if b - a != 4 * math.prod(t["shape"]):
            fail("%s: %d bytes for shape %s" % (name, b - a, t["shape"]))
        tensors[name] = torch.frombuffer(data, dtype=torch.float32, offset=a, count=(b - a) // 4).reshape(t["shape"])
        at = b
    if at != len(data):
        fail("data section is %d bytes, tensors cover %d" % (len(data), at))
    return tensors, meta


def expected_shapes(meta):
    v, d, L, c = (int(meta[k]) for k in ("vocab_size", "d_model", "n_layer", "context"))
    shapes = {"wte": [v, d], "wpe": [c, d], "ln_f.weight": [d], "ln_f.bias": [d]}
    for l in range(L):
        p = "h.%d." % l
        shapes.update({p + "ln1.weight": [d], p + "ln1.bias": [d], p + "attn.qkv": [3 * d, d],
                       p + "attn.out": [d, d], p + "ln2.weight": [d], p + "ln2.bias": [d],
                       p + "mlp.fc": [4 * d, d], p + "mlp.proj": [d, 4 * d]})
    return shapes


def to_twin_state(tensors, n_layer):
    """noloco names -> the state_dict keys of train_speed.ByteGPT."""
    sd = {"wte": tensors["wte"], "wpe": tensors["wpe"],
          "ln_f.weight": tensors["ln_f.weight"], "ln_f.bias": tensors["ln_f.bias"]}
    ours = {"ln1.weight": "ln1.weight", "ln1.bias": "ln1.bias", "attn.qkv": "qkv.weight",
            "attn.out": "proj.weight", "ln2.weight": "ln2.weight", "ln2.bias": "ln2.bias",
            "mlp.fc": "fc.weight", "mlp.proj": "fc_out.weight"}
    for l in range(n_layer):
        for a, b in ours.items():
            sd["blocks.%d.%s" % (l, b)] = tensors["h.%d.%s" % (l, a)]
    return sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--text", default="/usr/share/games/fortunes", help="text file or folder to score the model on")
    ap.add_argument("--bytes", type=int, default=65536, help="bytes of --text to score")
    args = ap.parse_args()

    tensors, meta = load_plain(args.file)
    print("metadata: " + json.dumps(meta, sort_keys=True))
    if meta.get("weights", "phi") == "both":
        fail("checks only single-set exports (--weights phi or theta)")
    want = expected_shapes(meta)
    if set(want) != set(tensors):
        fail("tensor names differ from the layout: missing %s, extra %s"
             % (sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))))
    for name, shape in want.items():
        if list(tensors[name].shape) != shape:
            fail("%s: shape %s, expected %s" % (name, list(tensors[name].shape), shape))
    n_params = sum(t.numel() for t in tensors.values())
    print("plain load: %d tensors, %d parameters, all finite: %s"
          % (len(tensors), n_params, all(bool(torch.isfinite(t).all()) for t in tensors.values())))

    try:
        from safetensors.torch import load_file
    except ImportError:
        print("safetensors package: not installed, skipped")
    else:
        st = load_file(args.file)
        same = set(st) == set(tensors) and all(torch.equal(st[k], tensors[k]) for k in st)
        print("safetensors package: %d tensors, identical to the plain load: %s" % (len(st), same))
        if not same:
            fail("safetensors.torch.load_file disagrees with the plain reader")

    if os.path.exists(args.text):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))
        from train_speed import ByteGPT  # the Python twin of trainer/core's model

        d, L, h, c = (int(meta[k]) for k in ("d_model", "n_layer", "n_head", "context"))
        model = ByteGPT(d, L, h, c)
        model.load_state_dict(to_twin_state(tensors, L), strict=True)
        model.eval()
        text = b""
        paths = [args.text] if os.path.isfile(args.text) else sorted(
            os.path.join(args.text, f) for f in os.listdir(args.text))
        for p in paths:
            if os.path.isfile(p) and len(text) < args.bytes:
                text += open(p, "rb").read()
        text = text[: args.bytes]
        rows = len(text) // (c + 1)
        if rows == 0:
            fail("--text has fewer than %d bytes" % (c + 1))
        seq = torch.tensor(list(text[: rows * (c + 1)]), dtype=torch.long).view(rows, c + 1)
        with torch.no_grad():
            logits = model(seq[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
        print("twin model loss on %d x %d bytes of %s: %.4f nats (uniform: %.4f)"
              % (rows, c, args.text, loss.item(), math.log(256)))
    print("export_check: OK")


if __name__ == "__main__":
    main()
