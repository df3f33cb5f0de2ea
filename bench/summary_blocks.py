"""The generated blocks of the docs, one function each, from the recorded results (see
bench/summary.py). A block reads only `results[NAME]["result"]` (a bench's --json object) and
the run's provenance beside it; every figure it prints comes from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Results = Mapping[str, Mapping[str, Any]]


def _r(results: Results, name: str) -> Mapping[str, Any]:
    return results[name]["result"]


def _run(entry: Mapping[str, Any]) -> str:
    """The run column: day measured and the 1-minute load average at its start."""
    load = entry.get("load_average")
    if not load:
        return f"{entry['measured_at'][:10]}, load not recorded"
    return f"{entry['measured_at'][:10]}, load {load['start'][0]:.1f}"


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _machines(results: Results) -> str:
    """The box most rows ran on, then any other box with the runs it measured."""
    runs: dict[str, list[str]] = {}
    for name, entry in sorted(results.items()):
        runs.setdefault(_machine(entry), []).append(name)
    main, *others = sorted(runs, key=lambda m: -len(runs[m]))
    return main + "".join(f"; the run(s) {', '.join(f'`{n}`' for n in runs[m])}: {m}"
                          for m in others)


def _target(text: str, met: bool) -> str:
    """A target cell: the target and whether this run met it."""
    return f"{text}: met" if met else f"{text}: **missed**"


def _machine(entry: Mapping[str, Any]) -> str:
    m = entry["machine"]
    return (f"{m['cores']} cores ({m['cpu']}, {m['arch']}, {m.get('simd') or 'SIMD unknown'}), "
            f"{m['memory_gib']} GiB")


# ---------------------------------------------------------------------- README: at a glance
def _vision(results: Results) -> list[tuple[str, ...]]:
    v = _r(results, "vision")
    by = {d["name"].split(" ")[0]: d for d in v["detectors"]}
    base, ours, yunet = by["cv2.FaceDetectorYN"], by["ultraface_landmark68"], by["yunet"]
    run = _run(results["vision"])
    return [
        ("detect, 640x480 frame, default `ultraface_landmark68` (`bench/vision.py`)",
         f"p50 {ours['p50_ms']:.1f} ms, p95 {ours['p95_ms']:.1f} ms",
         f"`cv2.FaceDetectorYN` + YuNet {base['p50_ms']:.1f} ms p50: "
         f"**{ours['speedup']:.2f}x** faster",
         _target(f">= {v['targets']['default_speedup_min']:g}x",
                 ours["speedup"] >= v["targets"]["default_speedup_min"]), run),
        ("detect, our YuNet decoder", f"p50 {yunet['p50_ms']:.1f} ms",
         f"{yunet['speedup']:.2f}x faster than `cv2.FaceDetectorYN`", "", run),
        ("embed `fr_feature`, 512-d, with its mirror image (two passes a face)",
         f"{v['embed_ms_per_face_single']:.1f} ms a face "
         f"({v['embed_ms_per_face_batch']:.1f} ms in batches of 8)"
         + ("; face and mirror on two sessions at once" if v["embed_parallel_mirror"] else ""),
         f"one session, face and mirror in one batch "
         f"{v['embed_ms_per_face_single_one_session']:.1f} ms",
         _target(f"<= {v['targets']['embed_ms_max']:g} ms",
                 v["embed_ms_per_face_single"] <= v["targets"]["embed_ms_max"]), run),
    ]


def _faces(results: Results) -> list[tuple[str, ...]]:
    e, lfw = _r(results, "faces_eval"), _r(results, "lfw")
    return [
        (f"face verification, `../shared/faces` ({e['images']} photos, all pairs)",
         f"AUC {e['auc']:.5f}, TAR {_pct(e['tar_at_far_1e-3'])} at FAR 1e-3; at the 1:1 "
         f"threshold {e['threshold']:g}: TAR {_pct(e['tar_at_threshold'])}, FAR "
         f"{e['far_at_threshold']:.1e}", "", "", _run(results["faces_eval"])),
        (f"**LFW** standard 10-fold protocol ({lfw['pairs']:,} pairs)",
         f"**{_pct(lfw['accuracy_mean'], 2)} ± {_pct(lfw['accuracy_std'], 2)}** accuracy, TAR "
         f"{_pct(lfw['tar_at_far_1e-3'])} at FAR 1e-3", "OpenCV SFace reports 99.40 % "
         "(published, not run here)", "", _run(results["lfw"])),
    ]


def _search(results: Results, name: str, target: str) -> tuple[str, ...]:
    s = _r(results, name)
    op, f = s["operating_point"], s["fnir_at_fpir"]
    k = s["enrol_images"]
    return (f"**1:N search**, `../shared/lfw`, {k} photo{'s' if k > 1 else ''} enrolled a "
            "person (`python -m edge faces search`, through the product path)",
            f"gallery {s['gallery']}, {s['mated']:,} mated and {s['nonmated']:,} non-mated "
            f"searches; rank-1 {_pct(s['rank1'])}; FNIR {_pct(f['0.003'])} / {_pct(f['0.01'])} "
            f"at FPIR 0.003 / 0.01; at the operating point (target FPIR "
            f"{op['target_fpir']:g}): threshold {op['threshold']:.3f}, FPIR {op['fpir']:.4f}, "
            f"FNIR {_pct(op['fnir'])}", "", target, _run(results[name]))


def _thermal(results: Results) -> tuple[str, ...]:
    t = _r(results, "thermal")["results"]
    small, big = t["160x120"], t["320x240"]
    ours, peak, med = "canthus (ours)", "face-box max (peer)", "face-box median3 max (peer)"
    return ("thermal canthus estimate (`bench/thermal.py`)",
            f"{small[ours]['ms_median']:.2f} ms a face (160x120), {big[ours]['ms_median']:.2f} "
            f"ms (320x240); MAE {small[ours]['mae_c']:.2f} / {big[ours]['mae_c']:.2f} C",
            f"face-box max: MAE {small[peak]['mae_c']:.1f} / {big[peak]['mae_c']:.1f} C; "
            f"median-filtered max: MAE {small[med]['mae_c']:.2f} / {big[med]['mae_c']:.2f} C",
            _target("<= 2 ms, MAE <= 0.2 C", all(
                t[size][ours]["ms_median"] <= 2 and t[size][ours]["mae_c"] <= 0.2
                for size in ("160x120", "320x240"))), _run(results["thermal"]))


def _store(results: Results) -> list[tuple[str, ...]]:
    s = _r(results, "store")
    top = max(s["match"], key=lambda m: m["templates"])
    p, o = s["purge"], s["cipher_overhead"]
    run = _run(results["store"])
    return [
        (f"1:N match at {top['templates'] // 1000}k templates (`bench/store.py`)",
         f"p50 {top['p50_ms']:.1f} ms, p95 {top['p95_ms']:.1f} ms, answers "
         f"{_pct(top['agreement_with_exhaustive'], 0)} identical to exhaustive",
         f"exhaustive float32 {top['exhaustive_p50_ms']:.1f} ms; naive Python loop "
         f"{top['naive_p50_ms']:.1f} ms", _target("<= 10 ms", top["p50_ms"] <= 10), run),
        (f"purge {p['expired_templates'] // 1000}k expired templates", f"{p['purge_s']:.2f} s",
         f"row by row {p['rowwise_s']:.2f} s", _target("<= 2 s", p["purge_s"] <= 2), run),
        ("SQLCipher vs plain sqlite3, same workload",
         f"{o['ratio_total']:.2f}x slower overall (reads {o['ratio']['read_all_s']:.1f}x)", "",
         "reported", run),
    ]


def _gate(results: Results) -> list[tuple[str, ...]]:
    g = _r(results, "gate")
    fire, kill, rtt = g["rows"]
    run = _run(results["gate"])
    return [
        ("gate: fire alarm -> all lanes open (`bench/gate.py`, real process)",
         f"p50 {fire['p50_ms']:.1f} ms, p95 {fire['p95_ms']:.1f} ms",
         f"status round trip {rtt['p50_ms']:.2f} ms",
         _target(f"<= {fire['limit_ms']:g} ms", fire["max_ms"] <= fire["limit_ms"]), run),
        ("gate: daemon killed -> all lanes manual",
         f"p50 {kill['p50_ms']:.0f} ms, p95 {kill['p95_ms']:.0f} ms "
         f"({g['heartbeat_timeout_ms'] / 1000:g} s heartbeat timeout)", "",
         _target(f"<= {kill['limit_ms'] / 1000:g} s", kill["max_ms"] <= kill["limit_ms"]), run),
    ]


def _k(x: float) -> str:
    return f"{x / 1000:.1f}k"


def _telemetry(results: Results) -> list[tuple[str, ...]]:
    t, p = _r(results, "telemetry"), _r(results, "telemetry_postgres")
    lost = sum(r["loss"] + r["duplicates"] for r in (t["stream"], t["fanin"]))
    pg = [p[k] for k in ("stream", "fanin", "fanin_two_collectors", "failover")]
    return [
        ("telemetry through the collector (`bench/telemetry.py`, SQLite)",
         f"{_k(t['stream']['windows_per_s'])} windows/s ({t['stream']['devices']} devices), "
         f"{_k(t['fanin']['windows_per_s'])} windows/s fan-in from {t['fanin']['devices']:,} "
         f"devices; {lost} lost or duplicated",
         f"plain ZeroMQ ack server {_k(t['stream']['baseline_windows_per_s'])} / "
         f"{_k(t['fanin']['baseline_windows_per_s'])}",
         _target(">= 10k/s", min(t["stream"]["windows_per_s"], t["fanin"]["windows_per_s"])
                 >= 10_000), _run(results["telemetry"])),
        ("telemetry into PostgreSQL (`bench/telemetry.py --backend postgres`)",
         f"{_k(p['fanin']['windows_per_s'])} windows/s fan-in from {p['fanin']['devices']:,} "
         f"devices (one collector), {_k(p['fanin_two_collectors']['windows_per_s'])} with two; "
         f"one of two collectors SIGKILLed mid-run: "
         f"{sum(r['loss'] + r['duplicates'] for r in pg)} lost or duplicated",
         f"SQLite collector {_k(p['sqlite_peer']['windows_per_s'])}, plain ZeroMQ ack server "
         f"{_k(p['fanin']['baseline_windows_per_s'])}",
         _target(">= 10k/s", p["fanin"]["windows_per_s"] >= 10_000),
         _run(results["telemetry_postgres"])),
    ]


def _rollups(results: Results) -> tuple[str, ...]:
    r = _r(results, "rollups_year")["rollup"]
    return (f"central roll-ups over {r['days']} days of {r['gates']:,} gates in PostgreSQL "
            f"({r['rows'] / 1e6:.0f}M windows, `bench/rollups.py`)",
            f"hourly refresh of the whole fleet {r['refresh_hour_s']:.2f} s; full rebuild of "
            f"both roll-ups {r['rebuild_s']:.0f} s; a fleet day per gate from the daily "
            f"roll-up {r['query_daily_ms']:.1f} ms",
            f"the same from the raw windows {r['query_raw_ms']:.0f} ms", "cost measured",
            _run(results["rollups_year"]))


def _camera(rows: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    return next(r for r in rows if r["mode"] == "camera")


def _maxrow(rows: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    return next(r for r in rows if r["mode"] == "max")


def _pipeline(results: Results) -> list[tuple[str, ...]]:
    p = _r(results, "pipeline")
    run = _run(results["pipeline"])
    cam, fast = _camera(p["rows"]), _maxrow(p["rows"])
    ours, naive = cam["ours"], cam["baseline"]
    g = p["gate_scene"]
    gcam, gmax = _camera(g["rows"]), _maxrow(g["rows"])
    tok = p["token_costs"]
    fps = f"{p['camera_fps']:g}"
    return [
        (f"pipeline on the one-person clip, {fps} fps camera (`bench/pipeline.py`)",
         f"{ours['fps']:.1f} fps sustained; decision latency p50 {ours['latency_p50_ms']} ms, "
         f"p95 {ours['latency_p95_ms']} ms; {ours['embeddings']} embeddings for "
         f"{ours['decisions']} decisions",
         f"naive YuNet + embed every frame: {naive['fps']:.1f} fps, {naive['embeddings']} "
         f"embeddings, p95 {naive['latency_p95_ms']} ms",
         _target(f">= {fps} fps, p95 <= 150 ms", ours["fps"] >= 0.98 * p["camera_fps"]
                 and ours["latency_p95_ms"] <= 150), run),
        ("pipeline as fast as frames come, one-person clip", f"{fast['ours']['fps']:.1f} fps",
         f"naive {fast['baseline']['fps']:.1f} fps", "", run),
        (f"**pipeline at a gate**: {g['size'][0]}x{g['size'][1]}, {g['lanes']} lanes, "
         f"{g['in_view']} people in view, {fps} fps camera (same run)",
         f"{gcam['ours']['fps']:.1f} fps sustained; decision latency (stepped into the zone -> "
         f"gate command) p50 {gcam['ours']['latency_p50_ms']} ms, p95 "
         f"{gcam['ours']['latency_p95_ms']} ms; {gcam['ours']['decided']} travellers decided, "
         f"{gcam['ours']['missed']} missed, {gcam['ours']['embeddings']} embeddings; as fast "
         f"as frames come {gmax['ours']['fps']:.1f} fps",
         f"naive YuNet at {g['size'][0]}x{g['size'][1]} + embed every frame: "
         f"{gcam['naive']['fps']:.1f} fps, p95 {gcam['naive']['latency_p95_ms']} ms, "
         f"{gcam['naive']['embeddings']} embeddings; {gmax['naive']['fps']:.1f} fps as fast "
         "as frames come", _target(f">= {fps} fps, p95 <= 100 ms and <= naive's",
                                   gcam["ours"]["fps"] >= 0.98 * p["camera_fps"]
                                   and gcam["ours"]["latency_p95_ms"] <= min(
                                       100, gcam["naive"]["latency_p95_ms"])), run),
        ("token mode: decode + unseal + 1:1 comparison, per decision (same run)",
         f"p50 {tok['token_total']['p50_ms']} ms, p95 {tok['token_total']['p95_ms']} ms",
         f"gallery 1:N of the same probe {tok['gallery_1toN']['p50_ms']} ms",
         _target("p95 <= 20 ms", tok["token_total"]["p95_ms"] <= 20), run),
    ]


def results_table(results: Results) -> str:
    """The README's results at a glance: one row per headline figure, newest run of each."""
    providers = ", ".join(_r(results, "vision")["providers"])
    rows: list[tuple[str, ...]] = [
        *_vision(results), *_faces(results),
        _search(results, "search", "held-out people: FPIR <= 0.003 there, FNIR <= 12 %"),
        _search(results, "search_2", "held-out people: FPIR <= 0.003 there, FNIR <= 6 %"),
        _thermal(results), *_store(results), *_gate(results), *_telemetry(results),
        _rollups(results), *_pipeline(results)]
    intro = (f"Machine: {_machines(results)}; onnxruntime providers {providers}. Each row's "
             "peer baseline was measured in the same run; the last column is the day of the "
             "run and the 1-minute load average at its start (accuracy rows do not depend on "
             "load). Written by `bench/summary.py` from `bench/results/`; re-measure with "
             "`make bench` or `.venv/bin/python bench/record.py NAME`.")
    return intro + "\n\n" + _table(("what", "result", "peer baseline, same run", "target",
                                    "run"), rows)


README_BLOCKS: dict[str, Callable[[Results], str]] = {"results": results_table}
