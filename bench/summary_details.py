"""The generated detail tables of docs/benchmarks.md and docs/rooms/central.md (see
bench/summary.py). A cell whose figure the README's results table already shows reads
"README", so that each figure stands in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline import ROW_NAMES  # the benches' own loop names and stage order
from pipeline_gate import GATE_ROWS, STAGES
from summary_blocks import Results, _camera, _machine, _r, _table

README = "README"
# the (mode, loop) cells the README's results table shows
CLIP_IN_README = {("camera", "ours"): {"fps", "decisions", "embeddings", "p50", "p95"},
                  ("camera", "baseline"): {"fps", "embeddings", "p95"},
                  ("max", "ours"): {"fps"}, ("max", "baseline"): {"fps"}}
GATE_IN_README = {("camera", "ours"): {"fps", "decided", "embeddings", "p50", "p95"},
                  ("camera", "naive"): {"fps", "embeddings", "p95"},
                  ("max", "ours"): {"fps"}, ("max", "naive"): {"fps"}}


def provenance(results: Results, name: str) -> str:
    """One line: which results file, when, at which revision, under what load."""
    e = results[name]
    load = e.get("load_average")
    where = (f"load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the "
             "end" if load else "load not recorded")
    return (f"From `bench/results/{name}.json`: `{' '.join(e['command'])}`, "
            f"{e['measured_at'][:16].replace('T', ' ')} UTC, revision {e['revision']}, "
            f"{_machine(e)}, {where}.")


def _cell(value: object, shown: set[str], key: str) -> str:
    return README if key in shown else str(value)


def _mode(mode: str, fps: float) -> str:
    return "max" if mode == "max" else f"camera {fps:g} fps"


def pipeline_clip(results: Results) -> str:
    p = _r(results, "pipeline")
    rows = []
    for row in p["rows"]:
        for key, name in ROW_NAMES.items():
            r, shown = row[key], CLIP_IN_README.get((row["mode"], key), set())
            rows.append((_mode(row["mode"], p["camera_fps"]), name,
                         _cell(f"{r['fps']:.1f}", shown, "fps"),
                         _cell(r["decisions"], shown, "decisions"),
                         _cell(r["embeddings"], shown, "embeddings"),
                         _cell(r["latency_p50_ms"], shown, "p50"),
                         _cell(r["latency_p95_ms"], shown, "p95")))
    return provenance(results, "pipeline") + "\n\n" + _table(
        ("mode", "loop", "fps", "decisions", "embeddings", "latency p50 ms", "p95 ms"), rows)


def pipeline_gate(results: Results) -> str:
    p = _r(results, "pipeline")
    rows = []
    for row in p["gate_scene"]["rows"]:
        for key, name in GATE_ROWS.items():
            r, shown = row[key], GATE_IN_README.get((row["mode"], key), set())
            rows.append((_mode(row["mode"], p["camera_fps"]), name,
                         _cell(f"{r['fps']:.1f}", shown, "fps"),
                         _cell(f"{r['decided']} of {r['visits']}", shown, "decided"),
                         str(r["missed"]), _cell(r["embeddings"], shown, "embeddings"),
                         _cell(r["latency_p50_ms"], shown, "p50"),
                         _cell(r["latency_p95_ms"], shown, "p95"), str(r["latency_max_ms"])))
    return _table(("mode", "loop", "fps", "decided", "missed", "embeddings", "latency p50 ms",
                   "p95 ms", "max ms"), rows)


STAGE_WORDS = {"detect": "detect (ours: fr_detect at 320x240 + fr_landmark per face; naive: "
                         "YuNet at 1280x720)", "embed": "embed (mirror-averaged)"}


def pipeline_stages(results: Results) -> str:
    cam = _camera(_r(results, "pipeline")["gate_scene"]["rows"])
    ours, naive = cam["ours"]["stages"], cam["naive"]["stages"]
    order = [s for s in STAGES if s != "loop" and (s in ours or s in naive)]

    def ms(table: Mapping[str, Any], stage: str) -> str:
        return f"{table[stage]['per_frame_ms']:.2f}" if stage in table else "-"

    rows = [(STAGE_WORDS.get(s, s), ms(ours, s), ms(naive, s)) for s in order]
    rows.append(("**loop**", f"**{ms(ours, 'loop')}**", f"**{ms(naive, 'loop')}**"))
    return _table(("stage", "ours (pipeline)", "naive"), rows)


def pipeline_pad(results: Results) -> str:
    p = _r(results, "pipeline")
    rows = []
    for row in p["rows"]:
        for key in ("ours", "ours_pad"):
            r, shown = row[key], CLIP_IN_README.get((row["mode"], key), set())
            rows.append((_mode(row["mode"], p["camera_fps"]), ROW_NAMES[key],
                         _cell(f"{r['fps']:.1f}", shown, "fps"),
                         f"{README if 'p50' in shown else r['latency_p50_ms']} / "
                         f"{README if 'p95' in shown else r['latency_p95_ms']}",
                         f"{r['presented_to_open_p50_ms']} / {r['presented_to_open_p95_ms']}"))
    return _table(("mode", "loop", "fps", "latency p50 / p95 ms",
                   "presented -> gate command p50 / p95 ms"), rows)


TOKEN_WORDS = (("decode_unseal", "token decode + lookup + AES-GCM unseal", False),
               ("compare_1to1", "1:1 comparison", False),
               ("token_total", "**token total, added to the decision**", True),
               ("gallery_1toN", "peer: gallery 1:N match of the same probe", True),
               ("qr_read_code", "camera QR read, code in view (own thread)", False),
               ("qr_read_none", "camera QR read, no code (own thread)", False))


def pipeline_token(results: Results) -> str:
    costs = _r(results, "pipeline")["token_costs"]
    rows = [(words, README if shown else str(costs[key]["p50_ms"]),
             README if shown and key == "token_total" else str(costs[key]["p95_ms"]))
            for key, words, shown in TOKEN_WORDS]
    return _table(("what", "p50 ms", "p95 ms"), rows)


def gate_worst(results: Results) -> str:
    g = _r(results, "gate")
    words = {"fire alarm -> all lanes emergency_open": "fire alarm → all lanes `emergency_open`",
             "daemon SIGKILL -> all lanes manual": "daemon SIGKILL → all lanes `manual`",
             "baseline: status command round trip": "baseline: status command round trip"}
    rows = [(words.get(r["name"], r["name"]) + (f" (p95 {r['p95_ms']:.2f} ms)"
                                                 if r["limit_ms"] is None else ""),
             str(r["n"]), f"{r['max_ms']:.2f}") for r in g["rows"]]
    return provenance(results, "gate") + "\n\n" + _table(("measure", "trials", "max ms"), rows)


def thermal_detail(results: Results) -> str:
    t = _r(results, "thermal")["results"]
    rows = [(size, method, README if method.endswith("(ours)") else f"{r['ms_median']:.3f}",
             f"{r['ms_p95']:.3f}", f"{r['max_error_c']:.3f}")
            for size, methods in t.items() for method, r in methods.items()]
    return provenance(results, "thermal") + "\n\n" + _table(
        ("thermal", "method", "ms/face", "p95 ms", "max error C"), rows)


def telemetry_postgres(results: Results) -> str:
    p = _r(results, "telemetry_postgres")
    fo = p["failover"]

    readme_link = "[README](../../README.md#results-at-a-glance)"  # central.md is in docs/rooms

    def row(label: str, r: Mapping[str, Any], *, readme: bool = False) -> tuple[str, ...]:
        return (label, f"{r['windows']:,}", readme_link if readme else
                f"{r['windows_per_s']:,.0f}",
                str(r["loss"]), str(r["duplicates"]))

    s, f = p["stream"], p["fanin"]
    rows = [row(f"stream: {s['devices']} devices, 1 collector", s),
            row(f"fan-in: {f['devices']:,} devices, 1 collector", f, readme=True),
            row("fan-in, 2 collectors on one database", p["fanin_two_collectors"], readme=True),
            row(f"fan-in, 2 collectors, one SIGKILLed at {fo['killed_at_windows']:,} stored "
                "windows (its devices wait the 6 s liveness, then fail over: "
                f"{fo['switches']} reconnects)", fo),
            row("peer baseline, same run, same clients: the SQLite collector", p["sqlite_peer"],
                readme=True),
            ("peer baseline: a plain ZeroMQ ROUTER acking each window (no Curve, checks or "
             "store)", f"{f['windows']:,}", readme_link, "-", "-")]
    return provenance(results, "telemetry_postgres") + "\n\n" + _table(
        ("scenario", "windows", "win/s", "lost", "duplicated"), rows)


DETAIL_BLOCKS: dict[str, Callable[[Results], str]] = {
    "pipeline_clip": pipeline_clip, "pipeline_gate": pipeline_gate,
    "pipeline_stages": pipeline_stages, "pipeline_pad": pipeline_pad,
    "pipeline_token": pipeline_token, "gate_worst": gate_worst, "thermal": thermal_detail,
    "telemetry_postgres": telemetry_postgres}


def faces_eval(results: Results) -> str:
    e = _r(results, "faces_eval")
    row = (f"{e['detector']} + {e['embedder']} (default)", f"{e['detected']}/{e['images']}",
           README, f"{e['tar_at_far_1e-2']:.3f} ({e['threshold_at_far_1e-2']:.3f})",
           f"README ({e['threshold_at_far_1e-3']:.3f})",
           f"{e['best_accuracy']:.4f} ({e['best_accuracy_threshold']:.3f})",
           f"README; genuine min {e['genuine_min']:.3f}, impostor max {e['impostor_max']:.3f}")
    return provenance(results, "faces_eval") + "\n\n" + _table(
        ("detector + embedder", "detected", "AUC", "TAR@FAR 1e-2 (thr)", "TAR@FAR 1e-3 (thr)",
         "best acc. (thr)", "at the 1:1 threshold"), [row])


def lfw_detail(results: Results) -> str:
    f = _r(results, "lfw")
    thr = f["fold_thresholds"]
    return (provenance(results, "lfw") + f"\n\n{f['images']:,} images, {f['no_face']} without a "
            f"face; fold accuracies {min(f['fold_accuracies']) * 100:.2f}-"
            f"{max(f['fold_accuracies']) * 100:.2f} %, fold thresholds (chosen on the other 9 "
            f"folds) {min(thr):.3f}-{max(thr):.3f}; the FAR 1e-3 threshold "
            f"{f['threshold_at_far_1e-3']:.3f}; AUC {f['auc']:.4f}.")


DETAIL_BLOCKS |= {"faces_eval": faces_eval, "lfw": lfw_detail}


def store_detail(results: Results) -> str:
    s = _r(results, "store")
    top = max(m["templates"] for m in s["match"])
    rows = []
    for m in s["match"]:
        headline = m["templates"] == top
        rows.append((f"{m['templates']:,}", "two-stage" if m["two_stage"] else "exhaustive",
                     README if headline else f"{m['p50_ms']:.2f} / {m['p95_ms']:.2f}",
                     f"{m['cpu_p50_ms']:.2f}",
                     README if headline else f"{m['exhaustive_p50_ms']:.2f}",
                     f"{m['exhaustive_cpu_p50_ms']:.2f}",
                     README if headline else f"{m['naive_p50_ms']:.1f}",
                     f"{m['agreement_with_exhaustive']:.0%}"))
    match = _table(("templates", "gallery", "p50 / p95 ms", "CPU p50 ms", "exhaustive p50 ms",
                    "exhaustive CPU p50 ms", "naive loop p50 ms", "agrees with exhaustive"),
                   rows)
    p, o, e = s["purge"], s["cipher_overhead"], s["enrol"]
    ops = {"bulk_insert_s": "bulk insert", "single_commits_s": "single commits",
           "read_all_s": "read all", "delete_s": "delete"}
    other = [(f"purge of {p['expired_templates']:,} ({p['live_templates']:,} kept), CPU: "
              "empty-and-refill (now) / row by row (before)",
              f"{p['purge_cpu_s']:.2f} s / {p['rowwise_cpu_s']:.2f} s")]
    if "previous_s" in p:
        other.append(("first purge (4 KiB pages, one OR delete), wall / CPU",
                      f"{p['previous_s']:.2f} s / {p['previous_cpu_s']:.2f} s"))
    other += [("enrolment (grant + enrol, two durable commits)", f"{e['per_s']:.0f} /s"),
              ("SQLCipher vs plain sqlite3, by operation",
               ", ".join(f"{ops.get(k, k)} {v:.1f}x" for k, v in o["ratio"].items()))]
    return (provenance(results, "store") + "\n\n" + match + "\n\n"
            + _table(("measure", "result"), other))


DETAIL_BLOCKS["store"] = store_detail
