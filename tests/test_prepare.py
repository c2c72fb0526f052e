"""`prepare` end to end on synthetic trees: splits, reuse/rebuild, bad sources, and a killed run (SIGKILL)."""
import os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.prepare import prepare, data_root, DATA_ENV
from hpe_pretrain.data.synthetic import write_synthetic_h36m

REPO = Path(__file__).resolve().parents[1]
H36M_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')


def _no_cache(folder: Path, name: str) -> bool:
    return not any(p.name.startswith(name) for p in folder.iterdir())


def test_synthetic_h36m_splits(tmp_path):
    out = prepare('synthetic', out=tmp_path / 'h36m.h5', subjects=H36M_SUBJECTS, frames_per_seq=10, progress=False)
    with PoseCache(out) as c:
        assert (c.dataset, c.joints) == ('synthetic', 'h36m17')
        assert len(c) == (7 * 30 - 1) * 4                          # S11 'Directions' is dropped, 4 cameras each
        split = dict(zip(c.seqs.subject.tolist(), c.seqs.split.tolist()))
        assert {s for s, v in split.items() if v == 'train'} == {'S1', 'S5', 'S6', 'S7', 'S8'}
        assert {s for s, v in split.items() if v == 'test'} == {'S9', 'S11'}
        assert c.n_frames == int(c.seqs.length.sum()) and set(c.seqs.fps.tolist()) == {50.0}
        assert 'S11/Directions/54138969' not in set(c.seqs.name.tolist())
        x = c.read('joints_2d', 0, c.n_frames)
        inside = ((x >= 0) & (x < np.stack([c.seqs.width, c.seqs.height], 1).repeat(c.seqs.length, 0)[:, None])).all(-1).all(-1)
        assert inside.mean() > 0.95


def test_synthetic_3dhp_splits(tmp_path):
    out = prepare('synthetic', fmt='mpi_inf_3dhp', out=tmp_path / '3dhp.h5', frames_per_seq=10, test_frames_per_seq=30, progress=False)
    with PoseCache(out) as c:
        assert c.joints == 'mpi17' and len(c) == 8 * 2 * 8 + 6
        t = c.seqs
        assert set(t.subject[t.split == 'train'].tolist()) == {f'S{i}' for i in range(1, 9)}
        assert set(t.subject[t.split == 'test'].tolist()) == {f'TS{i}' for i in range(1, 7)}
        assert set(t.camera[t.split == 'train'].tolist()) == {'0', '1', '2', '4', '5', '6', '7', '8'}
        test = c.select(split='test')
        assert {(int(t.width[i]), int(t.height[i])) for i in test} == {(2048, 2048), (1920, 1080)}
        valid = c.read('valid', int(t.start[test[0]]), int(t.start[test[0]] + t.length[test[0]]))
        assert 0 < (valid == 0).sum() < len(valid) // 3


def test_reuse_and_rebuild(tmp_path):
    raw = write_synthetic_h36m(tmp_path / 'raw', subjects=('S1', 'S9'), frames_per_seq=10)
    out = tmp_path / 'c.h5'
    prepare('h36m', raw, out, subjects=('S1', 'S9'), progress=False)
    os.utime(out, ns=(10**18, 10**18))
    prepare('h36m', raw, out, subjects=('S1', 'S9'), progress=False)
    assert out.stat().st_mtime_ns == 10**18                        # unchanged source: reused
    f = next((raw / 'S1' / 'MyPoseFeatures' / 'D3_Positions').glob('*.cdf'))
    os.utime(f, ns=(10**15, 10**15))                               # a source file's mtime changes
    prepare('h36m', raw, out, subjects=('S1', 'S9'), progress=False)
    assert out.stat().st_mtime_ns != 10**18                        # rebuilt


def test_bad_sources_leave_no_cache(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='not found'): prepare('h36m', tmp_path / 'absent', tmp_path / 'x.h5', progress=False)
    with pytest.raises(ValueError, match='no H36M data found'): prepare('h36m', tmp_path / 'empty', tmp_path / 'x.h5', progress=False)
    raw = write_synthetic_h36m(tmp_path / 'raw', subjects=('S1',), frames_per_seq=10)
    f = sorted((raw / 'S1' / 'MyPoseFeatures' / 'D3_Positions').glob('*.cdf'))[-1]
    f.write_bytes(f.read_bytes()[:200])                            # truncated CDF, read last
    with pytest.raises(ValueError, match=f.name): prepare('h36m', raw, tmp_path / 'x.h5', subjects=('S1',), progress=False)
    assert _no_cache(tmp_path, 'x.h5')


def test_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_root() == Path('data')
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_root() == tmp_path and data_root('/x') == Path('/x')


_SLOW_PREPARE = """
import sys, time
from hpe_pretrain.data import prepare as P
open_ = P._open
def slow(*a, **k):
    for s in open_(*a, **k): time.sleep(0.05); yield s
P._open = slow
P.prepare('h36m', sys.argv[1], sys.argv[2], subjects=('S1',), progress=False)
"""


def test_killed_prepare_leaves_no_cache(tmp_path):
    raw = write_synthetic_h36m(tmp_path / 'raw', subjects=('S1',), frames_per_seq=10)
    out = tmp_path / 'killed.h5'
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
    proc = subprocess.Popen([sys.executable, '-c', _SLOW_PREPARE, str(raw), str(out)], env=env)
    try:
        t0 = time.time()
        while not list(tmp_path.glob('.killed.h5.*.tmp')):          # the cache is being written
            assert proc.poll() is None, 'prepare ended before it could be killed'
            assert time.time() - t0 < 60, 'no temporary cache file appeared'
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()
    assert not out.exists()                                        # no final cache
    prepare('h36m', raw, out, subjects=('S1',), progress=False)   # a later run succeeds and clears the leftover
    assert out.exists() and not list(tmp_path.glob('.killed.h5.*.tmp'))
