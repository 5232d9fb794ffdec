#!/usr/bin/python3
"""Benchmark driver: libmmcr's training step and MMCR objective against the PyTorch twin.

Each measurement is a child process (bench_step for our side, torch_step.py for PyTorch), so
each side's peak resident memory (VmHWM, reported by the child itself) is that of one
configuration. The two sides alternate, round after round (the order flips every round), and the timed steps of all rounds
are pooled into one median per side. Input is synthetic (random normal), so data loading and
augmentation are excluded from both sides. Run through bench/run.sh.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

STEP_CONFIGS = [
    ("demo: ResNet-18 w16, 20x20x1 views, P=64, K=4, 512->128",
     dict(in_channels=1, image_size=20, width=16, batch=64, views=4, proj_hidden=512, proj_out=128)),
    ("ResNet-18 w64, 32x32x3, P=64, K=2, 512->128",
     dict(in_channels=3, image_size=32, width=64, batch=64, views=2, proj_hidden=512, proj_out=128)),
    ("first demo recipe: ResNet-18 w16, 28x28x1, P=128, K=2, 512->128",
     dict(in_channels=1, image_size=28, width=16, batch=128, views=2, proj_hidden=512, proj_out=128)),
]
LOSS_CONFIGS = [(256, 2, 128, 0.0), (1024, 2, 512, 0.0), (512, 16, 2048, 0.0), (2048, 2, 512, 0.0),
                (256, 8, 128, 0.1)]


def flags(d):
    out = []
    for k, v in d.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


WAIT_POLICY = None  # OMP_WAIT_POLICY for both sides (--omp-wait-policy); None: the runtime's default


def run_child(cmd, threads, timeout, log):
    env = dict(os.environ)
    if WAIT_POLICY:
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log("  timed out after %d s: %s" % (timeout, " ".join(cmd)))
        return None
    if p.returncode != 0:
        log("  failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.strip()[-2000:]))
        return None
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    log("  no JSON from: %s" % " ".join(cmd))
    return None


class Side:
    """Pooled samples of one side for one configuration."""

    def __init__(self):
        self.ms, self.rss, self.info = [], [], None

    def add(self, r):
        if r is None:
            return
        self.ms += r["ms"]
        self.rss.append(r["maxrss_kb"])
        self.info = r

    def med(self):
        return median(self.ms) if self.ms else None

    def rss_mb(self):
        return max(self.rss) / 1024.0 if self.rss else None


def alternate(sides, rounds, log):
    """sides: [(Side, cmd, threads)]; runs every side once per round, order flipped on odd rounds."""
    for r in range(rounds):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for side, cmd, threads, timeout in order:
            side.add(run_child(cmd, threads, timeout, log))


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def machine_info():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:  # not imported here: the driver stays small
        tv = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                            text=True, timeout=120).stdout.strip() or "not installed"
    except (OSError, subprocess.SubprocessError):
        tv = "not installed"
    load = os.getloadavg()
    return cpu, os.cpu_count(), tv, load


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, help="the bench_step executable")
    p.add_argument("--quick", action="store_true", help="one round, one timed step per process")
    p.add_argument("--threads", default="1,2", help="thread counts to measure (comma-separated)")
    p.add_argument("--rounds", type=int, default=0, help="alternation rounds (default 3, quick 1)")
    p.add_argument("--only", choices=["step", "demo", "loss", "all"], default="all",
                   help="demo: only the demo-recipe step configuration")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per child process")
    p.add_argument("--out", default=os.path.join(HERE, "results.md"))
    p.add_argument("--raw", default=None, help="also write every child's JSON here (JSON lines)")
    p.add_argument("--omp-wait-policy", choices=["active", "passive"], default=None,
                   help="set OMP_WAIT_POLICY for both sides (passive helps a lot on a busy machine)")
    a = p.parse_args(argv)
    global WAIT_POLICY
    WAIT_POLICY = a.omp_wait_policy
    rounds = a.rounds or (1 if a.quick else 3)
    threads = [int(t) for t in a.threads.split(",") if t]
    step_steps, loss_steps = (1, 3) if a.quick else (2, 10)
    torch_py = [sys.executable, os.path.join(HERE, "torch_step.py")]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    cpu, ncpu, tv, load0 = machine_info()
    started = datetime.datetime.now()
    raw = []

    # Reachable peak: cblas_sgemm 2048^3 in the same run, on each thread count.
    peak = {}
    for t in threads:
        log("[bench] sgemm 2048^3 on %d thread(s)" % t)
        s = Side()
        alternate([(s, [a.bin, "sgemm", "--threads", str(t), "--n", "2048"], t, a.timeout)], 1, log)
        if s.ms:
            peak[t] = 2.0 * 2048 ** 3 / (s.med() * 1e-3) / 1e9
        raw.append(s.info)

    step_rows, loss_rows = [], []
    if a.only in ("step", "demo", "all"):
        for name, cfg in (STEP_CONFIGS[:1] if a.only == "demo" else STEP_CONFIGS):
            for t in threads:
                log("[bench] step: %s, %d thread(s), %d round(s)" % (name, t, rounds))
                ours, gemm, theirs = Side(), Side(), Side()
                common = flags(cfg) + ["--threads", str(t), "--warmup", "1", "--steps", str(step_steps)]
                alternate([(ours, [a.bin, "step"] + common, t, a.timeout),
                           (theirs, torch_py + ["step"] + common, t, a.timeout),
                           (gemm, [a.bin, "step", "--conv", "gemm"] + common, t, a.timeout)], rounds, log)
                raw += [ours.info, gemm.info, theirs.info]
                step_rows.append((name, t, cfg, ours, gemm, theirs))
                log("  mmcr %s ms (GEMM convolutions %s ms), torch %s ms"
                    % (fmt(ours.med()), fmt(gemm.med()), fmt(theirs.med())))
    if a.only in ("loss", "all"):
        for P, K, D, lam in LOSS_CONFIGS:
            for t in threads:
                log("[bench] loss: P=%d K=%d D=%d lambda=%g, %d thread(s)" % (P, K, D, lam, t))
                ours, t32, t64 = Side(), Side(), Side()
                common = ["--P", str(P), "--K", str(K), "--D", str(D), "--lambda", str(lam), "--threads", str(t),
                          "--warmup", "2", "--steps", str(loss_steps)]
                alternate([(ours, [a.bin, "loss"] + common, t, a.timeout),
                           (t32, torch_py + ["loss", "--dtype", "float32"] + common, t, a.timeout),
                           (t64, torch_py + ["loss", "--dtype", "float64"] + common, t, a.timeout)], rounds, log)
                raw += [ours.info, t32.info, t64.info]
                loss_rows.append((P, K, D, lam, t, ours, t32, t64))
                log("  mmcr %s ms, torch f32 %s ms, torch f64 %s ms"
                    % (fmt(ours.med(), "%.2f"), fmt(t32.med(), "%.2f"), fmt(t64.med(), "%.2f")))

    rest = ""
    r = run_child([sys.executable, "-c", "import sys; sys.path.insert(0, %r); import torch_step, json; "
                   "print(json.dumps({'ms': [], 'maxrss_kb': torch_step.maxrss_kb()}))" % HERE], 1, a.timeout, log)
    if r:
        rest = " A PyTorch process that only imported torch holds %.0f MB." % (r["maxrss_kb"] / 1024.0)
    load1 = os.getloadavg()
    L = []
    L.append("# mmcr vs PyTorch: training step and MMCR objective")
    L.append("")
    L.append("Measured %s with `bench/run.sh%s` on %s (%d logical CPUs), PyTorch %s, Python %s. "
             "Load average %.2f at the start, %.2f at the end. %d alternating round(s) per row; medians "
             "over all timed steps of all rounds.%s"
             % (started.strftime("%Y-%m-%d %H:%M"), " --quick" if a.quick else "", cpu, ncpu, tv,
                platform.python_version(), load0[0], load1[0], rounds,
                " OMP_WAIT_POLICY=%s for both sides." % WAIT_POLICY.upper() if WAIT_POLICY else ""))
    busy = load0[0]  # before our first child; the end value includes our own last process
    if busy > 0.5 * (ncpu or 1):
        L.append("")
        L.append("**The machine was busy** (load average %.1f on %d CPUs before the first measurement, from other processes): the timings, "
                 "and above all the multi-thread rows, include waiting for CPUs; OpenMP barriers degrade sharply "
                 "when threads are descheduled. Compare the two sides within a row (they ran interleaved), not "
                 "across runs." % (busy, ncpu or 1))
    L.append("")
    L.append("Reachable peak (cblas_sgemm, 2048^3, OpenBLAS, same run): "
             + ", ".join("%d thread(s) %.1f GFLOP/s" % (t, peak[t]) for t in sorted(peak)) + ".")
    L.append("")
    if step_rows:
        L.append("## Training step (synthetic input, data loading excluded)")
        L.append("")
        L.append("One step = zero gradients, forward of all P*K views in one batch, MMCR loss (decomposition in "
                 "float64 on both sides), backward, Adam update. views/s counts each view as one image through "
                 "the network. GFLOP/s = 3 x forward FLOPs x views / step time, forward FLOPs = 2 x multiply-adds "
                 "of every convolution and linear layer (batch-norm, ReLU, pooling and the loss not counted). "
                 "Speed ratio = PyTorch time / mmcr time (above 1: mmcr is faster). RSS = peak resident memory of "
                 "the process (VmHWM). mmcr runs its convolutions through oneDNN (the default); the GEMM column "
                 "is the same step with `--conv gemm` (im2col + OpenBLAS sgemm), for comparison." + rest)
        L.append("")
        L.append("| configuration | threads | mmcr ms/step | PyTorch ms/step | mmcr views/s | PyTorch views/s "
                 "| speed ratio | mmcr GFLOP/s (% peak) | PyTorch GFLOP/s (% peak) | mmcr RSS MB | PyTorch RSS MB "
                 "| mmcr GEMM-conv ms/step (ratio) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, t, cfg, ours, gemm, theirs in step_rows:
            views = cfg["batch"] * cfg["views"]
            info = ours.info or theirs.info
            fl = 3.0 * info["forward_flops_per_view"] * views if info else None

            def rate(side):
                return views / (side.med() * 1e-3) if side.med() else None

            def gf(side):
                if not side.med() or fl is None:
                    return "-"
                g = fl / (side.med() * 1e-3) / 1e9
                return "%.1f (%.0f%%)" % (g, 100 * g / peak[t]) if t in peak else "%.1f" % g
            ratio = theirs.med() / ours.med() if ours.med() and theirs.med() else None
            gratio = theirs.med() / gemm.med() if gemm.med() and theirs.med() else None
            L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) |"
                     % (name, t, fmt(ours.med(), "%.0f"), fmt(theirs.med(), "%.0f"), fmt(rate(ours), "%.0f"),
                        fmt(rate(theirs), "%.0f"), fmt(ratio, "%.2f"), gf(ours), gf(theirs),
                        fmt(ours.rss_mb(), "%.0f"), fmt(theirs.rss_mb(), "%.0f"), fmt(gemm.med(), "%.0f"),
                        fmt(gratio, "%.2f")))
        L.append("")
        for name, t, cfg, ours, gemm, theirs in step_rows[::len(threads)]:
            info = ours.info or theirs.info
            if info:
                L.append("- %s: %.1f MFLOP forward per view, %d parameters."
                         % (name, info["forward_flops_per_view"] / 1e6, info["params"]))
        L.append("")
    if loss_rows:
        L.append("## MMCR objective alone (forward + backward)")
        L.append("")
        L.append("Input: (P*K) x D random normal embeddings. mmcr: mmcr_loss_forward_f32 + mmcr_loss_backward_f32 "
                 "(decomposition in float64). PyTorch: normalise, centroids, torch.linalg.svdvals (and the batched "
                 "per-datum svdvals when lambda > 0), autograd backward, with the decomposition in float32 and in "
                 "float64. Speed ratio = PyTorch time / mmcr time.")
        L.append("")
        L.append("| P | K | D | lambda | threads | mmcr ms | PyTorch f32 ms | PyTorch f64 ms | ratio vs f32 "
                 "| ratio vs f64 | mmcr RSS MB | PyTorch RSS MB |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for P, K, D, lam, t, ours, t32, t64 in loss_rows:
            r32 = t32.med() / ours.med() if ours.med() and t32.med() else None
            r64 = t64.med() / ours.med() if ours.med() and t64.med() else None
            rss_t = max([x for x in (t32.rss_mb(), t64.rss_mb()) if x is not None], default=None)
            L.append("| %d | %d | %d | %g | %d | %s | %s | %s | %s | %s | %s | %s |"
                     % (P, K, D, lam, t, fmt(ours.med(), "%.2f"), fmt(t32.med(), "%.2f"), fmt(t64.med(), "%.2f"),
                        fmt(r32, "%.2f"), fmt(r64, "%.2f"), fmt(ours.rss_mb(), "%.0f"), fmt(rss_t, "%.0f")))
        L.append("")
    text = "\n".join(L)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if a.raw:
        with open(a.raw, "w") as f:
            for r in raw:
                if r:
                    f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
