#!/usr/bin/python3
"""PyTorch twin of `mmcr train` for the demo recipe.

The same model (ResNet-18 with the CIFAR stem, width multiplier, MLP projector), the same
objective (MMCR: minus the nuclear norm of the centroids of the L2-normalised views, computed
in double as the C library does), the same optimiser and schedule (torch.optim.Adam +
OneCycleLR without momentum cycling) and the same augmentation parameters (torchvision
transforms), so that a run of this script and a run of `mmcr train` with the same options
can be compared: it writes metrics.jsonl with the C trainer's keys and a checkpoint in the
mmcr format, which `mmcr eval --checkpoint` evaluates with the same code as the C encoder.

The options are read from the C option table (src/dist/train_options.c), so defaults and
names are the C ones. Options the twin does not implement are rejected when they differ
from their default. Only for development: the build and the tests never need PyTorch.

    /usr/bin/python3 bench/torch_twin.py --out runs/twin [--epochs 2 --batch 128 ...]
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPTIONS_SOURCE = os.path.join(ROOT, "src", "dist", "train_options.c")

# ----------------------------------------------------------------------------------------
# option table (parsed from the C source so that names and defaults cannot drift)

_OPT_RE = re.compile(
    r'\{\s*"([a-z0-9-]+)"\s*,\s*MMCR_OPT_(INT|DOUBLE|STRING|BOOL|CHOICE)\s*,\s*OFF\(\w+\)\s*,\s*"([^"]*)"\s*,'
    r'\s*([^,]+?)\s*,\s*([^,]+?)\s*,\s*(NULL|"[^"]*")', re.S)


def c_options(path=OPTIONS_SOURCE):
    """[(name, type, default_text, choices or None)] in table order."""
    with open(path) as f:
        src = f.read()
    opts = []
    for m in _OPT_RE.finditer(src):
        name, kind, default, _lo, _hi, choices = m.groups()
        opts.append((name, kind, default, None if choices == "NULL" else choices.strip('"').split("|")))
    if not opts:
        raise SystemExit("torch_twin: no options found in %s" % path)
    return opts


def _parse_value(kind, text, choices, name):
    if kind == "INT":
        return int(text)
    if kind == "DOUBLE":
        return float(text)
    if kind == "BOOL":
        t = str(text).lower()
        if t in ("1", "true", "yes", "on"):
            return 1
        if t in ("0", "false", "no", "off"):
            return 0
        raise SystemExit("torch_twin: option --%s expects a boolean, got '%s'" % (name, text))
    if kind == "CHOICE":
        if text not in choices:
            raise SystemExit("torch_twin: option --%s must be one of %s" % (name, "|".join(choices)))
        return text
    return text


def format_option(kind, value):
    """The text src/dist/checkpoint.c writes for an option value."""
    if kind in ("INT", "BOOL"):
        return "%d" % int(value)
    if kind == "DOUBLE":
        return "%.17g" % float(value)
    return str(value)


def parse_args(argv=None):
    opts = c_options()
    p = argparse.ArgumentParser(description="PyTorch twin of `mmcr train` (options as the C trainer)")
    for name, kind, default, choices in opts:
        if kind == "BOOL":
            p.add_argument("--" + name, nargs="?", const="1", default=default)
        else:
            p.add_argument("--" + name, default=default)
    p.add_argument("--workers", type=int, default=1, help="data-loader worker processes (twin only)")
    p.add_argument("--loss-dtype", choices=["float64", "float32"], default="float64",
                   help="precision of the decomposition (the C library always uses float64)")
    a = p.parse_args(argv)
    cfg = {}
    for name, kind, default, choices in opts:
        cfg[name] = _parse_value(kind, getattr(a, name.replace("-", "_")), choices, name)
    cfg["_kinds"] = {name: kind for name, kind, _, _ in opts}
    cfg["_order"] = [name for name, _, _, _ in opts]
    cfg["_defaults"] = {name: _parse_value(kind, d, ch, name) for name, kind, d, ch in opts}
    return cfg, a


UNSUPPORTED = {  # option: values the twin implements
    "dataset": ("fashion-mnist", "mnist"),
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("onecycle", "constant"),
}


def check_supported(cfg):
    for k, ok in UNSUPPORTED.items():
        if cfg[k] not in ok:
            raise SystemExit("torch_twin: --%s %s is not implemented by the twin (supported: %s)"
                             % (k, cfg[k], ", ".join(ok)))
    if cfg["resume"]:
        raise SystemExit("torch_twin: --resume is not implemented by the twin")
    if cfg["nesterov"] and cfg["optimizer"] != "sgd":
        raise SystemExit("torch_twin: --nesterov applies to sgd only")


# ----------------------------------------------------------------------------------------
# model: ResNet-18 (CIFAR stem) + projector, parameter names as the C tensor table

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(out + sc)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 conv, no max-pool."""

    def __init__(self, in_channels=1, width=16, blocks=(2, 2, 2, 2), zero_init_residual=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for i, nb in enumerate(blocks):
            cout = width << i
            layer = []
            for b in range(nb):
                layer.append(BasicBlock(cin, cout, (1 if i == 0 else 2) if b == 0 else 1))
                cin = cout
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layer))
        self.feature_dim = cin
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class MMCRModel(nn.Module):
    def __init__(self, in_channels=1, width=16, proj_hidden=512, proj_out=128, proj_bias=False,
                 zero_init_residual=False):
        super().__init__()
        self.backbone = ResNet18(in_channels, width, zero_init_residual=zero_init_residual)
        f = self.backbone.feature_dim
        if proj_hidden > 0:
            self.projector = nn.Sequential(nn.Linear(f, proj_hidden, bias=bool(proj_bias)), nn.BatchNorm1d(proj_hidden),
                                           nn.ReLU(inplace=True), nn.Linear(proj_hidden, proj_out, bias=bool(proj_bias)))
        else:
            self.projector = nn.Sequential(nn.Linear(f, proj_out, bias=bool(proj_bias)))

    def forward(self, x, project=True):
        h = self.backbone(x)
        return self.projector(h) if project else h


