"""Benchmark: batched torch augmentation + corruption vs the same operations per sample in NumPy.

    python benchmarks/transforms.py [--batch 256] [--frames 243] [--repeats 5] [--device cpu|cuda] [--threads N]
                                    [--no-malloc-tuning]

Prints one row per operation (ms per batch) and the speed-up of the batched torch transforms over a per-sample
NumPy implementation (what the anchors do inside their Dataset.__getitem__), as `N.Nx`. Timings are the best of
`--repeats` runs (the machines are shared); torch runs single-threaded by default, like NumPy.

The NumPy reference is written the way a careful per-sample implementation would be, with the same algorithms as
the torch transforms: float32 random draws (like torch), the radial polynomial in Horner form, keyframe weights
computed once per clip length and applied with a BLAS matmul, the squared displacement for the synthetic
confidence, and the same table of k-joint subsets for P-STMO's spatial masks. The last line times the torch
random draws alone (the same numbers of normal and uniform variates): no batched implementation beats that floor.

Like `hpe-pretrain fit`, the benchmark first lets glibc keep freed large buffers for reuse
(`hpe_pretrain.cli.tune_malloc`); `--no-malloc-tuning` measures with glibc's defaults, where every new
multi-megabyte tensor of the chain is page-faulted and zeroed by the kernel again (the per-sample NumPy arrays are
too small to be affected).
"""
from __future__ import annotations
import argparse, functools, itertools, time
import numpy as np
import torch
from hpe_pretrain.data.skeleton import get_skeleton
from hpe_pretrain.transforms.normalize import NormalizePose
from hpe_pretrain.transforms.augment import RandomRotateScale, RandomFlip, RandomJitter2D
from hpe_pretrain.transforms.corrupt import MotionBERTCorrupt, PSTMOMask, H36M17_NOISE_STD
from hpe_pretrain.testing import synth_pose_batch
from hpe_pretrain.cli import tune_malloc

# ---------------------------------------------------------------- NumPy per-sample reference
def np_project(X, intr):
    "(T, J, 3) camera metres, (9,) intrinsics -> (T, J, 2) px, H36M distortion."
    f, c, k, p = intr[0:2], intr[2:4], intr[4:7], intr[7:9]
    xy = X[..., :2] / X[..., 2:3]
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    s = 1 + r2 * (k[0] + r2 * (k[1] + r2 * k[2])) + p[0] * y + p[1] * x    # radial (Horner) + tangential
    return np.stack([x * s + p[1] * r2, y * s + p[0] * r2], -1) * f + c

def np_rotate_scale(s, rng, root=0, max_angle=np.pi, scale=(.9, 1.1)):
    a, sc = rng.uniform(-max_angle, max_angle), rng.uniform(*scale)
    if not s['intrinsics'].any(): return s
    pv = s['j3d'][:, root].mean(0)
    d = s['j3d'] - pv
    c, sn = np.cos(a), np.sin(a)
    j3d = np.stack([c * d[..., 0] + sn * d[..., 2], d[..., 1], c * d[..., 2] - sn * d[..., 0]], -1) * sc + pv
    return dict(s, j3d=j3d, kp2d=np_project(j3d, s['intrinsics']))

def np_flip(s, rng, perm, p=.5):
    if rng.random() >= p: return s
    w = s['size'][0]
    kp = s['kp2d'][:, perm].copy(); kp[..., 0] = w - kp[..., 0]
    j3 = s['j3d'][:, perm].copy(); j3[..., 0] *= -1
    intr = s['intrinsics'].copy()
    if intr.any(): intr[2], intr[8] = w - intr[2], -intr[8]
    return dict(s, kp2d=kp, j3d=j3, conf=s['conf'][:, perm], intrinsics=intr)

def np_jitter(s, rng, std=1.):
    return dict(s, kp2d=s['kp2d'] + rng.standard_normal(s['kp2d'].shape, dtype=np.float32) * np.float32(std))

def np_normalize(s, root=0):
    w, h = s['size']
    x2d = s['kp2d'] / w * 2 - np.array([1, h / w], np.float32)
    y3d = s['j3d'] - s['j3d'][:, root:root + 1]
    return dict(s, x2d=x2d, y3d=y3d, root3d=s['j3d'][:, root], x=np.concatenate([x2d, s['conf'][..., None]], -1))

@functools.lru_cache(maxsize=None)
def np_keyframe_weights(T, every):
    "(T, K) float32 linear-interpolation weights, computed once per clip length."
    K = (T - 1) // every + 2
    pos = np.arange(T) / every; i0 = np.floor(pos).astype(int); fr = pos - i0
    W = np.zeros((T, K), np.float32); W[np.arange(T), i0] = 1 - fr; W[np.arange(T), i0 + 1] += fr
    return W

def np_motionbert(s, rng, std, every=9, p_uniform=.1, outlier=5., jitter=.002, conf_scale=2., jr=.05, fr=.1):
    x = s['x']; T, J, _ = x.shape
    W = np_keyframe_weights(T, every); K = W.shape[1]
    sd = std.astype(np.float32)[:, None]
    gauss = rng.standard_normal((K, J, 2), dtype=np.float32) * sd
    unif = (rng.random((K, J, 2), dtype=np.float32) * 2 - 1) * (outlier * sd)
    key = np.where(rng.random((K, J, 1), dtype=np.float32) < p_uniform, unif, gauss)
    noise = (W @ key.reshape(K, -1)).reshape(T, J, 2) + rng.standard_normal((T, J, 2), dtype=np.float32) * np.float32(jitter)
    conf = np.exp((noise[..., 0] ** 2 + noise[..., 1] ** 2) * (-.5 / (conf_scale * sd[:, 0]) ** 2))
    x = np.concatenate([x[..., :2] + noise, x[..., 2:] * conf[..., None]], -1)
    mj = rng.random((T, J), dtype=np.float32) < jr; mf = rng.random(T, dtype=np.float32) < fr
    x[mj | mf[:, None]] = 0
    return dict(s, x=x, mask_joints=mj, mask_frames=mf)

