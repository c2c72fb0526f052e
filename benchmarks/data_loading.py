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

`--out-of-core` compares, in one run, three ways of loading random 243-frame training clips (stride 81, batches of
`--bs`) on one core (torch and numpy threads = 1, glibc malloc tuned as `hpe-pretrain fit` does): (a) our out-of-core
loader (`pose_dataloaders(..., in_memory=False)`: chunk-aligned blocks, windowed shuffle, bounded block cache; checksums
verified on each block's first read in the process, `verify='once'`, the default), (a') the same verifying every read
(`verify='always'`), (b) our in-memory loader, (c) a MotionBERT-style loader written here (one pickle per pre-cut clip
holding `data_input` (T, 17, 3) = 2D + confidence and `data_label` (T, 17, 3), read with `pickle.load` in a torch
`Dataset` that converts both with `torch.FloatTensor` as MotionBERT's does (its random flip, an augmentation, left out),
batched by a torch `DataLoader` with shuffling and the default collate). The clip files are cut from the cache by the
benchmark (at most `--mb-clips` of them) and the page cache is warmed (cache file and clip files read once) before
timing. Each loader first runs one whole epoch, timed on its own ("first epoch": out of core, the pass that verifies
the checksums), then warms up for `--warmup` seconds.
Each loader lives in its own child process, built and warmed up once; the parent then asks them in turn (rotating
the order every round) to load for `--seconds`, so the three share the machine's state alike, and reads each child's
resident memory (VmRSS now, VmHWM peak, from /proc/self/status). Only one child works at a time.

    .venv/bin/python benchmarks/data_loading.py --out-of-core                      # 1.5M frames (584 MiB cache), ~3 min
    .venv/bin/python benchmarks/data_loading.py --out-of-core --frames 25000000    # a ~10 GB cache: memory stays bounded
