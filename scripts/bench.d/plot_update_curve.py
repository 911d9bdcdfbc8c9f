#!/usr/bin/env python3
"""Plots `cargo bench -p podns-zone --bench update_curve` output: update cost vs Service size.

usage: plot_update_curve.py IN.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        data = json.load(f)
    points = data["points"]
    sizes = [p["endpoints"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in [("all", "every endpoint moved"), ("one", "one endpoint moved")]:
        ax.plot(sizes, [p[f"{key}_median_us"] / 1000 for p in points], marker="o", label=f"{label} (median)")
        ax.fill_between(
            sizes,
            [p[f"{key}_median_us"] / 1000 for p in points],
            [p[f"{key}_p90_us"] / 1000 for p in points],
            alpha=0.2,
        )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="1 ms target (1,000 endpoints)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("endpoints of the updated headless Service")
    ax.set_ylabel("upsert + snapshot, ms (median; band to p90)")
    ax.set_title(f"podns zone update cost vs Service size ({data['services']:,} Services × 10 endpoints zone)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