@functools.lru_cache(maxsize=None)
def np_subsets(J, k):
    "(C(J, k), J) bool: every k-subset of the J joints, one per row (what PSTMOMask caches)."
    return np.array([[j in c for j in range(J)] for c in itertools.combinations(range(J), k)], bool)

def np_pstmo(s, rng, ratio=.8, k=2):
    x = s['x'].copy(); T, J, _ = x.shape
    mf = np.zeros(T, bool); mf[rng.permutation(T)[:round(ratio * T)]] = True
    tab = np_subsets(J, k)
    mj = tab[rng.integers(len(tab), size=T)] & ~mf[:, None]; mf = mf | s['mask_frames']; mj = mj | s['mask_joints']
    x[mj | mf[:, None]] = 0
    return dict(s, x=x, mask_frames=mf, mask_joints=mj)

# ---------------------------------------------------------------- timing
def timeit(fn, repeats, sync=lambda: None):
    fn(); sync()                                     # warm-up (allocations, generators, caches)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t0)
    return float(np.min(ts)) * 1000

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--batch', type=int, default=256); ap.add_argument('--frames', type=int, default=243)
    ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1, like the single-threaded NumPy; 0: torch default)')
    ap.add_argument('--no-malloc-tuning', action='store_true', help="glibc's default thresholds (see the module docstring)")
    a = ap.parse_args()
    tuned = False if a.no_malloc_tuning else tune_malloc()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)
    sk = get_skeleton('h36m17'); perm = np.array(sk.flip_perm); std = np.array(H36M17_NOISE_STD)
    b = synth_pose_batch(B=a.batch, T=a.frames, J=17, seed=0, device=dev)
    steps = [('rotate+scale+reproject', RandomRotateScale(sk, seed=0)), ('flip (p=0.5)', RandomFlip(sk, seed=0)),
             ('2D jitter', RandomJitter2D(seed=0)), ('normalise', NormalizePose(sk)),
             ('MotionBERT corruption', MotionBERTCorrupt(seed=0)), ('P-STMO masking', PSTMOMask(seed=0))]
    samples = [{k: v[i].cpu().numpy() for k, v in b.items()} for i in range(a.batch)]
    rng = np.random.default_rng(0)
    np_steps = [lambda s: np_rotate_scale(s, rng), lambda s: np_flip(s, rng, perm), lambda s: np_jitter(s, rng),
                np_normalize, lambda s: np_motionbert(s, rng, std), lambda s: np_pstmo(s, rng)]
    rows, tb, ns = [], b, samples
    for (name, tfm), nf in zip(steps, np_steps):
        t_in, n_in = tb, ns
        rows.append((name, timeit(lambda: tfm(t_in, split_idx=0), a.repeats, sync),
                     timeit(lambda: [nf(s) for s in n_in], a.repeats)))
        tb, ns = tfm(t_in, split_idx=0), [nf(s) for s in n_in]
    def t_all():
        o = b
        for _, tfm in steps: o = tfm(o, split_idx=0)
    def n_all():
        for s in samples:
            for nf in np_steps: s = nf(s)
    rows.append(('total (augment + corrupt)', timeit(t_all, a.repeats, sync), timeit(n_all, a.repeats)))
    B, T, J = a.batch, a.frames, 17; K = (T - 1) // 9 + 2
    g = torch.Generator(dev).manual_seed(0); kw = dict(generator=g, device=dev)
    def t_draws():  # the variates the pipeline draws: 2D jitter, MotionBERT keyframes + jitter + masks, P-STMO masks
        torch.randn(B, T, J, 2, **kw); torch.rand(3, B, K, J, **kw); torch.randn(2, B, K, J, **kw)
        torch.randn(2, B, T, J, **kw); torch.rand(B, T, J + 1, **kw); torch.rand(B, T, **kw); torch.randint(136, (B, T), **kw)
    def n_draws():
        for _ in range(B):
            rng.standard_normal((T, J, 2), dtype=np.float32); rng.standard_normal((K, J, 2), dtype=np.float32)
            rng.random((K, J, 3), dtype=np.float32); rng.standard_normal((T, J, 2), dtype=np.float32)
            rng.random((T, J + 1), dtype=np.float32); rng.permutation(T); rng.integers(136, size=T)
    rows.append(('random draws alone', timeit(t_draws, a.repeats, sync), timeit(n_draws, a.repeats)))
    print(f"batch ({a.batch}, {a.frames}, 17, 2), device {dev}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, best of {a.repeats}, malloc tuning {'on' if tuned else 'off'}")
    print(f"{'operation':<28}{'torch batch ms':>16}{'numpy per-sample ms':>22}{'speed-up':>10}")
    for name, t, n in rows: print(f"{name:<28}{t:>16.1f}{n:>22.1f}{f'{n / t:.1f}x':>10}")

if __name__ == '__main__': main()
