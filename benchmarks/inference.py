"""Inference speed of the exported lifting models on the CPU: eager PyTorch vs onnxruntime vs a torch.export program.

    python benchmarks/inference.py            # default grid, a few minutes on a laptop-class CPU
    python benchmarks/inference.py --full     # also the largest cells (B=32, T=243): much longer
    python benchmarks/inference.py --models dstformer-tiny --batch 1 --frames 27 --rounds 2   # a smoke run

Every cell (model x runtime x threads x B x T) runs in one process, interleaved: each round visits every cell once
(a few calls each), so drifting machine load spreads over all cells alike. Reported per cell: the median latency
of one call (ms), latency per clip (ms / B) and clips per second, and the peak resident memory (RSS) of the process
while that cell ran (Linux: the peak is reset before each cell through /proc/self/clear_refs; elsewhere it is the
process peak so far, marked with '*'; the process holds every model and session of the grid at once). The models
are freshly initialised (speed does not depend on the weights), saved as a run folder and exported with
`hpe_pretrain.train.lifting.export_lifting_model`, which checks each export against eager PyTorch.

The export-setting study at B=1, T=243 (profiles, graph optimisation, threads, precisions, their accuracy) is
`benchmarks/export_study.py`.
"""
from __future__ import annotations
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path


def _reset_peak_rss() -> bool:
    "Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); False where that is not possible."
    try: Path('/proc/self/clear_refs').write_text('5'); return True
    except OSError: return False


def _peak_rss_mb() -> float:
    "Peak resident set size of this process in MiB (VmHWM on Linux; ru_maxrss elsewhere)."
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    except OSError: pass
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == 'darwin' else r / 1024


def run_folder(d: Path, model: str, m=None, clip_len: int = 27):
    "A run folder (config.yaml + models/finetune_best.pth) holding `m`, or a freshly created `model`."
    import torch
    from hpe_pretrain.data.paths import RunDir
    from hpe_pretrain.models.factory import create_model, finetune_model_config
    from hpe_pretrain.train.config import load_config, save_config
    run = RunDir(d/model); cfg = load_config([f'model={model}', f'data.clip_len={clip_len}'])
    save_config(cfg, run.config)
    if m is None: torch.manual_seed(0); m = create_model(finetune_model_config(dict(cfg.model)))
    m = m.eval()
    run.models.mkdir(parents=True, exist_ok=True)
    torch.save({'model': {f'model.{k}': v for k, v in m.state_dict().items()}}, run.checkpoint('finetune', 'best'))
    return run, m


def build_runners(models: list[str], threads: list[int], d: Path) -> dict:
    "(model, runtime, threads) -> (set_threads, fn(x numpy) -> output), exporting each model once to ONNX and pt2."
    import torch, onnxruntime as ort
    from hpe_pretrain.models.export import load_pt2
    from hpe_pretrain.train.lifting import export_lifting_model
    runners = {}
    for name in models:
        run, m = run_folder(d, name)
        onnx_path = export_lifting_model(run.path, 'onnx', verbose=False)
        prog, _ = load_pt2(export_lifting_model(run.path, 'pt2', verbose=False))
        for n in threads:
            set_t = lambda n=n: torch.set_num_threads(n)
            def eager(x, m=m):
                with torch.inference_mode(): return m(torch.from_numpy(x)).numpy()
            def pt2(x, prog=prog):
                with torch.inference_mode(): return prog(torch.from_numpy(x)).numpy()
            so = ort.SessionOptions(); so.intra_op_num_threads = n; so.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(onnx_path), so, providers=['CPUExecutionProvider'])
            runners[(name, 'eager', n)] = (set_t, eager)
            runners[(name, 'onnxruntime', n)] = (set_t, lambda x, s=sess: s.run(None, {'x': x})[0])
            runners[(name, 'pt2', n)] = (set_t, pt2)
    return runners


