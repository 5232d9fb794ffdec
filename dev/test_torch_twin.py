#!/usr/bin/python3
"""Checks of the PyTorch twin (bench/torch_twin.py) against the C side. Needs PyTorch, so it is
a development script, not part of ctest.

    dev/test_torch_twin.py [--mmcr build/mmcr]

Without --mmcr only the checks that need no C binary run. Prints "N passed, M failed".
  1. objective: loss, global term and gradient of the twin's mmcr_loss on the loss fixtures
     (tests/fixtures/mmcr-loss) in float64;
  2. model: parameter count, names and shapes of the twin's tensor table, FLOPs of the demo model;
  3. checkpoint: safetensors round trip; metadata keys equal to those of a checkpoint written
     by `mmcr train` (with --mmcr);
  4. schedule and step counting: the lr and epoch columns of metrics.jsonl of a tiny run of
     `mmcr train` and of the twin agree at every step (with --mmcr);
  5. cross-evaluation: `mmcr embed` on the twin's checkpoint reproduces the twin's features
     (with --mmcr; dev/check_twin_checkpoint.py).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_twin  # noqa: E402

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s" % what)


def test_objective():
    base = os.path.join(ROOT, "tests", "fixtures", "mmcr-loss")
    for case in sorted(os.listdir(base)):
        d = os.path.join(base, case)
        meta = json.load(open(os.path.join(d, "case.json")))
        if meta.get("kind") == "collapsed":
            continue  # rank-deficient: the C gradient is the minimum-norm one, autograd's is arbitrary
        y = torch.from_numpy(np.load(os.path.join(d, "y.npy"))).requires_grad_(True)
        loss, m = torch_twin.mmcr_loss(y, meta["P"], meta["K"], meta["lambda"], torch.float64)
        loss.backward()
        g = np.load(os.path.join(d, "grad.npy"))
        check(abs(m["loss"] - meta["loss"]) <= 1e-9 * max(1, abs(meta["loss"])), "%s: loss %.12g vs %.12g"
              % (case, m["loss"], meta["loss"]))
        check(abs(m["global_nuclear_norm"] - meta["global_nuclear_norm"]) <= 1e-9 * meta["global_nuclear_norm"],
              "%s: global term" % case)
        check(abs(m["ppe"] - meta["ppe"]) <= 1e-9, "%s: ppe" % case)
        err = float(np.abs(y.grad.numpy() - g).max())
        check(err <= 1e-7, "%s: gradient max error %.2e" % (case, err))


def test_model():
    m = torch_twin.MMCRModel(1, 16, 512, 128)
    names = [n for n, _, _ in torch_twin.mmcr_tensor_table(m)]
    check(len(names) == len(set(names)), "tensor names unique")
    check("backbone.layer2.0.downsample.0.weight" in names and "projector.3.weight" in names
          and "backbone.bn1.running_var" in names, "torchvision-style names")
    check(not any(n.endswith("num_batches_tracked") for n in names), "no num_batches_tracked")
    nparams = sum(p.numel() for p in m.parameters())
    check(nparams == 831984, "demo model has %d parameters (the C model: 831984)" % nparams)
    f = torch_twin.forward_flops(m, 1, 28)
    check(abs(f - 5.7405952e7) < 1, "demo forward FLOPs %.0f" % f)
    for mod in m.backbone.modules():
        if isinstance(mod, torch.nn.Conv2d):
            fan_out = mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
            std = float(mod.weight.std())
            if mod.weight.numel() > 2000:
                check(abs(std / (2.0 / fan_out) ** 0.5 - 1) < 0.1, "kaiming fan_out std of a conv")
    p0 = m.backbone.conv1.weight
    check(p0.shape == (16, 1, 3, 3), "CIFAR stem 3x3")
    with torch.no_grad():
        out = m(torch.randn(4, 1, 28, 28))
    check(out.shape == (4, 128), "embedding shape")
    m3 = torch_twin.MMCRModel(3, 8, 0, 32)
    check([n for n, _, _ in torch_twin.mmcr_tensor_table(m3) if n.startswith("projector")] == ["projector.0.weight"],
          "proj-hidden 0: one linear layer")


def test_checkpoint(mmcr, tmp):
    cfg, _ = torch_twin.parse_args(["--out", tmp])
    m = torch_twin.MMCRModel(1, 4, 16, 8)
    path = os.path.join(tmp, "c.safetensors")
    torch_twin.save_checkpoint(path, m, cfg, 7, 1, np.array([0.25], np.float32), np.array([0.5], np.float32))
    t, meta = torch_twin.safetensors_read(path)
    ok = all(np.array_equal(t[n], v.detach().numpy()) for n, v, _ in torch_twin.mmcr_tensor_table(m))
    check(ok, "safetensors round trip")
    check(meta["data.mean"] == "0.25,0,0" and meta["data.std"] == "0.5,1,1" and meta["step"] == "7",
          "data.* and step metadata")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    check(n % 8 == 0, "header length padded to 8")
    if not mmcr:
        return
    out = os.path.join(tmp, "ctrain")
    subprocess.run([mmcr, "train", "--out", out, "--max-steps", "1", "--batch", "8", "--train-subset", "64",
                    "--width", "4", "--proj-hidden", "16", "--proj-out", "8", "--threads", "2", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, cmeta = torch_twin.safetensors_read(os.path.join(out, "checkpoint.safetensors"))
    check(set(cmeta) == set(meta), "metadata keys as mmcr train: only in C %s, only in twin %s"
          % (sorted(set(cmeta) - set(meta)), sorted(set(meta) - set(cmeta))))


def read_metrics(path):
    return [json.loads(x) for x in open(path) if x.strip()]


def test_schedule(mmcr, tmp):
    if not mmcr:
        return
    args = ["--max-steps", "0", "--epochs", "2.5", "--batch", "8", "--train-subset", "100", "--width", "2",
            "--proj-hidden", "8", "--proj-out", "4", "--log-every", "1", "--threads", "1", "--quiet"]
    c_out, t_out = os.path.join(tmp, "c"), os.path.join(tmp, "t")
    subprocess.run([mmcr, "train", "--out", c_out] + args, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "torch_twin.py"), "--out", t_out, "--workers", "0"]
                   + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c, t = read_metrics(os.path.join(c_out, "metrics.jsonl")), read_metrics(os.path.join(t_out, "metrics.jsonl"))
    check(len(c) == len(t) == 30, "same number of steps (C %d, twin %d, expected ceil(2.5 * 12) = 30)"
          % (len(c), len(t)))
    bad = [(a["step"], a["lr"], b["lr"]) for a, b in zip(c, t)
           if a["step"] != b["step"] or abs(a["lr"] - b["lr"]) > 1e-6 * max(abs(a["lr"]), 1e-12)
           or a["epoch"] != b["epoch"]]
    check(not bad, "one-cycle lr and epoch per step agree (first differences: %s)" % bad[:3])
    check(set(c[0]) == set(t[0]), "metrics.jsonl keys")


def test_cross_eval(mmcr, tmp):
    if not mmcr:
        return
    out = os.path.join(tmp, "twin")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "torch_twin.py"), "--out", out, "--max-steps", "2",
                    "--batch", "16", "--train-subset", "256", "--width", "4", "--proj-hidden", "32", "--proj-out", "16",
                    "--workers", "0", "--quiet"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "dev", "check_twin_checkpoint.py"), "--mmcr", mmcr,
                        "--checkpoint", os.path.join(out, "checkpoint.safetensors"), "--n", "64"],
                       capture_output=True, text=True)
    print(r.stdout.strip())
    check(r.returncode == 0, "mmcr embed reproduces the twin's features")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mmcr", default=None, help="the mmcr binary (enables the checks against the C side)")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        test_objective()
        test_model()
        test_checkpoint(a.mmcr, tmp)
        test_schedule(a.mmcr, tmp)
        test_cross_eval(a.mmcr, tmp)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
