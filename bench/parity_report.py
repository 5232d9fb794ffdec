#!/usr/bin/python3
"""Parity report: the table (probe / kNN / 1%-label accuracy of both encoders, final loss and
PPE, speed) and the loss and PPE curves of `mmcr train` against the PyTorch twin.

    parity_report.py RUN_DIR [--publish DOCS_MD]

RUN_DIR holds mmcr/ and torch/ (run directories with metrics.jsonl) and eval_mmcr.json,
eval_torch.json (`mmcr eval` results). Writes RUN_DIR/parity_table.md and
RUN_DIR/parity_curves.png; --publish also copies the PNG beside DOCS_MD and replaces the part
of DOCS_MD between the markers <!-- parity:begin --> and <!-- parity:end -->.
"""
import argparse
import json
import math
import os
import shutil
import sys


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def pct(v):
    return "-" if v is None or v < 0 else "%.2f" % (100 * v)


def plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for name, rows, style in curves:
        steps = [r["step"] for r in rows]
        axes[0].plot(steps, [r["loss"] for r in rows], style, label=name, linewidth=1.3)
        axes[1].plot(steps, [r["ppe"] for r in rows], style, label=name, linewidth=1.3)
    axes[0].set_title("MMCR loss (minus nuclear norm of the centroids)")
    axes[1].set_title("PPE (bound - ||M||_*) / bound")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def views_per_s(rows, _):
    """Whole-run rate from the metrics: the mean of the logged windows, weighted by time."""
    num = den = 0.0
    prev_t = 0.0
    for r in rows:
        dt = r["elapsed_s"] - prev_t
        num += r["images_per_s"] * dt
        den += dt
        prev_t = r["elapsed_s"]
    return num / den if den > 0 else 0.0


def table(m_rows, t_rows, e_m, e_t):
    L = ["| | mmcr (C) | PyTorch twin | difference (C - twin) |", "|---|---|---|---|"]

    def acc_row(label, key, se_key=None):
        a = e_m.get(key) if e_m else None
        b = e_t.get(key) if e_t else None
        if a is None or b is None or a < 0 or b < 0:
            L.append("| %s | %s | %s | - |" % (label, pct(a), pct(b)))
            return
        if se_key and e_m.get(se_key) is not None and e_t.get(se_key) is not None:
            se = math.hypot(e_m[se_key], e_t[se_key])
            L.append("| %s | %s ± %.2f | %s ± %.2f | %+.2f ± %.2f |"
                     % (label, pct(a), 100 * e_m[se_key], pct(b), 100 * e_t[se_key], 100 * (a - b), 100 * se))
        else:
            L.append("| %s | %s | %s | %+.2f |" % (label, pct(a), pct(b), 100 * (a - b)))

    acc_row("linear probe top-1 (%)", "linear_top1", "linear_top1_se")
    acc_row("kNN top-1 (%)", "knn_top1")
    acc_row("1%-label probe top-1 (%)", "low_label_top1")
    lm, lt = m_rows[-1], t_rows[-1]
    L.append("| steps | %d | %d | |" % (lm["step"], lt["step"]))
    L.append("| final loss (last logged step) | %.3f | %.3f | %+.3f |" % (lm["loss"], lt["loss"], lm["loss"] - lt["loss"]))
    L.append("| final PPE | %.4f | %.4f | %+.4f |" % (lm["ppe"], lt["ppe"], lm["ppe"] - lt["ppe"]))

    def mean_last(rows, key, n=10):
        tail = rows[-n:]
        return sum(r[key] for r in tail) / len(tail)
    a, b = mean_last(m_rows, "loss"), mean_last(t_rows, "loss")
    L.append("| mean loss, last 10 logged steps | %.3f | %.3f | %+.3f |" % (a, b, a - b))
    L.append("| training wall time (s) | %.0f | %.0f | |" % (lm["elapsed_s"], lt["elapsed_s"]))
    L.append("| training views/s (steps x P x K / wall time) | %.0f | %.0f | |"
             % (views_per_s(m_rows, e_m), views_per_s(t_rows, e_t)))
    return "\n".join(L)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--publish", default=None, help="docs markdown file whose parity section is replaced")
    p.add_argument("--note", default="", help="a line printed under the table (the recipe, the command)")
    a = p.parse_args(argv)
    d = a.run_dir
    m_rows = read_jsonl(os.path.join(d, "mmcr", "metrics.jsonl"))
    t_rows = read_jsonl(os.path.join(d, "torch", "metrics.jsonl"))
    e_m = read_json(os.path.join(d, "eval_mmcr.json"))
    e_t = read_json(os.path.join(d, "eval_torch.json"))
    tab = table(m_rows, t_rows, e_m, e_t)
    if a.note:
        tab += "\n\n" + a.note
    png = os.path.join(d, "parity_curves.png")
    plot([("mmcr (C)", m_rows, "-"), ("PyTorch twin", t_rows, "--")], png)
    tab_md = tab + "\n\n![loss and PPE of both runs vs step](parity_curves.png)\n"
    with open(os.path.join(d, "parity_table.md"), "w") as f:
        f.write(tab_md)
    print(tab)
    if a.publish:
        docs_dir = os.path.dirname(os.path.abspath(a.publish))
        shutil.copyfile(png, os.path.join(docs_dir, "parity_curves.png"))
        with open(a.publish) as f:
            text = f.read()
        b, e = "<!-- parity:begin -->", "<!-- parity:end -->"
        i, j = text.find(b), text.find(e)
        if i < 0 or j < i:
            print("parity_report: no %s ... %s section in %s" % (b, e, a.publish), file=sys.stderr)
            return 1
        text = text[:i + len(b)] + "\n" + tab_md + text[j:]
        with open(a.publish, "w") as f:
            f.write(text)
        print("[parity] updated %s and %s" % (a.publish, os.path.join(docs_dir, "parity_curves.png")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
