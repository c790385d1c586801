"""The journey benchmark's figures, drawn again from its JSON results (matplotlib, PNG):

- ``<prefix>-load.png``: payments/s and a journey's server time (p50, p99) against the customers at once, a line
  per count of web processes (from a series: ``bench.journey.scaleout``);
- ``<prefix>-scaleout.png``: payments/s against the web processes per party, and the cores each part kept busy
  while the customers paid (stacked), with the machine's, every process on it counted;
- ``<prefix>-cpu.png``: the CPU a payment costs, by part (stacked bars): the single runs given (a before and an
  after), then the series' levels.

    .venv/bin/python -m bench.journey.plot --series bench/results/journey-scaleout-postgres.json \\
        --runs bench/results/journey-{sqlite,postgres}-{before,client,both}.json --prefix docs/benchmarks-journey
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .__main__ import PARTS, RESULTS, ROOT

DEFAULT_SERIES = RESULTS / "journey-scaleout-postgres.json"
DEFAULT_RUNS = [RESULTS / f"journey-{db}-{label}.json" for db in ("sqlite", "postgres")
                for label in ("before", "client", "both")]
RUN_NAMES = {"before": "before", "client": "one HTTP\nclient", "both": "+ persistent\nconnections"}
COLOURS = {"biller": "#1f77b4", "gateway": "#ff7f0e", "bank": "#2ca02c", "switch": "#d62728",
           "switch-iso": "#9467bd", "issuer": "#8c564b", "worker": "#e377c2", "smtp": "#7f7f7f",
           "postgres": "#17becf", "load-generator": "#bcbd22"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def caption(series: dict) -> str:
    runs = series["runs"]
    loads = [v for r in runs for v in (r.get("load_average_before", [None])[0], r.get("load_average_after",
                                                                                     [None])[0]) if v is not None]
    when = min(r["when"] for r in runs)[:16].replace("T", " ")
    meta = series["machine"]
    database = "PostgreSQL" if series["database"] == "postgres" else "SQLite"
    load = f", load average {min(loads):.0f} to {max(loads):.0f} (shared machine)" if loads else ""
    return f"{database}, {runs[0]['journeys']} journeys per level, {meta['cores']} cores{load}, {when} UTC"


def plot_load(series: dict, path: Path) -> None:
    plt = _pyplot()
    figure, (rate, latency) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=80)
    webs = sorted({r["web"]["processes"] for r in series["runs"]})
    customers = sorted({r["customers"] for r in series["runs"]})
    for web in webs:
        runs = sorted((r for r in series["runs"] if r["web"]["processes"] == web), key=lambda r: r["customers"])
        xs = [r["customers"] for r in runs]
        name = f"{web} web process{'es' if web > 1 else ''} per party"
        line, = rate.plot(xs, [r["payments_per_second"] for r in runs], marker="o", label=name)
        latency.plot(xs, [r["journey_server_ms"]["p50"] for r in runs], marker="o", color=line.get_color(),
                     label=f"{name}, p50")
        latency.plot(xs, [r["journey_server_ms"]["p99"] for r in runs], marker="x", linestyle="--",
                     color=line.get_color(), label=f"{name}, p99")
    for axis in (rate, latency):
        axis.set_xscale("log", base=2)
        axis.set_xticks(customers, [str(c) for c in customers])
        axis.set_xlabel("customers paying at once")
        axis.grid(True, alpha=0.3)
    rate.set_ylabel("payments / s")
    rate.set_ylim(bottom=0)
    latency.set_ylabel("journey's server time (ms)")
    latency.set_ylim(bottom=0)
    rate.legend(fontsize=7)
    latency.legend(fontsize=6)
    figure.suptitle(f"Whole payments over HTTP against load (server time: the steps without the SMS waits)\n"
                    f"{caption(series)}", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


def plot_scaleout(series: dict, path: Path) -> None:
    plt = _pyplot()
    by_customers: dict[int, list[dict]] = {}
    for r in series["runs"]:
        by_customers.setdefault(r["customers"], []).append(r)
    customers, runs = max(by_customers.items(), key=lambda item: (len(item[1]), item[0]))
    runs.sort(key=lambda r: r["web"]["processes"])
    webs = [r["web"]["processes"] for r in runs]
    labels = [str(w) for w in webs]
    figure, (rate, busy) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=80)
    rate.plot(labels, [r["payments_per_second"] for r in runs], marker="o")
    rate.set_ylabel("payments / s")
    rate.set_ylim(bottom=0)
    rate.set_xlabel(f"web processes per party ({customers} customers at once)")
    rate.grid(True, alpha=0.3)
    bottom = [0.0] * len(runs)
    for part in (*PARTS, "load-generator"):
        values = [r.get("cores_busy", {}).get(part, 0.0) for r in runs]
        if any(values):
            busy.bar(labels, values, bottom=bottom, color=COLOURS.get(part), label=part, width=0.6)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    busy.plot(labels, [r.get("cores_busy", {}).get("machine", 0.0) for r in runs], marker="_", markersize=30,
              linestyle="none", color="black", label="machine (every process)")
    busy.axhline(series["machine"]["cores"], color="red", linewidth=0.8, linestyle=":", label="cores")
    busy.set_ylabel("cores busy while paying (CPU s / s)")
    busy.set_xlabel("web processes per party")
    busy.set_ylim(0, series["machine"]["cores"] * 1.15)
    busy.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(f"Scale-out of the web servers\n{caption(series)}", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


def plot_cpu(runs: list[tuple[str, dict]], path: Path, title: str) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(10, 4.2), dpi=80)
    labels = [name for name, _r in runs]
    bottom = [0.0] * len(runs)
    for part in PARTS:
        values = [r["cpu_ms_per_payment"].get(part, 0.0) for _n, r in runs]
        if any(values):
            axis.bar(labels, values, bottom=bottom, color=COLOURS.get(part), label=part, width=0.65)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for x, (_name, r) in enumerate(runs):
        axis.text(x, r["cpu_ms_per_payment"]["total"] + 10, f"{r['cpu_ms_per_payment']['total']:.0f}",
                  ha="center", fontsize=7)
    axis.set_ylabel("server CPU ms per payment")
    axis.tick_params(axis="x", labelsize=7)
    axis.grid(True, axis="y", alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axis.set_title(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


def markdown(series: dict) -> str:
    """The series' levels as a Markdown table (docs/benchmarks.md)."""
    runs = series["runs"]
    head = ["", *(f"{r['web']['processes']} web × {r['customers']} cust." for r in runs)]
    rows = [
        ("payments/s", [f"{r['payments_per_second']:.2f}" for r in runs]),
        ("completed / errors", [f"{r['completed']} / {r['errors']['count']}" for r in runs]),
        ("journey's server time p50 / p99 (ms)",
         [f"{r['journey_server_ms']['p50']:.0f} / {r['journey_server_ms']['p99']:.0f}" for r in runs]),
        ("card step p50 / p99 (ms)", [f"{r['steps']['card']['p50_ms']:.0f} / {r['steps']['card']['p99_ms']:.0f}"
                                      for r in runs]),
        ("SMS wait p50 (ms, the worker's lag)",
         [f"{r['steps']['sms-wait']['p50_ms']:.0f}" if "sms-wait" in r["steps"] else "–" for r in runs]),
        *((f"CPU ms per payment: {part}", [f"{r['cpu_ms_per_payment'].get(part, 0):.1f}" for r in runs])
          for part in (*PARTS, "total")),
        ("cores busy: Tasdid's processes", [f"{r['cores_busy']['total']:.2f}" for r in runs]),
        ("cores busy: the load generator", [f"{r['cores_busy']['load-generator']:.2f}" for r in runs]),
        ("cores busy: the whole machine", [f"{r['cores_busy']['machine']:.2f}" for r in runs]),
        ("busiest part (cores)", [max(((p, v) for p, v in r["cores_busy"].items() if p in PARTS),
                                      key=lambda item: item[1]) for r in runs]),
        ("gunicorn processes (4 parties), PostgreSQL processes",
         [f"{sum(r['web']['processes_by_part'].get(p, 0) for p in ('biller', 'gateway', 'bank', 'switch'))}, "
          f"{r['web']['processes_by_part'].get('postgres', 0)}" for r in runs]),
        ("SQL statements, HTTP requests per payment", [f"{r['sql_statements_per_payment']:.0f}, "
                                                       f"{r['http']['server_per_payment']:.1f}" for r in runs]),
        ("ceiling: ping req/s", [f"{r['ceiling']['requests_per_second']:.0f}" if r.get("ceiling") else "–"
                                 for r in runs]),
        ("load average before → after", [f"{r['load_average_before'][0]:.1f} → {r['load_average_after'][0]:.1f}"
                                         for r in runs]),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in rows:
        cells = [f"{v[0]} {v[1]:.2f}" if isinstance(v, tuple) else v for v in values]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def run_name(path: Path, report: dict) -> str:
    database = "SQLite" if report["database"] == "sqlite" else "PostgreSQL"
    label = path.stem.rsplit("-", 1)[-1]
    return f"{database}\n{RUN_NAMES.get(label, report.get('label') or label)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.journey.plot", description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES, help="a bench.journey.scaleout JSON")
    parser.add_argument("--runs", type=Path, nargs="*", default=None,
                        help="single runs' JSON for the CPU bars (default: the before/after in bench/results)")
    parser.add_argument("--prefix", default=str(ROOT / "docs" / "benchmarks-journey"),
                        help="the PNGs' path without -load.png, -scaleout.png, -cpu.png")
    parser.add_argument("--markdown", action="store_true", help="print the series as a Markdown table, draw nothing")
    args = parser.parse_args(argv)
    series = json.loads(args.series.read_text())
    if args.markdown:
        print(markdown(series))
        return 0
    run_paths = [p for p in DEFAULT_RUNS if p.exists()] if args.runs is None else args.runs
    drawn = [Path(f"{args.prefix}-load.png"), Path(f"{args.prefix}-scaleout.png"), Path(f"{args.prefix}-cpu.png")]
    plot_load(series, drawn[0])
    plot_scaleout(series, drawn[1])
    bars = [(run_name(p, r), r) for p in run_paths for r in [json.loads(p.read_text())]]
    singles = sorted({f"{r['customers']} customers, {r['journeys']} journeys" for _n, r in bars})
    database = "PostgreSQL" if series["database"] == "postgres" else "SQLite"
    bars += [(f"{database}\n{r['web']['processes']} web ×\n{r['customers']} cust.", r) for r in series["runs"]]
    plot_cpu(bars, drawn[2], "Server CPU per payment by part: "
                             + (f"the single runs ({'; '.join(singles)}), then " if singles else "")
                             + f"the series' levels\n(series: {caption(series)})")
    for path in drawn:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
