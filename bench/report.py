"""The readable table `make bench` prints from its results."""

from __future__ import annotations

from typing import Any


def _ok(met: object) -> str:
    return "met" if met else "MISSED"


def table(results: dict[str, Any]) -> str:
    """One block of rows per size (an old results file without sizes: one block)."""
    sizes: dict[str, Any] = results.get("sizes") or {"current": results}
    rows: list[tuple[str, str, str, str]] = []
    for name, r in sizes.items():
        c = r.get("counts", {})
        where = f"[{name}: {c.get('targets', '?')} targets, {c.get('alerts', '?')} alerts, "
        rows.append((where + f"{c.get('indices', '?')} indices]", "", "", ""))
        rows += _rows(r)
    return _render(rows, results)


def _rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    if "refresh" in r:
        f = r["refresh"]
        rows.append((
            "1 refresh vs raw GETs",
            f"{f['opskit_s']['median'] * 1000:.0f} ms vs {f['raw_s']['median'] * 1000:.0f} ms",
            f"{f['ratio']:.2f}x", f"<= {f.get('target_ratio', 1.3):g}x  {_ok(f['met'])}",
        ))  # fmt: skip
        if "cpu_ratio" in f:
            rows.append((
                "1 refresh CPU (this process)",
                f"{f['opskit_cpu_s']['median'] * 1000:.0f} ms vs "
                f"{f['raw_cpu_s']['median'] * 1000:.0f} ms",
                f"{f['cpu_ratio']:.2f}x", "(for the causes; not a target)",
            ))  # fmt: skip
    if "tui" in r:
        t = r["tui"]
        limit = t.get("latency_target_ms", 100)
        for screen in ("overview", "targets"):
            lat = t[f"latency_ms_{screen}"]
            rows.append((
                f"2 key latency ({screen})", f"p50 {lat['p50']:.0f} ms, n={lat['n']}",
                f"p99 {lat['p99']:.0f} ms", f"p99 < {limit:g} ms  {_ok(lat['p99'] < limit)}",
            ))  # fmt: skip
    # issue 16: at least 4x with 20 ms added per request, no slower on loopback
    for key, label, target in (
        ("grafana", "3 grafana", 1.0),
        ("grafana_20ms", "3 grafana +20ms/req", 4.0),
    ):
        if key not in r:
            continue
        g = r[key]
        for phase in ("backup", "restore"):
            p = g[phase]
            ops, gbt = p["opskit"], p["grafana_backup_tool"]
            rows.append((
                f"{label} {phase} ({g['objects']['dashboards']} dash)",
                f"opskit {ops['seconds']:.2f} s vs gbt {gbt['seconds']:.2f} s",
                f"{p['speedup']:.2f}x faster",
                f">= {target:g}x  {_ok(p['speedup'] >= target)}; complete {ops['complete']}; "
                f"requests {ops.get('requests', '?')} vs {gbt.get('requests', '?')}",
            ))  # fmt: skip
    if "retention" in r:
        t = r["retention"]
        o, c = t["opskit"], t["curator"]
        rows.append((
            f"4 retention ({o['deleted']} deleted)",
            f"opskit {o['seconds']:.1f} s/{o['requests']} req vs curator "
            f"{c['seconds']:.1f} s/{c['requests']} req",
            f"{t['speedup']:.1f}x faster", f"no slower, fewer req  {_ok(t['met'])}",
        ))  # fmt: skip
    if "startup" in r:
        s = r["startup"]
        rows.append((
            "5 opskit --help", f"first {s['help_first_s']:.2f} s",
            f"median {s['help_s']['median']:.2f} s",
            f"< 0.1 s  {_ok(s['help_s']['median'] < 0.1)}",
        ))  # fmt: skip
        rows.append((
            "5 status --json vs raw process",
            f"{s['status_s']['median']:.2f} s vs {s['raw_fetch_process_s']['median']:.2f} s",
            f"{s['status_ratio']:.2f}x", f"<= 1.5x  {_ok(s['status_ratio'] <= 1.5)}",
        ))  # fmt: skip
    if "fleet" in r:  # issue 19
        f = r["fleet"]
        rows.append((
            f"7 fleet refresh ({f['contexts']} contexts)",
            f"{f['opskit_s']['median'] * 1000:.0f} ms vs {f['raw_s']['median'] * 1000:.0f} ms",
            f"{f['ratio']:.2f}x", f"<= {f['target_ratio']:g}x  {_ok(f['met'])}",
        ))  # fmt: skip
    if "tui" in r:
        t = r["tui"]
        rows.append((
            "6 TUI peak RSS", f"{t['loaded']['targets']} targets loaded",
            f"{t['peak_rss_mb']:.0f} MB",
            f"< {t.get('memory_target_mb', 150):g} MB  {_ok(t['memory_met'])}",
        ))  # fmt: skip
    return rows


def _render(rows: list[tuple[str, str, str, str]], r: dict[str, Any]) -> str:
    # a row with only its first cell is a heading (the size), not measured against widths
    body = [row for row in rows if any(row[1:])]
    widths = [max(len(row[i]) for row in body) for i in range(4)] if body else [0] * 4
    head = ("measure", "figures", "result", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        if any(row[1:])
        else row[0]
        for row in rows
    ]
    m = r.get("machine", {})
    lines.append(
        f"\nmachine: {m.get('cpu')} x{m.get('cores')}, {m.get('memory_gib')} GiB, "
        f"Python {m.get('python')}, load {m.get('load_avg_at_start')}; "
        f"total {r.get('total_s', 0) / 60:.1f} min"
    )
    return "\n".join(lines)