"""
import argparse, contextlib, datetime, json, os, pickle, shutil, statistics, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.cache_writer import write_cache  # noqa: E402
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
        cal = np.random.default_rng(3)   # random clips, as timed (consecutive ones would be served from held blocks)
        while time.perf_counter() - t0 < cal_s: fds['checked'].get_batch(cal.integers(0, n, a.bs)); nb += 1
        blocks = np.random.default_rng(2).integers(0, n, (max(3, round(nb * block_s / cal_s)), a.bs))
        def read(k):
            for idx in blocks: fds[k].get_batch(idx)
        read('checked'); read('unchecked')   # warm-up (HDF5 chunk caches, page cache)
        bt = paired({k: lambda k=k: read(k) for k in paths}, a.reps)
        cps = {k: blocks.size / statistics.median(v) for k, v in bt.items()}
        for f in fds.values(): f.cache.close()
        rows.append(('clips/s, get_batch from the HDF5 file (in_memory=False, random clips: only their rows read)',
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

# ---------------------------------------------------------------------------------------------------------------
# --out-of-core: our out-of-core loader vs our in-memory loader vs a MotionBERT-style loader, interleaved, one core

KINDS = {'ooc': 'ours, out of core (blocks)', 'ooc-always': "ours, out of core, verify='always'", 'mem': 'ours, in memory',
         'mb': 'MotionBERT-style (pickle per clip)'}
T, STRIDE = 243, 81


def status(key: str) -> int:
    "A /proc/self/status figure in bytes (VmRSS, VmHWM)."
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ':'))


class PickleClips(torch.utils.data.Dataset):
    "MotionBERT-style: one pickle file per pre-cut clip, {'data_input': (T, J, 3), 'data_label': (T, J, 3)}."
    def __init__(self, files): self.files = files
    def __len__(self): return len(self.files)
    def __getitem__(self, i):
        with open(self.files[i], 'rb') as f: d = pickle.load(f)
        return torch.FloatTensor(d['data_input']), torch.FloatTensor(d['data_label'])


def write_clip_files(cache_path: Path, out: Path, n_max: int, seed: int = 0) -> int:
    "Cut up to `n_max` random training clips (T frames, stride 81) of the cache into one pickle each; returns how many."
    from hpe_pretrain.data.loaders import PoseClipDataset
    c = PoseCache(cache_path)
    ds = PoseClipDataset(c, T, STRIDE, c.select(split='train'), in_memory=False)
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n_max])
    out.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(idx), 256):   # in file order: blocks read once
        b = ds.get_batch(idx[i:i + 256])
        inp = torch.cat([b['kp2d'], b['conf'][..., None]], -1).numpy()
        for j in range(len(inp)):
            with open(out / f'{i + j:08d}.pkl', 'wb') as f:
                pickle.dump({'data_input': inp[j].copy(), 'data_label': b['j3d'][j].numpy().copy()}, f, protocol=pickle.HIGHEST_PROTOCOL)
    c.close()
    return len(idx)


def warm(paths) -> float:
    "Read files once (into the page cache); returns GiB read."
    n = 0
    for p in paths:
        with open(p, 'rb') as f:
            while chunk := f.read(1 << 24): n += len(chunk)
    return n / 2**30


def child(a):
    "One loader in its own process: build, warm up, then load for `seconds` whenever the parent says 'run'."
    torch.set_num_threads(1)
    from hpe_pretrain.cli import tune_malloc
    tuned = a.malloc_tuning and tune_malloc()
    rss0, t0 = status('VmRSS'), time.perf_counter()
    if a.child == 'mb':
        files = sorted(Path(a.clips).glob('*.pkl'))
        dl = torch.utils.data.DataLoader(PickleClips(files), batch_size=a.bs, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(0))
        count = lambda b: len(b[0])
    else:
        from hpe_pretrain.data.loaders import pose_dataloaders
        dl = pose_dataloaders(a.cache, T, STRIDE, a.bs, in_memory=a.child == 'mem', seed=0, block_frames=a.block_frames,
                              window=a.window, verify='always' if a.child == 'ooc-always' else 'once').train
        count = lambda b: len(b['seq'])
    setup = time.perf_counter() - t0
    def forever():
        while True: yield from dl
    t0 = time.perf_counter(); n = sum(count(b) for b in dl); first = n / (time.perf_counter() - t0)   # one whole epoch
    it = forever()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < a.warmup: next(it)   # warm-up
    info = dict(setup_s=setup, rss_before=rss0, clips=len(dl.dataset), malloc_tuned=tuned, first_epoch_cps=first,
                blocks=repr(getattr(dl.dataset, 'blocks', None)))
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() != 'run': break
        n, t0 = 0, time.perf_counter()
        while (dt := time.perf_counter() - t0) < a.seconds: n += count(next(it))
        print(json.dumps(dict(cps=n / dt, rss=status('VmRSS'), hwm=status('VmHWM'))), flush=True)


def spawn(kind: str, a, cache: Path, clips: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', PYTHONHASHSEED='0')
    cmd = [sys.executable, __file__, '--child', kind, '--cache', str(cache), '--clips', str(clips), '--bs', str(a.bs),
           '--seconds', str(a.seconds), '--warmup', str(a.warmup), '--block-frames', str(a.block_frames),
           '--window', str(a.window)] + ([] if a.malloc_tuning else ['--no-malloc-tuning'])
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    p.info = json.loads(p.stdout.readline())
    return p


def out_of_core(a):
    "The --out-of-core comparison (see the module docstring)."
    from hpe_pretrain.data.loaders import memory_available
    d = Path(tempfile.mkdtemp(prefix='ooc_bench_', dir=a.dir))
    try:
        cache, clips, timer = d / 'h36m_random.h5', d / 'clips', [0.0]
        t0 = time.perf_counter()
        write_cache(cache, h36m_like(a.frames, 0, timer), 'h36m', 'h36m17')
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter(); n_files = write_clip_files(cache, clips, a.mb_clips); t_clips = time.perf_counter() - t0
        with PoseCache(cache) as c:
            F, arrays = c.n_frames, c.nbytes(['joints_2d', 'confidence', 'joints_3d'])
        cache_gib, clip_gib = cache.stat().st_size / 2**30, sum(f.stat().st_size for f in clips.iterdir()) / 2**30
        print(f'cache: {F:,} frames, {cache_gib:.2f} GiB (written in {t_write:.0f} s); {n_files:,} clip files, '
              f'{clip_gib:.2f} GiB ({t_clips:.0f} s)', flush=True)
        kinds = ['ooc', 'ooc-always', 'mem', 'mb']
        if a.skip_in_memory or arrays > a.max_in_memory * memory_available():
            kinds.remove('mem'); print(f'in-memory loader skipped: arrays {arrays / 2**30:.1f} GiB', flush=True)
        warm([cache] + sorted(clips.iterdir()))
        procs = {}
        for k in kinds:   # one at a time: setup and warm-up do not overlap
            procs[k] = spawn(k, a, cache, clips)
        res = {k: [] for k in kinds}
        for r in range(a.rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for k in order:
                procs[k].stdin.write('run\n'); procs[k].stdin.flush()
                res[k].append(json.loads(procs[k].stdout.readline()))
            print(f'round {r + 1}/{a.rounds}: ' + ', '.join(f'{k} {res[k][-1]["cps"]:,.0f}' for k in kinds) + ' clips/s', flush=True)
        for p in procs.values(): p.stdin.close(); p.wait()
        load = os.getloadavg()
    finally: shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(x['cps'] for x in v) for k, v in res.items()}
    ratio = lambda k: [x['cps'] / y['cps'] for x, y in zip(res[k], res['mb'])]
    rows = [('loader', 'clips/s median (min … max)', 'vs MotionBERT-style (paired)', 'first epoch, clips/s',
             'VmRSS / VmHWM, MiB', 'setup, s')]
    for k in kinds:
        cps = [x['cps'] for x in res[k]]
        rr = ratio(k)
        rows.append((KINDS[k], f'{med[k]:,.0f} ({min(cps):,.0f} … {max(cps):,.0f})',
                     '—' if k == 'mb' else f'{statistics.median(rr):.2f}x ({min(rr):.2f} … {max(rr):.2f})',
                     f'{procs[k].info["first_epoch_cps"]:,.0f}',
                     f'{res[k][-1]["rss"] / 2**20:,.0f} / {res[k][-1]["hwm"] / 2**20:,.0f}', f'{procs[k].info["setup_s"]:.1f}'))
    print(f'\nOut-of-core loading ({datetime.date.today()}, torch {torch.__version__}, h5py {h5py.__version__} / HDF5 '
          f'{h5py.version.hdf5_version}, 1 thread per loader, {os.cpu_count()} cores on the machine, load average at the end '
          f'{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f})')
    print(f'cache {F:,} frames x 17 joints ({cache_gib:.2f} GiB, arrays {arrays / 2**30:.2f} GiB), {procs["ooc"].info["clips"]:,} '
          f'training clips of {T} frames (stride {STRIDE}), bs {a.bs}; {n_files:,} MotionBERT-style clip files ({clip_gib:.2f} GiB); '
          f'{a.rounds} rounds x {a.seconds:g} s per loader, interleaved; malloc tuning {"on" if a.malloc_tuning else "off"}')
    print(f'block cache: {procs["ooc"].info["blocks"]}\n')
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in [rows[0], tuple('-' * x for x in w)] + rows[1:]:
        print('  '.join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print('\ntarget: out of core >= 2x the MotionBERT-style loader, resident memory bounded '
          '(VmRSS / VmHWM: the loader process after its last round / its peak, setup included)')


if __name__ == '__main__':
    if '--child' in sys.argv or '--out-of-core' in sys.argv:
        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument('--out-of-core', action='store_true', help='compare out-of-core, in-memory and MotionBERT-style loading')
        ap.add_argument('--frames', type=int, default=1_500_000, help='frame-views in the random cache')
        ap.add_argument('--seconds', type=float, default=3.0, help='seconds per loader per round')
        ap.add_argument('--rounds', type=int, default=7, help='rounds (each loader once per round)')
        ap.add_argument('--warmup', type=float, default=3.0, help='seconds each loader loads before the rounds')
        ap.add_argument('--bs', type=int, default=64, help='clips per batch')
        ap.add_argument('--mb-clips', type=int, default=15_000, help='most MotionBERT-style clip files written')
        ap.add_argument('--block-frames', type=int, default=16384, help='out of core: rows per block')
        ap.add_argument('--window', type=int, default=8, help='out of core: blocks shuffled together')
        ap.add_argument('--max-in-memory', type=float, default=0.25, help='skip the in-memory loader when its arrays exceed this share of the available memory')
        ap.add_argument('--skip-in-memory', action='store_true', help='skip the in-memory loader')
        ap.add_argument('--no-malloc-tuning', dest='malloc_tuning', action='store_false', help='leave glibc malloc as it is')
        ap.add_argument('--dir', default=None, help='folder for the temporary cache and clip files (default: the system temp)')
        ap.add_argument('--child', choices=list(KINDS), help=argparse.SUPPRESS)
        ap.add_argument('--cache', help=argparse.SUPPRESS)
        ap.add_argument('--clips', help=argparse.SUPPRESS)
        a = ap.parse_args()
        child(a) if a.child else out_of_core(a)
    else:
        main()