def model_from_config(cfg, in_channels):
    return MMCRModel(in_channels, cfg["width"], cfg["proj-hidden"], cfg["proj-out"], cfg["proj-bias"])


def mmcr_tensor_table(model):
    """(C name, tensor, is_buffer) in the order of the C parameter table then buffer table."""
    params = [(n, t, False) for n, t in model.named_parameters()]
    bufs = [(n, t, True) for n, t in model.named_buffers() if not n.endswith("num_batches_tracked")]
    return params + bufs


def forward_flops(model, in_channels, image_size):
    """FLOPs of one forward pass for one image: 2 * multiply-adds of every conv and linear
    layer (batch-norm, ReLU, pooling and the residual adds are not counted)."""
    macs = [0]

    def conv_hook(m, inp, out):
        macs[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m, inp, out):
        macs[0] += m.in_features * m.out_features

    hs = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hs.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hs.append(m.register_forward_hook(lin_hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_channels, image_size, image_size))
    model.train(was)
    for h in hs:
        h.remove()
    return 2.0 * macs[0]


# ----------------------------------------------------------------------------------------
# objective

def mmcr_loss(y, P, K, lam=0.0, dtype=torch.float64):
    """y: (P*K) x D, datum-major. Returns (loss tensor, metrics dict) as mmcr_loss_forward."""
    D = y.shape[1]
    z = F.normalize(y.to(dtype), dim=1, eps=1e-12).reshape(P, K, D)
    mu = z.mean(dim=1)
    s = torch.linalg.svdvals(mu)
    glob = s.sum()
    loss = -glob
    local = torch.zeros((), dtype=dtype)
    if lam > 0:
        local = lam * torch.linalg.svdvals(z).sum(dim=1).mean()
        loss = loss + local
    bound = math.sqrt(P * min(P, D))
    with torch.no_grad():
        g = float(glob)
        metrics = {"loss": float(loss), "ppe": (bound - g) / bound, "global_nuclear_norm": g,
                   "local_term": float(local), "mean_centroid_norm2": float((mu * mu).sum(dim=1).mean())}
    return loss, metrics


# ----------------------------------------------------------------------------------------
# data: IDX files read with gzip + numpy, torchvision augmentations

def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit("torch_twin: %s is not an IDX uint8 file" % path)
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(shape)


def load_mnist_dir(d, split):
    pre = "train" if split == "train" else "t10k"

    def find(stem):
        for suffix in ("", ".gz"):
            p = os.path.join(d, stem + suffix)
            if os.path.exists(p):
                return p
        raise SystemExit("torch_twin: no %s[.gz] in %s" % (stem, d))
    x = read_idx(find(pre + "-images-idx3-ubyte"))
    y = read_idx(find(pre + "-labels-idx1-ubyte")).astype(np.int64)
    return x[:, None, :, :].copy(), y  # N x 1 x H x W


