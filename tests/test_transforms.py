"""Batch transforms end to end: a pose cache with known cameras -> `pose_dataloaders(after_batch=...)` -> the
augmentation, normalisation and corruption transforms on real contract batches; and a smoke run of the benchmark."""
import subprocess, sys
from pathlib import Path

import numpy as np
import torch

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.data.camera import Camera
from hpe_pretrain.data.loaders import pose_dataloaders
from hpe_pretrain.transforms.augment import RandomFlip, RandomRotateScale, project_intrinsics
from hpe_pretrain.transforms.corrupt import PSTMOMask, masked_entries
from hpe_pretrain.transforms.normalize import NormalizePose, PoseCodec
from hpe_pretrain.testing import synth_pose_batch

REPO = Path(__file__).resolve().parents[1]


def _cache(tmp_path, n=6, T=20):
    "Sequences of synthetic poses, each seen by its own known camera (identity extrinsics: 3D is camera space)."
    b = synth_pose_batch(B=n, T=T, seed=0)
    seqs = []
    for i in range(n):
        intr = b['intrinsics'][i].double().numpy(); w, h = b['size'][i].int().tolist()
        cam = Camera(str(i), np.eye(3), np.zeros(3), intr[:2], intr[2:4], intr[4:7], intr[7:], w, h)
        seqs.append(PoseSequence(f'S{i + 1}', 'Walking 1', str(i), 'train' if i < 4 else 'test',
                                 b['j3d'][i].numpy(), b['kp2d'][i].numpy(), 50.0, w, h, camera_params=cam))
    return write_cache(tmp_path / 'c.h5', seqs, 'synthetic', 'h36m17')


def test_transforms_in_dataloaders(tmp_path):
    tfms = [RandomRotateScale('h36m17', seed=0), RandomFlip('h36m17', p=1.0, seed=0), NormalizePose('h36m17'),
            PSTMOMask(frame_ratio=0.5, seed=0)]
    path = _cache(tmp_path)
    with PoseCache(path) as c: intr = c.intrinsics.copy()
    dls = pose_dataloaders(path, clip_len=10, stride=10, bs=4, after_batch=tfms)
    for split, dl in (('train', dls.train), ('valid', dls.valid)):
        for b in dl:
            B = len(b['seq'])
            assert b['x'].shape == (B, 10, 17, 3) and b['y3d'].shape == (B, 10, 17, 3)
            assert (b['mask_frames'].sum(1) == 5).all() and (b['mask_joints'].sum(-1) == 2 * ~b['mask_frames']).all()
            m = masked_entries(b)
            assert (b['x'][m] == 0).all()
            torch.testing.assert_close(b['x'][~m], PoseCodec().encode(b['kp2d'], b['size'], b['conf'])[~m])
            # 2D and 3D stay consistent through rotation and flip (intrinsics are mirrored with the flip)
            torch.testing.assert_close(project_intrinsics(b['j3d'], b['intrinsics']), b['kp2d'], atol=1e-2, rtol=0)
            orig = torch.from_numpy(intr[b['seq'].numpy()])
            if split == 'valid':  # no train-only augmentation: the original cameras
                torch.testing.assert_close(b['intrinsics'], orig)
            else:                 # every training sample flipped (p=1): cx -> w - cx, pB -> -pB
                torch.testing.assert_close(b['intrinsics'][:, 2], b['size'][:, 0] - orig[:, 2])
                torch.testing.assert_close(b['intrinsics'][:, 8], -orig[:, 8])


def test_benchmark_smoke():
    r = subprocess.run([sys.executable, str(REPO / 'benchmarks' / 'transforms.py'), '--batch', '4', '--frames', '27',
                        '--repeats', '1'], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'total (augment + corrupt)' in r.stdout and r.stdout.count('x\n') == 8  # 6 operations, the total, the random-draw floor
