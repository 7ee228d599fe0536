"""Side-by-side timings: minigrad's kernel sets against PyTorch, each in a process of its own.

    python benchmarks/run.py [--quick] [--rounds 5] [--repeats 5] [--threads N]
                             [--owner blas|kernels] [--busy]
                             [--json FILE] [--gpu]

Every framework runs in its own worker process (``worker.py``: "torch", "minigrad-numba",
"minigrad-numpy"), started once, so that PyTorch's threads cannot slow NumPy's BLAS and each
import and JIT compile is paid once. Per round, each worker times each workload: the median of
``--repeats`` runs after a warm-up. Rounds alternate the order of the workers (A B C, C B A,
...), so a burst of load from elsewhere falls on all of them alike, and requests are 0.2 s
apart, so that the last worker's BLAS threads have stopped spinning. A row's time is the median
over rounds; its ratio torch / minigrad (minigrad: the Numba set where installed) is the median
of the rounds' ratios, with their min and max. 1.0 means as fast as PyTorch.

Rows (``workloads.py`` holds them, their FLOP formulas and issue 19's targets):

    W1  sgemm 512 x 512 x 512, float32
    W2  conv2d forward + backward, batch 64, 3 -> 32 channels, 3x3, pad 1, 32x32
    W3  conv2d forward + backward, batch 64, 32 -> 64 channels, 3x3, pad 1, 16x16
    W4  LeNet-5 training step, batch 64, SGD with momentum
    W5  MLP 784-300-100-10 training step, batch 128
    W6  LeNet-5 inference, batch 256
    W7  depthwise conv2d 3x3 (groups = 64), forward + backward, batch 32, 16x16
    S   the sweep: 16 conv shapes (batch 1, 8, 64; 1 to 256 channels; 7x7 to 56x56; 3x3, 5x5,
        1x1, stride 2, depthwise), each forward (no grad), forward + backward, and inference
        (eval, no grad, conv + bias + ReLU); the geometric mean of the ratios per mode

GFLOP/s count the FLOPs of ``workloads.flops``; "% peak" divides minigrad's by the FMA-loop peak
of ``peak.py`` (measured first, in a process of its own, before ``--busy`` starts its load).

Threads: by default BLAS takes its own default (all cores) and PyTorch
``torch.set_num_threads(os.cpu_count())``. ``--threads N`` sets OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and NUMBA_NUM_THREADS in each worker's environment (read
when the worker loads NumPy, so they always take effect) and torch.set_num_threads(N); the
header prints the BLAS threads that threadpoolctl (if installed) finds in each worker.
``--owner kernels`` gives minigrad's threads to its direct Numba kernels and BLAS one thread
(``backend.set_num_threads(N, owner="kernels")``); the default leaves them to BLAS.
``--busy`` keeps one core loaded by a spinning process while timing: a machine where something
else runs. With ``--gpu`` the rows also run on CUDA (minigrad through CuPy).
Machines here are shared and noisy: read the ratios of one run, not absolute times across runs.
"""

import argparse
import contextlib
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from minigrad.report import format_table
from workloads import QUICK_SWEEP, ROWS, SWEEP_MODES, SWEEP_ROW_MINIMUM, SWEEP_TARGETS, sweep
from worker import Worker

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
# A pause before asking another worker: OpenBLAS's threads spin for 2^28 cycles (~0.1 s) after
# a call before they sleep, and would take cores from the next worker's timing.
SETTLE_SECONDS = 0.2


def framework_order(frameworks, round_index):
    """The order in which round ``round_index`` asks the workers: as given in even rounds,
    reversed in odd ones (A B C, C B A, A B C, ...)."""
    return list(frameworks) if round_index % 2 == 0 else list(reversed(frameworks))


def geometric_mean(values):
    """(x_1 x_2 ... x_n)^(1/n), as exp(mean(log x)); the mean of ratios that treats 2x faster
    and 2x slower alike."""
    if not values or min(values) <= 0:
        raise ValueError(f"geometric_mean: need positive values, got {values}")
    return math.exp(sum(math.log(value) for value in values) / len(values))


def thread_env(threads):
    return {} if threads is None else {name: str(threads) for name in THREAD_VARIABLES}


