#!/usr/bin/python3
"""Draws the training curves of the bundled model as an SVG file (no plotting library needed).

    plot_loss.py examples/models/kjv-llama.json docs/kjv-llama-loss.svg

Reads the record evaluate.py writes: the kept run's training loss (mean of every 10 steps, dropout
on), its validation loss (every 50 steps, dropout off), the other sweep runs' validation losses, and
marks the step whose checkpoint was kept. Losses are mean negative log-likelihoods per token (nats);
perplexity = exp(loss).
"""
import json
import math
import sys

W, H = 800, 440
LEFT, RIGHT, TOP, BOTTOM = 64, 214, 40, 52
Y_MIN, Y_MAX = 1.5, 5.0
COLORS = {"train": "#1f77b4", "valid": "#d62728", "other": ["#9e9e9e", "#bdbdbd", "#7f7f7f", "#c7c7c7"]}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        rec = json.load(f)
    tr = rec["training"]
    x_max = max(s for s, _ in tr["train_curve"])
    x_max = int(math.ceil(x_max / 500.0) * 500)

    def px(step):
        return LEFT + (W - LEFT - RIGHT) * step / x_max

    def py(loss):
        return TOP + (H - TOP - BOTTOM) * (Y_MAX - loss) / (Y_MAX - Y_MIN)

    def path(points, color, width, dash=None):
        d = " ".join(f"{'M' if i == 0 else 'L'}{px(s):.1f},{py(v):.1f}" for i, (s, v) in enumerate(points))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return (f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{width}"{extra} '
                f'clip-path="url(#plot)"/>')

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
           f'height="{H - TOP - BOTTOM}"/></clipPath>',
           f'<text x="{LEFT}" y="22" font-size="14">kjv-llama: loss per token (nats) during training, '
           f'{rec["training"]["n_params"] / 1e6:.1f} M parameters</text>']
    for i in range(0, x_max + 1, 500):
        out.append(f'<line x1="{px(i):.1f}" y1="{TOP}" x2="{px(i):.1f}" y2="{H - BOTTOM}" stroke="#eee"/>')
        out.append(f'<text x="{px(i):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{i}</text>')
    y = Y_MIN
    while y <= Y_MAX + 1e-9:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{W - RIGHT}" y2="{py(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.1f}</text>')
        y += 0.5
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
               f'fill="none" stroke="#444"/>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 14}" text-anchor="middle">step '
               f'({tr["tokens_per_step"]} tokens each)</text>')
    out.append(f'<text x="16" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2})">loss (nats / token)</text>')

    legend = []
    sweep = rec.get("sweep", {})
    winner = sweep.get("winner")
    others = [(n, r) for n, r in sorted(sweep.get("runs", {}).items()) if n != winner and r.get("valid_curve")]
    for i, (name, run) in enumerate(others):
        color = COLORS["other"][i % len(COLORS["other"])]
        out.append(path(run["valid_curve"], color, 1.2, "4 3"))
        drop = run["command"].split("--dropout ")[1].split()[0] if "--dropout " in run["command"] else "?"
        legend.append((color, f"valid, run {name} (dropout {drop})", "4 3"))
    out.append(path(tr["train_curve"], COLORS["train"], 1.4))
    out.append(path(tr["valid_curve"], COLORS["valid"], 2.2))
    drop = tr["args"]["dropout"]
    legend = [(COLORS["train"], f"train, kept run (dropout {drop})", None),
              (COLORS["valid"], "valid, kept run", None)] + legend
    best = tr["best_step"]
    out.append(f'<line x1="{px(best):.1f}" y1="{TOP}" x2="{px(best):.1f}" y2="{H - BOTTOM}" stroke="#2ca02c" '
               f'stroke-dasharray="2 2"/>')
    out.append(f'<text x="{px(best) + 4:.1f}" y="{TOP + 14}" fill="#2ca02c">kept: step {best}</text>')
    for i, (color, label, dash) in enumerate(legend):
        ly = TOP + 10 + 20 * i
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{W - RIGHT + 12}" y1="{ly}" x2="{W - RIGHT + 36}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="2"{extra}/>')
        out.append(f'<text x="{W - RIGHT + 40}" y="{ly + 4}" font-size="11">{label}</text>')
    ev = rec["evaluation"]
    notes = [f"held-out perplexity {ev['pytorch']['perplexity']:.2f}",
             f"(loss {math.log(ev['pytorch']['perplexity']):.3f}), {ev['heldout_ids']} ids",
             f"y axis clipped at {Y_MAX:.1f}"]
    for i, line in enumerate(notes):
        out.append(f'<text x="{W - RIGHT + 12}" y="{TOP + 30 + 20 * len(legend) + 16 * i}" font-size="11">'
                   f'{line}</text>')
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
