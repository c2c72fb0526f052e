"""Data-loading benchmark: `write_cache` time, peak RSS while loading a cache, cache -> clips throughput.

Random data shaped like H36M-17 (≈1.5M frame-views × 17 joints, 50 Hz sequences of 1,000–5,000 frames, subjects
S1,S5,S6,S7,S8 train / S9,S11 test) is generated inside the benchmark, in a temporary directory.

    .venv/bin/python benchmarks/data_loading.py                 # full size (~40 s here, ~0.7 GB in /tmp)
    .venv/bin/python benchmarks/data_loading.py --frames 100000 # quick
"""
import argparse, json, os, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from hpe_pretrain.data.cache import PoseCache, PoseSequence, write_cache  # noqa: E402
from hpe_pretrain.data.loaders import pose_dataloaders  # noqa: E402

SUBJECTS = {'S1': 'train', 'S5': 'train', 'S6': 'train', 'S7': 'train', 'S8': 'train', 'S9': 'test', 'S11': 'test'}
CAMERAS = ('54138969', '55011271', '58860488', '60457274')
LOAD_FIELDS = ('joints_2d', 'confidence', 'joints_3d')


def h36m_like(frames: int, seed: int, timer: list):
    "Yield random H36M-17-shaped sequences until `frames` frame-views; time spent generating goes to timer[0]."
    rng, total, k = np.random.default_rng(seed), 0, 0
    while total < frames:
        t0 = time.perf_counter()
        subj = list(SUBJECTS)[k % len(SUBJECTS)]
        n = int(min(rng.integers(1000, 5001), frames - total))
        j3d = rng.standard_normal((n, 17, 3), dtype=np.float32) * 0.3 + np.float32(5)
        j2d = rng.uniform(0, 1000, (n, 17, 2)).astype(np.float32)
        s = PoseSequence(subj, f'Action {k // 28}', CAMERAS[k % 4], SUBJECTS[subj], joints_3d=j3d, joints_2d=j2d,
                         fps=50.0, width=1000, height=1002, confidence=np.ones((n, 17), np.float32))
        timer[0] += time.perf_counter() - t0
        yield s
        total, k = total + n, k + 1


RSS_PROBE = textwrap.dedent("""
    import json, sys
    def status(key):
        for line in open('/proc/self/status'):
            if line.startswith(key): return int(line.split()[1]) * 1024
    sys.path.insert(0, {repo!r})
    {imports}
    before = status('VmRSS')
    {load}
    print(json.dumps(dict(before=before, hwm=status('VmHWM'), rss=status('VmRSS'), nbytes=nbytes)))
""")


def peak_rss(path: Path, how: str) -> dict:
    "Peak RSS increase of a fresh process while it loads the cache (`how`: 'cache' or 'dataloaders')."
    if how == 'cache':
        imports = 'from hpe_pretrain.data.cache import PoseCache'
        load = f'c = PoseCache({str(path)!r}, in_memory={LOAD_FIELDS!r}); nbytes = sum(a.nbytes for a in c._mem.values())'
    else:
        imports = 'import torch; from hpe_pretrain.data.loaders import pose_dataloaders'
        load = (f'dls = pose_dataloaders({str(path)!r}, 243, 81, 64); c = dls.train_ds.cache; '
                'nbytes = sum(a.nbytes for a in c._mem.values())')
    code = RSS_PROBE.format(repo=str(REPO), imports=imports, load=load)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r['peak'] = r['hwm'] - r['before']
    return r


def throughput(fn, seconds: float) -> float:
    "Clips per second of repeated `fn()` (which returns how many clips it produced)."
    fn()  # warm up
    n, t0 = 0, time.perf_counter()
    while (dt := time.perf_counter() - t0) < seconds: n += fn()
    return n / dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--frames', type=int, default=1_500_000, help='frame-views in the random cache')
    ap.add_argument('--seconds', type=float, default=5.0, help='seconds per throughput measurement')
    ap.add_argument('--bs', type=int, default=64, help='clips per batch')
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        p, timer = Path(d) / 'h36m_random.h5', [0.0]
        t0 = time.perf_counter()
        write_cache(p, h36m_like(a.frames, 0, timer), 'h36m', 'h36m17')
        wt = time.perf_counter() - t0
        with PoseCache(p) as c: S, F = len(c), c.n_frames
        rows.append((f'write_cache: {F:,} frames x 17 joints, {S} sequences',
                     f'{wt:.1f} s ({timer[0]:.1f} s of it generating data), {p.stat().st_size / 2**20:,.0f} MiB', '(prepare < 2 min)'))

        for how in ('cache', 'dataloaders'):
            r = peak_rss(p, how)
            rows.append((f'peak RSS loading arrays ({how}), arrays {r["nbytes"] / 2**20:,.0f} MiB',
                         f'+{r["peak"] / 2**20:,.0f} MiB = {r["peak"] / r["nbytes"]:.2f}x '
                         f'(process {r["hwm"] / 2**20:,.0f} MiB)', '< 1.5x'))

        dls = pose_dataloaders(p, clip_len=243, stride=81, bs=a.bs, in_memory=True, seed=0)
        dl, ds = dls.train, dls.train_ds
        def epoch_dl(): return sum(len(b['seq']) for b in dl)
        def batch_direct(rng=np.random.default_rng(1)): return len(ds.get_batch(rng.integers(0, len(ds), a.bs))['seq'])
        rows.append((f'clips/s, fastai DataLoader, in memory ({len(ds):,} train clips, T=243, bs={a.bs})',
                     f'{throughput(epoch_dl, a.seconds):,.0f}', '>= 20,000'))
        rows.append(('clips/s, PoseClipDataset.get_batch, in memory', f'{throughput(batch_direct, a.seconds):,.0f}', ''))
        fds = type(ds)(PoseCache(p), 243, 81, ds.seqs, in_memory=False)
        def batch_file(rng=np.random.default_rng(2)): return len(fds.get_batch(rng.integers(0, len(fds), a.bs))['seq'])
        rows.append(('clips/s, get_batch from the HDF5 file (in_memory=False, random clips)',
                     f'{throughput(batch_file, a.seconds):,.0f}', ''))
        fds.cache.close(); ds.cache.close()

    print(f'\nData loading benchmark (torch {torch.__version__}, {torch.get_num_threads()} thread, '
          f'{os.cpu_count()} cores on the machine)\n')
    w = [max(len(r[i]) for r in rows + [('measurement', 'result', 'target')]) for i in range(3)]
    for r in [('measurement', 'result', 'target'), tuple('-' * x for x in w)] + rows:
        print('  '.join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())


if __name__ == '__main__':
    main()