def benchmark(models: list[str], threads: list[int], batch: list[int], frames: list[int], rounds: int = 3,
              calls: int = 2, full: bool = False, max_clip_frames: int = 2000) -> list[dict]:
    "Interleaved timing of every cell; returns one row per cell (skipped cells say why)."
    import numpy as np
    with tempfile.TemporaryDirectory() as d:
        runners = build_runners(models, threads, Path(d))
        cells = [(k, B, T) for k in runners for B in batch for T in frames]
        skipped = [c for c in cells if not full and c[1] * c[2] > max_clip_frames]
        cells = [c for c in cells if c not in skipped]
        rng = np.random.default_rng(0)
        inputs = {(B, T): rng.standard_normal((B, T, 17, 3)).astype(np.float32) for B in batch for T in frames}
        times = {c: [] for c in cells}; rss = {c: 0. for c in cells}
        exact = True
        for r in range(rounds + 1):              # round 0: warm-up (first-call allocation, lazy init), not timed
            for c in cells:
                (key, B, T) = c; set_t, fn = runners[key]; set_t(); x = inputs[(B, T)]
                exact &= _reset_peak_rss()
                for _ in range(calls):
                    t0 = time.perf_counter(); fn(x); dt = time.perf_counter() - t0
                    if r: times[c].append(dt)
                rss[c] = max(rss[c], _peak_rss_mb())
            print(f"round {r}/{rounds} done", file=sys.stderr, flush=True)
    rows = []
    for c in cells:
        (name, rt, n), B, T = c; med = statistics.median(times[c])
        rows.append(dict(model=name, runtime=rt, threads=n, B=B, T=T, ms_call=med * 1e3, ms_clip=med * 1e3 / B,
                         clips_s=B / med, rss_mb=rss[c], rss_exact=exact))
    for (name, rt, n), B, T in skipped:
        rows.append(dict(model=name, runtime=rt, threads=n, B=B, T=T, skipped=f'B*T > {max_clip_frames} (use --full)'))
    return rows


def table(rows: list[dict]) -> str:
    "The rows as an aligned text table."
    head = ('model', 'runtime', 'thr', 'B', 'T', 'ms/call', 'ms/clip', 'clips/s', 'peak RSS MiB')
    out = [head]
    for r in sorted(rows, key=lambda r: (r['model'], r['B'], r['T'], r['threads'], r['runtime'])):
        if 'skipped' in r: out.append((r['model'], r['runtime'], str(r['threads']), str(r['B']), str(r['T']), 'skipped: ' + r['skipped'], '', '', ''))
        else: out.append((r['model'], r['runtime'], str(r['threads']), str(r['B']), str(r['T']), f"{r['ms_call']:.1f}",
                          f"{r['ms_clip']:.2f}", f"{r['clips_s']:.1f}", f"{r['rss_mb']:.0f}" + ('' if r['rss_exact'] else '*')))
    w = [max(len(r[i]) for r in out) for i in range(len(head))]
    return '\n'.join('  '.join(c.rjust(w[i]) if i > 1 else c.ljust(w[i]) for i, c in enumerate(r)) for r in out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', default='dstformer-lite,stmo-small', help='comma-separated shipped model names')
    p.add_argument('--threads', default='1,2', help='comma-separated CPU thread counts')
    p.add_argument('--batch', default='1,32', help='comma-separated batch sizes B')
    p.add_argument('--frames', default='27,243', help='comma-separated clip lengths T')
    p.add_argument('--rounds', type=int, default=2, help='timed rounds over all cells (after one warm-up round)')
    p.add_argument('--calls', type=int, default=2, help='calls per cell per round')
    p.add_argument('--full', action='store_true', help='also the cells with B*T > 2000 (slow on a CPU)')
    a = p.parse_args(argv)
    ints = lambda s: [int(v) for v in s.split(',')]
    os.environ.setdefault('OMP_NUM_THREADS', str(max(ints(a.threads))))
    t0 = time.perf_counter()
    rows = benchmark(a.models.split(','), ints(a.threads), ints(a.batch), ints(a.frames), a.rounds, a.calls, a.full)
    import torch, onnxruntime
    print(f"# torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs, "
          f"{a.rounds} rounds x {a.calls} calls per cell (median), {time.perf_counter() - t0:.0f} s")
    print(table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