def dataset_stats(x):
    """Per-channel mean and (population) std of pixels/255, as mmcr_dataset_stats."""
    x = x.astype(np.float64) / 255.0
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


class GaussianBlurSigma:
    """Blur with sigma ~ U[lo, hi] and kernel 2*ceil(3 sigma)+1 per draw (the C default)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __call__(self, img):
        import torchvision.transforms.functional as TF
        sigma = float(torch.empty(1).uniform_(self.lo, self.hi))
        k = 2 * math.ceil(3 * sigma) + 1
        return TF.gaussian_blur(img, [k, k], [sigma, sigma])


def build_transform(cfg, channels, mean, std):
    import torchvision.transforms as T
    s = cfg["image-size"]
    t = [T.RandomResizedCrop(s, scale=(cfg["crop-scale-min"], cfg["crop-scale-max"]),
                             ratio=(cfg["crop-ratio-min"], cfg["crop-ratio-max"]),
                             interpolation=T.InterpolationMode.BILINEAR, antialias=True)]
    if cfg["flip-p"] > 0:
        t.append(T.RandomHorizontalFlip(cfg["flip-p"]))
    if cfg["jitter-p"] > 0 and (cfg["brightness"] or cfg["contrast"] or cfg["saturation"] or cfg["hue"]):
        t.append(T.RandomApply([T.ColorJitter(cfg["brightness"], cfg["contrast"], cfg["saturation"], cfg["hue"])],
                               p=cfg["jitter-p"]))
    if channels == 3 and cfg["gray-p"] > 0:
        t.append(T.RandomGrayscale(cfg["gray-p"]))
    if cfg["blur-p"] > 0:
        t.append(T.RandomApply([GaussianBlurSigma(cfg["blur-sigma-min"], cfg["blur-sigma-max"])], p=cfg["blur-p"]))
    if cfg["solarize-p"] > 0:
        t.append(T.RandomSolarize(0.5, p=cfg["solarize-p"]))
    t.append(T.Normalize([float(m) for m in mean], [float(v) for v in std]))
    if cfg["erase-p"] > 0:
        t.append(T.RandomErasing(p=cfg["erase-p"], scale=(cfg["erase-scale-min"], cfg["erase-scale-max"]),
                                 ratio=(0.3, 3.3), value=0))
    return T.Compose(t)


class MultiViewDataset(torch.utils.data.Dataset):
    """Item i: its K augmented views stacked (K x C x S x S); a batch of P items reshaped to
    (P*K) x C x S x S is datum-major (the views of one image are consecutive rows)."""

    def __init__(self, x, transform, views):
        self.x, self.transform, self.views = x, transform, views

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = torch.from_numpy(self.x[i]).float().div_(255.0)
        return torch.stack([self.transform(img) for _ in range(self.views)])


def eval_image_size(cfg):
    """--eval-image-size (main() resolves 0 to the images' own side, as the C trainer does)."""
    return cfg["eval-image-size"]


def recalibrate_bn(model, x, mean, std, cfg, chunk=250):
    """As src/dist/bn_recalibrate.c: the batch-norm running statistics re-estimated at the
    evaluation size, the plain average over equal batches of the first N training images (whole
    images, normalised, no labels), weights frozen."""
    size = eval_image_size(cfg)
    n = min(cfg["bn-recalibrate"], len(x))
    chunk = min(chunk, n)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = plain average over the batches
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    model.train()
    with torch.no_grad():
        for b in range(n // chunk):
            imgs = torch.from_numpy(x[b * chunk:(b + 1) * chunk]).float().div_(255.0)
            if imgs.shape[-1] != size:
                imgs = nn.functional.interpolate(imgs, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=True)
            model((imgs - mean_t) / std_t)
    for m in bns:
        m.momentum = 0.1


def _worker_threads(_):
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------
# checkpoint: safetensors written by hand, layout and metadata as src/dist/checkpoint.c

def safetensors_write(path, tensors, metadata):
    """tensors: [(name, float32 numpy array)] in file order; metadata: {str: str}."""
    header = {"__metadata__": dict(metadata)}
    off = 0
    blobs = []
    crc = 0
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
        crc = zlib.crc32(blobs[-1], crc)
    # As src/io/safetensors.c: zlib's CRC-32 of the whole data section, 8 lower-case hex digits.
    header["__metadata__"]["mmcr.data_crc32"] = "%08x" % crc
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def safetensors_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(info["shape"])
    return out, meta


def checkpoint_metadata(cfg, step, channels, mean, std):
    m3 = [float(mean[0]), float(mean[1]) if channels > 1 else 0.0, float(mean[2]) if channels > 2 else 0.0]
    s3 = [float(std[0]), float(std[1]) if channels > 1 else 1.0, float(std[2]) if channels > 2 else 1.0]
    meta = {"format": "mmcr-checkpoint", "version": "1", "step": "%d" % step, "optimizer.step": "%d" % step,
            "data.channels": "%d" % channels,
            "data.mean": ",".join("%.9g" % np.float32(v) for v in m3),
            "data.std": ",".join("%.9g" % np.float32(v) for v in s3)}
    for name in cfg["_order"]:
        meta["config." + name] = format_option(cfg["_kinds"][name], cfg[name])
    return meta


def save_checkpoint(path, model, cfg, step, channels, mean, std):
    tensors = [(n, t.detach().cpu().numpy()) for n, t, _ in mmcr_tensor_table(model)]
    safetensors_write(path, tensors, checkpoint_metadata(cfg, step, channels, mean, std))


# ----------------------------------------------------------------------------------------
# training

def make_optimizer(cfg, params):
    lr, wd = cfg["lr"], cfg["weight-decay"]
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(cfg["momentum"], 0.999), eps=1e-8, weight_decay=wd)
    if cfg["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(cfg["momentum"], 0.999), eps=1e-8, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd, nesterov=bool(cfg["nesterov"]))


def make_scheduler(cfg, opt, total):
    if cfg["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=total, pct_start=cfg["pct-start"],
                                                   anneal_strategy="cos", cycle_momentum=False, div_factor=25.0,
                                                   final_div_factor=1e4)
    return None


BUDGET_PROBE_STEPS = 20  # as src/dist/trainer.c: steps timed before --time-budget re-plans the schedule


def replan_for_budget(cfg, opt, sched, step, total, elapsed):
    """--time-budget as the C trainer: after BUDGET_PROBE_STEPS steps, shorten the plan so that the
    whole schedule fits in the budget. Returns (total, sched), the scheduler advanced to step."""
    fit = int(cfg["time-budget"] / (elapsed / BUDGET_PROBE_STEPS))
    if not step < fit < total:
        return total, sched
    print("[twin] --time-budget %.0f s: %.2f s/step, planning %d of the %d steps"
          % (cfg["time-budget"], elapsed / BUDGET_PROBE_STEPS, fit, total), file=sys.stderr, flush=True)
    new = make_scheduler(cfg, opt, fit)
    if new is not None:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(step):
                new.step()
    return fit, new


def train_step(model, opt, images, P, K, lam, loss_dtype):
    """One MMCR step: all P*K views in one forward (BN statistics over every view)."""
    opt.zero_grad(set_to_none=True)
    y = model(images)
    loss, metrics = mmcr_loss(y, P, K, lam, loss_dtype)
    loss.backward()
    opt.step()
    return metrics


def set_threads(n):
    n = n if n > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def main(argv=None):
    cfg, a = parse_args(argv)
    check_supported(cfg)
    threads = set_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    out = cfg["out"]
    os.makedirs(out, exist_ok=True)

    x, _ = load_mnist_dir(cfg["data-dir"], "train")
    if 0 < cfg["train-subset"] < len(x):
        x = x[:cfg["train-subset"]]
    N, C = x.shape[0], x.shape[1]
    P, K = cfg["batch"], cfg["views"]
    if N < P:
        raise SystemExit("torch_twin: option --batch (%d) is larger than the training set (%d images)" % (P, N))
    if cfg["eval-image-size"] <= 0:
        cfg["eval-image-size"] = x.shape[-1]  # recorded resolved in the checkpoint, as the C trainer does
    mean, std = dataset_stats(x)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    ds = MultiViewDataset(x, build_transform(cfg, C, mean, std), K)
    gen = torch.Generator().manual_seed(cfg["seed"])
    loader = torch.utils.data.DataLoader(ds, batch_size=P, shuffle=True, drop_last=True, generator=gen,
                                         num_workers=a.workers, persistent_workers=a.workers > 0,
                                         worker_init_fn=_worker_threads if a.workers > 0 else None)

    model = model_from_config(cfg, C)
    model.train()
    per_epoch = N // P
    total = cfg["max-steps"] if cfg["max-steps"] > 0 else int(math.ceil(cfg["epochs"] * per_epoch))
    if total <= 0:
        raise SystemExit("torch_twin: options --epochs and --max-steps are both 0: nothing to train")
    opt = make_optimizer(cfg, model.parameters())
    sched = make_scheduler(cfg, opt, total)
    loss_dtype = torch.float64 if a.loss_dtype == "float64" else torch.float32
    nviews = P * K

    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({k: cfg[k] for k in cfg["_order"]}, f)
        f.write("\n")
    nparams = sum(p.numel() for p in model.parameters())
    print("[twin] training on %s: %d images %dx%dx%d, P=%d K=%d D=%d, %d steps (%d per epoch), %d parameters, "
          "%d threads" % (cfg["dataset"], N, C, x.shape[2], x.shape[3], P, K, cfg["proj-out"], total, per_epoch,
                          nparams, threads), file=sys.stderr, flush=True)
    ckpt = os.path.join(out, "checkpoint.safetensors")
    metrics_f = open(os.path.join(out, "metrics.jsonl"), "w")
    step = 0
    t0 = time.time()
    t_window, step_window = t0, 0
    m = {}
    done = False
    while not done:
        for batch in loader:
            images = batch.reshape(nviews, *batch.shape[2:])
            if cfg["time-budget"] > 0 and step == BUDGET_PROBE_STEPS:
                total, sched = replan_for_budget(cfg, opt, sched, step, total, time.time() - t0)
            lr = opt.param_groups[0]["lr"]
            m = train_step(model, opt, images, P, K, cfg["lambda"], loss_dtype)
            if not math.isfinite(m["loss"]):
                raise SystemExit("torch_twin: step %d: the loss is not finite (training diverged)" % step)
            if sched is not None:
                sched.step()
            step += 1
            now = time.time()
            last = step == total
            # The budget is a plan, not a hard stop, except far past it (as the C trainer).
            out_of_time = (cfg["time-budget"] > 0 and now - t0 >= 1.5 * cfg["time-budget"]) or \
                (cfg.get("stop-at", 0) > 0 and step >= cfg["stop-at"])
            if step % cfg["log-every"] == 0 or last or out_of_time:
                rate = (step - step_window) * nviews / (now - t_window + 1e-12)
                t_window, step_window = now, step
                metrics_f.write(
                    '{"step":%d,"epoch":%.4f,"loss":%.9g,"ppe":%.9g,"global_nuclear_norm":%.9g,'
                    '"local_term":%.9g,"mean_centroid_norm2":%.9g,"lr":%.9g,"images_per_s":%.6g,'
                    '"elapsed_s":%.3f}\n' % (step, step / per_epoch, m["loss"], m["ppe"], m["global_nuclear_norm"],
                                             m["local_term"], m["mean_centroid_norm2"], lr, rate, now - t0))
                metrics_f.flush()
                if not cfg["quiet"]:
                    print("[twin] step %d/%d  epoch %.2f  loss %.4f  ppe %.4f  |mu|^2 %.3f  lr %.2e  %.0f img/s"
                          % (step, total, step / per_epoch, m["loss"], m["ppe"], m["mean_centroid_norm2"], lr, rate),
                          file=sys.stderr, flush=True)
            if last and cfg["bn-recalibrate"] > 0 and eval_image_size(cfg) != cfg["image-size"]:
                recalibrate_bn(model, x, mean, std, cfg)
                model.train()
            if step % cfg["checkpoint-every"] == 0 or last or out_of_time:
                save_checkpoint(ckpt, model, cfg, step, C, mean, std)
            if last or out_of_time:
                done = True
                break
    metrics_f.close()
    secs = time.time() - t0
    summary = {"steps": step, "seconds": round(secs, 3), "final_loss": m.get("loss"), "final_ppe": m.get("ppe"),
               "final_mean_centroid_norm2": m.get("mean_centroid_norm2"),
               "images_per_second": step * nviews / (secs + 1e-12), "checkpoint": ckpt}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
