#!/usr/bin/python3
"""Cross-check of the PyTorch twin against the C engine through a checkpoint.

Loads a checkpoint (written by bench/torch_twin.py or by `mmcr train`) into the twin's model,
computes backbone features and projector embeddings of the first N test images with the
evaluation transform (normalised, no augmentation, BN in eval mode), runs `mmcr embed` on the
same checkpoint and images, and compares. Agreement to float32 rounding shows that tensor
names, layouts, the normalisation metadata and eval-mode BN mean the same on both sides.

    dev/check_twin_checkpoint.py --mmcr build/mmcr --checkpoint runs/twin/checkpoint.safetensors [--n 256]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_twin  # noqa: E402


def load_into_model(path):
    tensors, meta = torch_twin.safetensors_read(path)
    cfg = {k[len("config."):]: v for k, v in meta.items() if k.startswith("config.")}
    channels = int(meta["data.channels"])
    model = torch_twin.MMCRModel(channels, int(cfg["width"]), int(cfg["proj-hidden"]), int(cfg["proj-out"]),
                                 int(cfg["proj-bias"]))
    state = model.state_dict()
    missing = [n for n, _, _ in torch_twin.mmcr_tensor_table(model) if n not in tensors]
    if missing:
        raise SystemExit("checkpoint lacks %s" % ", ".join(missing[:5]))
    for n, _, _ in torch_twin.mmcr_tensor_table(model):
        if tuple(state[n].shape) != tuple(tensors[n].shape):
            raise SystemExit("tensor %s: shape %s in the checkpoint, %s in the twin"
                             % (n, tensors[n].shape, tuple(state[n].shape)))
        state[n] = torch.from_numpy(tensors[n].copy())
    model.load_state_dict(state)
    mean = [float(v) for v in meta["data.mean"].split(",")][:channels]
    std = [float(v) for v in meta["data.std"].split(",")][:channels]
    return model.eval(), cfg, mean, std


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mmcr", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--tol", type=float, default=1e-3, help="max relative error (max |diff| / max |value|)")
    a = p.parse_args()
    torch.set_num_threads(2)
    model, cfg, mean, std = load_into_model(a.checkpoint)
    x, _ = torch_twin.load_mnist_dir(cfg["data-dir"], "test")
    x = torch.from_numpy(x[:a.n]).float() / 255.0
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        feats = model(x, project=False).numpy()
        embs = model(x, project=True).numpy()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for project, ref in ((0, feats), (1, embs)):
            out = os.path.join(tmp, "e%d.npy" % project)
            cmd = [a.mmcr, "embed", "--checkpoint", a.checkpoint, "--limit", str(a.n), "--out", out, "--threads", "2"]
            if project:
                cmd.append("--project")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            got = np.load(out)
            if got.shape != ref.shape:
                print("%s: shape %s from mmcr embed, %s from the twin" % ("embed" if project else "features",
                                                                         got.shape, ref.shape))
                ok = False
                continue
            rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
            name = "projector embeddings" if project else "backbone features"
            print("%-22s n=%d dim=%d  max relative difference %.2e  %s"
                  % (name, a.n, ref.shape[1], rel, "ok" if rel <= a.tol else "MISMATCH"))
            ok &= rel <= a.tol
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
