"""`prepare` benchmark: generate an H36M-sized synthetic raw tree (D3_Positions CDFs + metadata.xml), then prepare it.

Default size ≈ 1.5M frame-views: 7 subjects × 30 sequences (S11 has 29 usable) × ~1800 frames × 4 cameras.
Generation and prepare (read CDFs -> project into 4 cameras -> HDF5 cache) are timed separately, then a second
prepare of the unchanged tree shows the reuse check, all in a temporary directory (~0.2 GB raw, ~0.2 GB cache).

    .venv/bin/python benchmarks/prepare.py                  # full size
    .venv/bin/python benchmarks/prepare.py --frames 300     # quick (≈250k frame-views)
"""
import argparse, resource, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from hpe_pretrain.data.cache import PoseCache  # noqa: E402
from hpe_pretrain.data.prepare import prepare  # noqa: E402
from hpe_pretrain.data.synthetic import write_synthetic_h36m  # noqa: E402


def du(p: Path) -> int: return sum(f.stat().st_size for f in p.rglob('*') if f.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--frames', type=int, default=1800, help='mean frames per sequence (50 Hz)')
    ap.add_argument('--dir', default=None, help='work directory (default: a temporary one)')
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        d = Path(d)
        t0 = time.perf_counter()
        raw = write_synthetic_h36m(d / 'raw', frames_per_seq=a.frames)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = prepare('h36m', raw, d / 'h36m.h5', progress=False)
        t_prep = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepare('h36m', raw, out, progress=False)
        t_reuse = time.perf_counter() - t0
        with PoseCache(out) as c: n_seq, n_frames = len(c), c.n_frames
        raw_mb, cache_mb = du(raw) / 2**20, out.stat().st_size / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    rows = [('generate synthetic raw tree (210 CDFs + metadata.xml)', t_gen, f'{raw_mb:.0f} MB raw, {n_frames // 4:,} world frames'),
            ('prepare: CDF -> 4 cameras -> HDF5 cache (h36m17)', t_prep, f'{n_seq} seqs, {n_frames:,} frame-views, {cache_mb:.0f} MB'),
            ('prepare again, source unchanged (reuse check)', t_reuse, 'fingerprint of 211 files')]
    print(f"prepare benchmark (frames/seq ≈ {a.frames}; peak RSS {rss:.0f} MB)")
    print(f"{'step':55s} {'seconds':>8s}  {'frame-views/s':>13s}  notes")
    for name, t, note in rows:
        rate = f'{n_frames / t:,.0f}' if 'reuse' not in name else '-'
        print(f"{name:55s} {t:8.2f}  {rate:>13s}  {note}")
    print(f"target: prepare < 120 s for ≈1.5M frame-views -> {'OK' if t_prep < 120 else 'MISSED'}")


if __name__ == '__main__':
    main()
