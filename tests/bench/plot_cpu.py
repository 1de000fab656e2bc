#!/usr/bin/python3
"""Draws cpu_compare.py's measurements as an SVG: per model, tfm / llama.cpp for prompt processing and
generation (1.0 = parity), and generation as a fraction of the decode roofline for both programs.

    plot_cpu.py RESULTS.json OUT.svg

Plain SVG text, no plotting library."""
import json
import sys

W, H = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 110


def bars(rows, series, y_max, title, x0, width):
    """One panel of grouped bars; series = [(label, colour, fn(row) -> value)]."""
    out = []
    plot_h = H - TOP - BOTTOM
    out.append(f'<text x="{x0 + width / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>')
    for k in range(0, int(y_max * 4) + 1):
        v = k / 4
        y = TOP + plot_h * (1 - v / y_max)
        out.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{v:.2f}</text>')
    y1 = TOP + plot_h * (1 - 1 / y_max)
    out.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="#555" '
               'stroke-dasharray="4 3"/>')
    group = width / len(rows)
    bw = group * 0.8 / len(series)
    for i, r in enumerate(rows):
        gx = x0 + i * group + group * 0.1
        for j, (_, colour, fn) in enumerate(series):
            v = min(fn(r), y_max)
            h = plot_h * v / y_max
            out.append(f'<rect x="{gx + j * bw:.1f}" y="{TOP + plot_h - h:.1f}" width="{bw - 1:.1f}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{fn(r):.2f}</title></rect>')
        cx = gx + group * 0.4
        out.append(f'<text x="{cx:.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-40 {cx:.1f} {TOP + plot_h + 14})">{r["model"]}</text>')
    for j, (label, colour, _) in enumerate(series):
        ly = H - 22 + 0 * j
        lx = x0 + j * 150
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" font-size="11">{label}</text>')
    return out


def main():
    data = json.load(open(sys.argv[1]))
    rows = data["rows"]
    half = (W - LEFT - RIGHT) / 2 - 30
    ratio_max = max(1.5, max(max(r["tfm"][k][0] / r["llama_cpp"][k][0] for k in ("pp", "tg")) for r in rows))
    ratio_max = int(ratio_max * 4 + 1) / 4
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    svg += bars(rows, [("prompt (pp)", "#4c78a8", lambda r: r["tfm"]["pp"][0] / r["llama_cpp"]["pp"][0]),
                       ("generation (tg)", "#f58518", lambda r: r["tfm"]["tg"][0] / r["llama_cpp"]["tg"][0])],
                ratio_max, f"tfm / llama.cpp, {data['threads']} threads (dashed: parity)", LEFT, half)
    svg += bars(rows, [("tfm", "#54a24b", lambda r: r["tfm"]["tg"][0] / r["roofline_tg"]),
                       ("llama.cpp", "#b279a2", lambda r: r["llama_cpp"]["tg"][0] / r["roofline_tg"])],
                1.0, "generation / roofline (read bandwidth measured per model)", LEFT + half + 70, half)
    svg.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
