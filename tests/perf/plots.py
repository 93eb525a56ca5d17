"""PNG plots the benchmarks draw from their own results (matplotlib, `pip install -e '.[bench]'`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines

import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"spot-extender": "tab:green", "webhook": "tab:blue", "native": "tab:red", "capacity-spread": "tab:orange"}


def throughput_bars(report: dict, path: Path) -> None:
    results = report["results"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for offset, field, name, colour in ((-width / 2, "pods_per_second", "backlog (scheduler alone timed)", "tab:blue"),
                                        (width / 2, "rollout_pods_per_second", "rollout (from Deployment creation)",
                                         "tab:orange")):
        xs = [i + offset for i in range(len(results))]
        bars = ax.bar(xs, [r.get(field) or 0 for r in results], width, label=name, color=colour)
        for bar, r in zip(bars, results):
            ax.annotate(f"{r.get(field)}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(results)), [r["case"] for r in results])
    ax.set_ylabel("pods bound per second")
    ax.set_title(f"Scheduling throughput: {report['nodes']} nodes, {report['pods']} pods")
    ax.text(0.99, 0.80, "\n".join(f"{r['case']}: {r['label']}" for r in results), transform=ax.transAxes,
            ha="right", va="top", fontsize=7)
    ax.legend(loc="upper right", fontsize=8)
    ax.margins(y=0.45)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def availability_timeline(report: dict, path: Path) -> None:
    """Ready replicas and spot share through the all-at-once reclaim, t = 0 at the notice."""
    desired = sum(w["replicas"] for w in report["workloads"])
    fig, (ready_ax, share_ax) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for result in report["results"]:
        events = result["events"]
        start = next(e["t"] for e in events if e["event"] == "reclaim all spot")
        returned = next((e["t"] for e in events if e["event"] == "spot returns"), None)
        points = [s for s in result["timeline"] if s["t"] >= start - 15]
        xs = [s["t"] - start for s in points]
        colour = COLOURS.get(result["approach"])
        ready_ax.plot(xs, [s["ready_total"] / desired for s in points], label=result["approach"], color=colour)
        share_ax.plot(xs, [s["spot_share"] for s in points], label=result["approach"], color=colour)
        if returned is not None:
            for ax in (ready_ax, share_ax):
                ax.axvline(returned - start, color=colour, linestyle=":", linewidth=1)
    notice = report["settings"]["notice"]
    for ax in (ready_ax, share_ax):
        ax.axvline(0, color="black", linestyle="--", linewidth=1)
        ax.axvline(notice, color="black", linestyle="-.", linewidth=1)
        ax.grid(alpha=0.3)
    ready_ax.set_ylabel("ready replicas / desired")
    ready_ax.set_ylim(0, 1.05)
    share_ax.set_ylabel("spot share\n(on spot / sum(R - k))")
    share_ax.set_xlabel("seconds since the termination notice to every spot node "
                        "(dashed: notice, dash-dot: nodes gone, dotted: spot returns)")
    ready_ax.set_title("Reclaim of every spot node at once")
    ready_ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def autoscaled_timeline(report: dict, path: Path) -> None:
    """Ready replicas, spot share and cost rate with Karpenter, t = 0 when every spot NodeClaim is deleted."""
    desired = sum(w["replicas"] for w in report["workloads"])
    fig, (ready_ax, share_ax, cost_ax) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for result in report["results"]:
        start = next(e["t"] for e in result["events"] if e["event"] == "delete every spot NodeClaim")
        points = [s for s in result["timeline"] if s["t"] >= start - 30]
        xs = [s["t"] - start for s in points]
        colour = COLOURS.get(result["approach"])
        ready_ax.plot(xs, [s["ready_total"] / desired for s in points], label=result["approach"], color=colour)
        share_ax.plot(xs, [s["spot_share"] for s in points], label=result["approach"], color=colour)
        cost_ax.plot(xs, [s["cost_per_hour"] for s in points], label=result["approach"], color=colour)
    for ax in (ready_ax, share_ax, cost_ax):
        ax.axvline(0, color="black", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
    ready_ax.set_ylabel("ready replicas / desired")
    ready_ax.set_ylim(0, 1.05)
    share_ax.set_ylabel("spot share\n(on spot / sum(R - k))")
    cost_ax.set_ylabel("cost per hour\n(spot 0.3, on-demand 1.0\nper vCPU)")
    cost_ax.set_xlabel("seconds since every spot NodeClaim was deleted (dashed)")
    ready_ax.set_title("Karpenter provisions every node: all spot lost at once")
    ready_ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pacing_timeline(report: dict, path: Path) -> None:
    """Ready replicas through one reclaim per start-up time, surge and paced against at once; t = 0 at the notice."""
    startups = sorted({r["startup"] for r in report["results"]})
    fig, axes = plt.subplots(len(startups), 1, figsize=(9, 3.2 * len(startups)), sharex=True, squeeze=False)
    notice = report["settings"]["notice"]
    for ax, startup in zip(axes[:, 0], startups):
        for result in (r for r in report["results"] if r["startup"] == startup):
            desired = sum(w["replicas"] for w in result["workloads"])
            points = result["timeline"]
            ax.plot([p["t"] for p in points], [p["ready_total"] / desired for p in points], label=result["mode"],
                    color={"paced": "tab:green", "surge": "tab:blue"}.get(result["mode"], "tab:red"))
        ax.axvline(0, color="black", linestyle="--", linewidth=1)
        ax.axvline(notice, color="black", linestyle="-.", linewidth=1)
        ax.set_ylabel("ready / desired")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"pod start-up {startup:g} s", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[-1, 0].set_xlabel("seconds since the interruption notice to every spot node (dashed: notice, "
                           "dash-dot: nodes gone)")
    fig.suptitle("Drain with a surge, paced to the notice, and at once")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def soak_timeline(report: dict, path: Path) -> None:
    """The extender process through the soak: memory, descriptors and tasks, and index diffs."""
    samples = report["samples"]
    minutes = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 8), sharex=True)
    for ax, field, label in zip(axes, ("rss_mb", "fds", "tasks", "pods"),
                                ("RSS MB", "open fds", "asyncio tasks", "pods (namespace)")):
        ax.plot(minutes, [s[field] for s in samples], marker=".", color="tab:blue")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    bad = [m for m, s in zip(minutes, samples) if s["index_diffs"]]
    axes[0].plot(bad, [s["rss_mb"] for s in samples if s["index_diffs"]], "rx", label="index differed from a list")
    for event in report["events"]:
        if event["event"].startswith("kube-apiserver stopped"):
            for ax in axes:
                ax.axvline(event["t"] / 60, color="black", linestyle="--", linewidth=1)
    axes[-1].set_xlabel("minutes (dashed: kube-apiserver stopped)")
    if bad:
        axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Soak: {report['settings']['minutes']:g} minutes of churn")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
