"""PyTorch twin of dev/nn_bench.c: forward + backward time of ResNet-18 (CIFAR stem) + MMCR projector.

Usage: python3 dev/nn_bench_torch.py [threads=2] [batch=256] [width=16] [image=28] [channels=1] [iters=10]
Only for benchmarking; the build and the tests never need it."""
import sys
import time

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class Backbone(nn.Module):
    def __init__(self, cin, w):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        layers, c = [], w
        for s in range(4):
            co = w << s
            blocks = [BasicBlock(c, co, 2 if s else 1), BasicBlock(co, co, 1)]
            layers.append(nn.Sequential(*blocks))
            c = co
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def main():
    a = [int(v) for v in sys.argv[1:]] + [None] * 6
    threads, batch, width, image, chans, iters = [v if v is not None else d for v, d in
                                                 zip(a[:6], [2, 256, 16, 28, 1, 10])]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    backbone = Backbone(chans, width)
    projector = nn.Sequential(nn.Linear(8 * width, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(),
                              nn.Linear(512, 128, bias=False))
    model = nn.Sequential(backbone, projector).train()
    x = torch.rand(batch, chans, image, image)
    de = 1e-3 * torch.randn(batch, 128)
    tf = tb = 0.0
    best = 1e30
    for it in range(-2, iters):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=False)
        e = model(x)
        t1 = time.perf_counter()
        e.backward(de)
        t2 = time.perf_counter()
        if it < 0:
            continue
        tf += t1 - t0
        tb += t2 - t1
        best = min(best, t2 - t0)
    print(f"torch {torch.__version__} width {width} image {image}x{image}x{chans} batch {batch} threads {threads}")
    print(f"forward {1e3 * tf / iters:.1f} ms  backward {1e3 * tb / iters:.1f} ms  "
          f"total {1e3 * (tf + tb) / iters:.1f} ms (best {1e3 * best:.1f} ms)")


if __name__ == "__main__":
    main()