def start_workers(frameworks, device, threads, owner="blas"):
    """{name: Worker} for the frameworks whose worker starts and answers "info"; the others
    are reported and left out."""
    workers, infos = {}, {}
    for name in frameworks:
        worker = Worker(name, device, threads, env=thread_env(threads), owner=owner)
        try:
            infos[name] = worker.request(op="info")
            workers[name] = worker
        except RuntimeError as error:
            print(f"{name}: left out ({error})", file=sys.stderr)
    return workers, infos


def measure(workers, workloads, rounds, repeats, settle=SETTLE_SECONDS):
    """{key: {framework: {"seconds": [one median per round], "error": text or None}}}. Round r
    asks the workers in ``framework_order(workers, r)`` for every workload, ``settle`` seconds
    apart; a workload that raised in a worker is not asked of it again."""
    results = {w.key: {name: {"seconds": [], "error": None} for name in workers}
               for w in workloads}
    for round_index in range(rounds):
        start = time.perf_counter()
        order = framework_order(workers, round_index)
        for workload in workloads:
            for name in order:
                cell = results[workload.key][name]
                if cell["error"] is None:
                    time.sleep(settle)
                    answer = workers[name].request(op="time", spec=workload.spec,
                                                   repeats=repeats)
                    cell["error"] = answer.get("error")
                    if cell["error"] is None:
                        cell["seconds"].append(answer["median"])
        print(f"round {round_index + 1}/{rounds}: {', '.join(order)} "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return results


def summarize(workload, cells, fast, peak_gflops):
    """One row's numbers: medians over rounds, the ratio torch / ``fast`` (median, min, max
    over rounds), GFLOP/s, the share of the peak, and the verdict on the row's target."""
    target = workload.target
    row = {"key": workload.key, "name": workload.name, "spec": workload.spec,
           "flops": workload.flops, "target": None if target is None else str(target),
           "rounds": cells,
           "seconds": {name: statistics.median(cell["seconds"]) if cell["error"] is None
                       else None for name, cell in cells.items()},
           "errors": {name: cell["error"] for name, cell in cells.items() if cell["error"]}}
    row["gflops"] = {name: None if seconds is None else workload.flops / seconds * 1e-9
                     for name, seconds in row["seconds"].items()}
    fast_gflops = row["gflops"].get(fast)
    row["peak_share"] = (fast_gflops / peak_gflops
                         if fast_gflops is not None and peak_gflops else None)
    row["ratio"] = row["verdict"] = None
    if "torch" in cells and row["seconds"]["torch"] is not None and fast_gflops is not None:
        ratios = [t / m for t, m in zip(cells["torch"]["seconds"], cells[fast]["seconds"])]
        row["ratio"] = {"median": statistics.median(ratios), "min": min(ratios),
                        "max": max(ratios)}
        if target is not None:
            row["verdict"] = "PASS" if target.met(row["ratio"]["median"],
                                                  row["peak_share"]) else "MISS"
    return row


def summarize_sweep(rows, fast):
    """Per mode: the geometric mean of the sweep rows' median ratios (and its target); the
    rows below SWEEP_ROW_MINIMUM; the rows where the Numba set is slower than the NumPy one."""
    modes = {}
    for mode in SWEEP_MODES:
        ratios = [row["ratio"]["median"] for row in rows
                  if row["spec"]["mode"] == mode and row["ratio"]]
        modes[mode] = {"geomean": geometric_mean(ratios) if ratios else None,
                       "rows": len(ratios), "target": SWEEP_TARGETS.get(mode)}
    below = [row["key"] for row in rows
             if row["ratio"] and row["ratio"]["median"] < SWEEP_ROW_MINIMUM]
    numba, numpy = "minigrad-numba", "minigrad-numpy"
    slower = [row["key"] for row in rows
              if None not in (row["seconds"].get(numba), row["seconds"].get(numpy))
              and row["seconds"][numba] > row["seconds"][numpy]]
    return {"modes": modes, "below_minimum": below, "numba_slower_than_numpy": slower,
            "rows": len(rows), "n/a": [row["key"] for row in rows if not row["ratio"]]}


def ratio_text(ratio):
    return "n/a" if ratio is None else (f"{ratio['median']:.2f} "
                                        f"[{ratio['min']:.2f}, {ratio['max']:.2f}]")


def short(name):
    return name.removeprefix("minigrad-")


def errors_text(rows):
    """"n/a: numba, numpy: ValueError: ..." for the errors of ``rows``, each error once."""
    by_error = {}
    for row in rows:
        for name, error in row["errors"].items():
            by_error.setdefault(error, []).append(short(name))
    return "; ".join(f"n/a: {', '.join(dict.fromkeys(names))}: {error}"
                     for error, names in by_error.items())


def print_rows(rows, frameworks, fast):
    header = (["", "workload"] + [f"{short(name)} ms" for name in frameworks]
              + [f"torch/{short(fast)} [min, max]", f"{short(fast)} GF/s", "torch GF/s",
                 f"{short(fast)} % peak", "target", "result"])
    table = [[row["key"], row["name"],
              *(None if row["seconds"][name] is None else 1e3 * row["seconds"][name]
                for name in frameworks),
              ratio_text(row["ratio"]), row["gflops"][fast], row["gflops"].get("torch"),
              None if row["peak_share"] is None else 100 * row["peak_share"],
              row["target"], errors_text([row]) or row["verdict"]] for row in rows]
    formats = ([None, None] + [".2f"] * len(frameworks) + [None, ".1f", ".1f", ".1f", None,
                                                            None])
    print(format_table(header, table, formats))


def print_sweep(rows, fast, summary):
    by_shape = {}
    for row in rows:
        by_shape.setdefault(row["key"].split("-")[0], {})[row["spec"]["mode"]] = row
    table = []
    for key, modes in by_shape.items():
        slower = [mode for mode, row in modes.items()
                  if row["key"] in summary["numba_slower_than_numpy"]]
        slower = slower and f"numba slower than numpy: {', '.join(slower)}"
        notes = "; ".join(filter(None, [errors_text(modes.values()), slower]))
        table.append([key, modes["forward"]["name"], 1e-6 * modes["forward"]["flops"],
                      *(ratio_text(modes[mode]["ratio"]) for mode in SWEEP_MODES),
                      modes["train"]["gflops"][fast], notes])
    print(format_table(["", "conv shape (same padding)", "MFLOP fwd",
                        *(f"{mode} torch/{short(fast)}" for mode in SWEEP_MODES),
                        f"train {short(fast)} GF/s", "notes"],
                       table, [None, None, ".1f", None, None, None, ".1f", None]))
    print()
    for mode, numbers in summary["modes"].items():
        line = f"sweep geometric mean torch/{short(fast)}, {mode:9}: "
        if numbers["geomean"] is None:
            print(line + "n/a")
            continue
        line += f"{numbers['geomean']:.2f} over {numbers['rows']} rows"
        if numbers["target"] is not None:
            verdict = "PASS" if numbers["geomean"] >= numbers["target"] else "MISS"
            line += f"; target >= {numbers['target']:g}: {verdict}"
        print(line)
    below = summary["below_minimum"]
    print(f"sweep rows below {SWEEP_ROW_MINIMUM:g}: {len(below)} of "
          f"{summary['rows'] - len(summary['n/a'])}; target none: "
          f"{'PASS' if not below else 'MISS'} {' '.join(below)}".rstrip())
    slower = summary["numba_slower_than_numpy"]
    print(f"sweep rows where numba is slower than numpy: {len(slower)} {' '.join(slower)}"
          .rstrip())
    if summary["n/a"]:
        print(f"sweep rows n/a (no ratio): {len(summary['n/a'])} {' '.join(summary['n/a'])}")


def measure_peak(threads):
    """peak.py's numbers, from a process of its own; None (and why, on stderr) if it fails."""
    command = [sys.executable, str(Path(__file__).with_name("peak.py"))]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, **thread_env(threads)})
    if done.returncode != 0:
        print(f"peak: not measured ({done.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return json.loads(done.stdout)


def print_peak(peak):
    if peak is None:
        print("peak: not measured (see stderr); no % of peak")
        return
    fma, sgemm, blocked = peak["fma_loop_gflops"], peak["sgemm_gflops"], peak["blocked_gemm"]
    threads = peak["threads"]
    print(f"peak, FMA loop (Numba, 8 independent chains of 8-lane FMAs per thread): {fma:.1f} "
          f"GFLOP/s  <- '% peak' divides by this; the larger of {threads} threads "
          f"{peak['fma_loop_all_threads']:.1f} and {threads} x 1 thread "
          f"{peak['fma_loop_one_thread']:.1f}")
    print(f"peak, BLAS's best sgemm (NumPy @, n = {peak['sgemm_size']}): {sgemm:.1f} GFLOP/s "
          f"({sgemm / fma:.0%} of the FMA loop)")
    print(f"blocked GEMM (numba, gemm_blocked.py) {blocked['n']}^3: "
          f"{blocked['gemm_blocked']:.1f} GFLOP/s, "
          f"{blocked['gemm_blocked'] / blocked['numpy_blas']:.2f}x numpy's BLAS (target 0.5)")


@contextlib.contextmanager
def busy_core(enabled):
    """While inside, one process spins on a core (if ``enabled``); yields its Popen or None."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if enabled else None
    try:
        yield spinner
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def run_device(device, frameworks, workloads, args, peak):
    """Start the workers, time every workload, print the tables; returns the numbers."""
    workers, infos = start_workers(frameworks, device, args.threads, args.owner)
    try:
        with busy_core(args.busy):
            results = measure(workers, workloads, args.rounds, args.repeats)
    finally:
        for worker in workers.values():
            worker.close()
    names = list(workers)
    fast = next((name for name in names if name != "torch"), None)
    if fast is None:
        raise SystemExit(f"run.py: no minigrad worker started on {device} (stderr says why)")
    peak_gflops = peak["fma_loop_gflops"] if peak and device == "cpu" else None
    rows = [summarize(w, results[w.key], fast, peak_gflops) for w in workloads]
    table_rows = [row for row in rows if not row["key"].startswith("S")]
    sweep_rows = [row for row in rows if row["key"].startswith("S")]
    print(f"\ndevice: {device}; minigrad's threads owned by {args.owner}; " + "; ".join(
        f"{name} {info['version']} (BLAS threads {info['threads']['blas']}"
        + (f", torch threads {info['threads']['torch']})" if info["threads"]["torch"] else ")")
        for name, info in infos.items()))
    print(f"{args.rounds} rounds x median of {args.repeats} runs; times: median over rounds"
          + ("; one core kept busy by a spinning process" if args.busy else "") + "\n")
    print_rows(table_rows, names, fast)
    report = {"workers": infos, "rows": table_rows}
    if sweep_rows:
        report["sweep"] = {"rows": sweep_rows, "summary": summarize_sweep(sweep_rows, fast)}
        print()
        print_sweep(sweep_rows, fast, report["sweep"]["summary"])
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 2 rounds, 3 repeats, 4 sweep shapes")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (--quick: 2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per workload, worker and round; default 5 (--quick: 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS, OpenMP, Numba and torch threads (default: all cores)")
    parser.add_argument("--owner", choices=("blas", "kernels"), default="blas",
                        help="who owns minigrad's threads (backend.set_num_threads): BLAS, "
                             "the default, or the direct Numba kernels with BLAS on one")
    parser.add_argument("--busy", action="store_true",
                        help="keep one core loaded by a spinning process while timing")
    parser.add_argument("--json", help="write every number to this file")
    parser.add_argument("--gpu", action="store_true", help="also run the rows on CUDA")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.repeats = args.repeats or (3 if args.quick else 5)
    workloads = ROWS + sweep(QUICK_SWEEP if args.quick else None)
    frameworks = ["minigrad-numba", "minigrad-numpy"]
    if importlib.util.find_spec("numba") is None:
        frameworks.remove("minigrad-numba")
    if importlib.util.find_spec("torch") is not None:
        frameworks.insert(0, "torch")
    else:
        print("PyTorch is not installed: minigrad columns only (pip install torch==2.13.0)")

    load = os.getloadavg()[0]
    print(f"load average (1 min) at the start: {load:.2f} on {os.cpu_count()} cores")
    peak = measure_peak(args.threads)
    print_peak(peak)
    report = {"config": vars(args), "load_average": load, "peak": peak,
              "cpu": run_device("cpu", frameworks, workloads, args, peak)}
    if args.gpu:
        report["cuda"] = run_device("cuda", [f for f in frameworks if f == "torch"]
                                    + ["minigrad-cupy"], workloads, args, None)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
    return report


if __name__ == "__main__":
    main()
