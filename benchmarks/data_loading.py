"""Data-loading benchmark: `write_cache` time, peak RSS while loading a cache, cache -> clips throughput, and the
cost of the cache's Fletcher-32 checksums.

Random data shaped like H36M-17 (≈1.5M frame-views × 17 joints, 50 Hz sequences of 1,000–5,000 frames, subjects
S1,S5,S6,S7,S8 train / S9,S11 test) is generated inside the benchmark (once, before anything is timed), in a
temporary directory.

Checksum cost: `write_cache` writes every numeric dataset with `fletcher32=True`. The benchmark also writes the same
sequences without checksums — a variant the package never writes, produced here only, by `no_checksums()`, which
drops `fletcher32` from `h5py.Group.create_dataset` while the comparison file is written — and times, alternating
the two files (checked, unchecked, checked, unchecked, ...; `--reps` pairs, medians reported): `write_cache`,
loading the arrays into memory (`PoseCache(p, in_memory=...)`) and `get_batch` of the same random clips read from
the file (`in_memory=False`). The relative cost is the median of the paired ratios checked / unchecked, so load from
other users of the machine hits both alike. Only figures of one run are compared with each other.

    .venv/bin/python benchmarks/data_loading.py                 # full size (a few minutes here, ~1.3 GB in /tmp)
    .venv/bin/python benchmarks/data_loading.py --frames 300000 # quicker
"""
import argparse, contextlib, datetime, json, os, statistics, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from hpe_pretrain.data.cache import PoseCache, PoseSequence, write_cache  # noqa: E402
from hpe_pretrain.data.loaders import PoseClipDataset, pose_dataloaders  # noqa: E402

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


@contextlib.contextmanager
def no_checksums():
    "Benchmark-only: while active, `create_dataset` ignores `fletcher32` (to write the unchecked comparison file)."
    orig = h5py.Group.create_dataset
    def create_dataset(self, *args, fletcher32=None, **kw): return orig(self, *args, **kw)
    h5py.Group.create_dataset = create_dataset
    try: yield
    finally: h5py.Group.create_dataset = orig


def checksummed(path: Path) -> set:
    "The set of `fletcher32` flags of the numeric datasets of an HDF5 file ({True}: all checked, {False}: none)."
    flags = set()
    def visit(_, o):
        if isinstance(o, h5py.Dataset) and o.dtype.kind in 'biuf': flags.add(o.fletcher32)
    with h5py.File(path, 'r') as f: f.visititems(visit)
    return flags


def paired(fns: dict, reps: int) -> dict:
    "Seconds of each `fns[k]()`, called alternately (A, B, A, B, ...) `reps` times each: {k: [seconds, ...]}."
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter(); fn(); times[k].append(time.perf_counter() - t0)
    return times


