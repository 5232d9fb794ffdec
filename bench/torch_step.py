#!/usr/bin/python3
"""PyTorch side of the benchmark: the same step as bench/bench_step.c on synthetic input.

    torch_step.py step --threads N --in-channels C --image-size S --width W --batch P --views K
                       --proj-hidden H --proj-out D [--warmup 1] [--steps 3]
    torch_step.py loss --threads N --P P --K K --D D [--lambda 0] [--dtype float32|float64]

Prints one JSON object (the fields of bench_step's output). The step is the twin's
(bench/torch_twin.py): zero grads, forward of all P*K views, MMCR loss (decomposition in
float64 as the C library), backward, Adam update. The loss mode times the objective alone,
forward + backward, with torch.linalg.svdvals and autograd.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_twin  # noqa: E402


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def maxrss_kb():
    """Peak resident memory in KiB: VmHWM (ru_maxrss inherits the parent's high-water mark
    across fork + exec on Linux, so it is only the fallback)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_step(a):
    torch.manual_seed(0)
    model = torch_twin.MMCRModel(a.in_channels, a.width, a.proj_hidden, a.proj_out)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.999), weight_decay=1e-6)
    nviews = a.batch * a.views
    images = torch.randn(nviews, a.in_channels, a.image_size, a.image_size)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    ms = []
    m = {}
    for _ in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        m = torch_twin.train_step(model, opt, images, a.batch, a.views, a.lam, dtype)
        ms.append(1e3 * (time.perf_counter() - t0))
    fwd = torch_twin.forward_flops(model, a.in_channels, a.image_size)
    return {"side": "torch", "mode": "step", "threads": torch.get_num_threads(), "views": nviews,
            "params": sum(p.numel() for p in model.parameters()), "ms": [round(x, 3) for x in ms[a.warmup:]],
            "median_ms": median(ms[a.warmup:]), "forward_flops_per_view": fwd, "last_loss": m.get("loss"),
            "maxrss_kb": maxrss_kb()}


def bench_loss(a):
    g = torch.Generator().manual_seed(2)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    y0 = torch.randn(a.P * a.K, a.D, generator=g)
    ms = []
    loss = None
    for _ in range(a.warmup + a.steps):
        y = y0.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss, _ = torch_twin.mmcr_loss(y, a.P, a.K, a.lam, dtype)
        loss.backward()
        ms.append(1e3 * (time.perf_counter() - t0))
    return {"side": "torch", "mode": "loss", "dtype": a.dtype, "threads": torch.get_num_threads(), "P": a.P,
            "K": a.K, "D": a.D, "lambda": a.lam, "ms": [round(x, 3) for x in ms[a.warmup:]],
            "median_ms": median(ms[a.warmup:]), "loss": float(loss), "maxrss_kb": maxrss_kb()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["step", "loss"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--proj-hidden", type=int, default=512)
    p.add_argument("--proj-out", type=int, default=128)
    p.add_argument("--P", type=int, default=256)
    p.add_argument("--K", type=int, default=2)
    p.add_argument("--D", type=int, default=128)
    p.add_argument("--lambda", dest="lam", type=float, default=0.0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                   help="precision of the decomposition (float64 as the C library)")
    p.add_argument("--warmup", type=int, default=-1)
    p.add_argument("--steps", type=int, default=-1)
    a = p.parse_args(argv)
    if a.warmup < 0:
        a.warmup = 2 if a.mode == "loss" else 1
    if a.steps < 1:
        a.steps = 10 if a.mode == "loss" else 3
    torch.set_num_threads(a.threads)
    r = bench_step(a) if a.mode == "step" else bench_loss(a)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