def cost(times: dict) -> str:
    "Relative cost of 'checked' over 'unchecked': median (and range) of the paired ratios, as signed percentages."
    r = [100 * (a / b - 1) for a, b in zip(times['checked'], times['unchecked'])]
    return f'{statistics.median(r):+.1f} % (pairs {min(r):+.0f} … {max(r):+.0f} %)'


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
    ap.add_argument('--reps', type=int, default=9, help='pairs (checked, unchecked) per checksum measurement')
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        paths = {'checked': Path(d) / 'h36m_random.h5', 'unchecked': Path(d) / 'h36m_random_unchecked.h5'}
        p, timer = paths['checked'], [0.0]
        seqs = list(h36m_like(a.frames, 0, timer))
        def write(k):
            with no_checksums() if k == 'unchecked' else contextlib.nullcontext():
                write_cache(paths[k], seqs, 'h36m', 'h36m17')
        wt = paired({k: lambda k=k: write(k) for k in paths}, a.reps)
        seqs.clear()   # free the generated arrays
        flags = {k: checksummed(q) for k, q in paths.items()}
        if flags != {'checked': {True}, 'unchecked': {False}}: sys.exit(f'unexpected fletcher32 flags: {flags}')
        with PoseCache(p) as c: S, F = len(c), c.n_frames
        mib = {k: q.stat().st_size / 2**20 for k, q in paths.items()}
        rows.append((f'write_cache: {F:,} frames x 17 joints, {S} sequences',
                     f'{statistics.median(wt["checked"]):.1f} s (median of {a.reps}; data generated beforehand in '
                     f'{timer[0]:.1f} s), {mib["checked"]:,.0f} MiB', '(prepare < 2 min)'))

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
        ds.cache.close(); dls = dl = ds = None   # free the in-memory arrays

        # Checksum cost: the same measurements on both files, alternating.
        def load(k):
            with PoseCache(paths[k], in_memory=LOAD_FIELDS): pass
        lt = paired({k: lambda k=k: load(k) for k in paths}, a.reps)
        fds = {}
        for k, q in paths.items():   # the training clips of each file (the same clips: same sequences, same layout)
            c = PoseCache(q); fds[k] = PoseClipDataset(c, 243, 81, np.flatnonzero(c.seqs.split == 'train'), in_memory=False)
        n = len(fds['checked']); assert n == len(fds['unchecked'])
        block_s, cal_s = a.seconds / a.reps, min(1.0, a.seconds / a.reps)
        t0, nb = time.perf_counter(), 0   # one block of batches takes ~block_s on the checked file
        while time.perf_counter() - t0 < cal_s: fds['checked'].get_batch(np.arange(a.bs) % n); nb += 1
        blocks = np.random.default_rng(2).integers(0, n, (max(3, round(nb * block_s / cal_s)), a.bs))
        def read(k):
            for idx in blocks: fds[k].get_batch(idx)
        read('checked'); read('unchecked')   # warm-up (HDF5 chunk caches, page cache)
        bt = paired({k: lambda k=k: read(k) for k in paths}, a.reps)
        cps = {k: blocks.size / statistics.median(v) for k, v in bt.items()}
        for f in fds.values(): f.cache.close()
        rows.append(('clips/s, get_batch from the HDF5 file (in_memory=False, random clips)',
                     f'{cps["checked"]:,.0f}', ''))
        rows.append(('Fletcher-32 checksums (as written) vs none ¹', 'checked vs unchecked: cost', ''))
        rows.append(('  write_cache, s', f'{statistics.median(wt["checked"]):.2f} vs '
                     f'{statistics.median(wt["unchecked"]):.2f}: {cost(wt)}', ''))
        rows.append((f'  load {len(LOAD_FIELDS)} arrays into memory (PoseCache in_memory=...), s',
                     f'{statistics.median(lt["checked"]):.3f} vs {statistics.median(lt["unchecked"]):.3f}: {cost(lt)}', ''))
        rows.append((f'  get_batch from the file, clips/s ({blocks.shape[0]} batches of {a.bs} per block)',
                     f'{cps["checked"]:,.0f} vs {cps["unchecked"]:,.0f}: {cost(bt)} time', ''))
        rows.append(('  file size, MiB', f'{mib["checked"]:,.1f} vs {mib["unchecked"]:,.1f}: '
                     f'{100 * (mib["checked"] / mib["unchecked"] - 1):+.2f} %', ''))

    print(f'\nData loading benchmark ({datetime.date.today()}, torch {torch.__version__}, h5py {h5py.__version__} / '
          f'HDF5 {h5py.version.hdf5_version}, {torch.get_num_threads()} thread, {os.cpu_count()} cores on the machine)\n')
    w = [max(len(r[i]) for r in rows + [('measurement', 'result', 'target')]) for i in range(3)]
    for r in [('measurement', 'result', 'target'), tuple('-' * x for x in w)] + rows:
        print('  '.join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print(f"\n¹ the unchecked file is written by this benchmark only (`no_checksums`); the two files are measured "
          f"alternately,\n  {a.reps} times each; figures are medians, the cost is the median of the paired ratios "
          "checked / unchecked - 1\n  (in brackets: the smallest and largest paired ratio, a measure of the noise).")

if __name__ == '__main__':
    main()
