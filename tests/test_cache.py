"""Pose cache: atomic writes (exceptions, KeyboardInterrupt, SIGKILL) and clear errors for bad files."""
import os, signal, subprocess, sys, textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.cache_writer import write_cache

REPO = Path(__file__).resolve().parents[1]


def _seq(i: int, n: int = 20, split: str = 'train') -> PoseSequence:
    rng = np.random.default_rng(i)
    return PoseSequence(f'S{i}', 'Walking 1', '54138969', split,
                        joints_3d=rng.normal(size=(n, 17, 3)).astype(np.float32),
                        joints_2d=rng.uniform(0, 1000, size=(n, 17, 2)).astype(np.float32),
                        fps=50.0, width=1000, height=1002)


def _failing(k: int, exc: BaseException):
    yield from (_seq(i) for i in range(1, k + 1))
    raise exc


def test_roundtrip(tmp_path):
    seqs = [_seq(1), _seq(2, 7), _seq(3, 5, 'test')]
    seqs[2].valid = np.array([1, 0, 1, 1, 0], np.uint8)
    seqs[2].factor_2_5d = np.full(5, 2.5, np.float32)
    p = write_cache(tmp_path / 'c.h5', iter(seqs), 'h36m', 'h36m17', source={'files': []})
    with PoseCache(p) as c:
        assert (len(c), c.n_frames, c.n_joints) == (3, 32, 17)
        assert c.source == {'files': []}
        for i, s in enumerate(seqs):
            r = c.sequence(i)
            assert r.name == s.name and r.split == s.split
            np.testing.assert_array_equal(r.joints_3d, s.joints_3d)
            np.testing.assert_array_equal(r.joints_2d, s.joints_2d)
            np.testing.assert_array_equal(r.confidence, np.ones((s.n_frames, 17), np.float32))
        np.testing.assert_array_equal(c.sequence(2).valid, seqs[2].valid)
        assert np.isnan(c.sequence(0).factor_2_5d).all() and (c.sequence(0).valid == 1).all()


@pytest.mark.parametrize('exc', [RuntimeError('source broke'), KeyboardInterrupt()])
def test_failure_mid_generator_leaves_nothing(tmp_path, exc):
    with pytest.raises(type(exc)):
        write_cache(tmp_path / 'c.h5', _failing(2, exc), 'h36m', 'h36m17')
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_old_cache(tmp_path):
    p = write_cache(tmp_path / 'c.h5', [_seq(1)], 'h36m', 'h36m17')
    with pytest.raises(ValueError, match="field 'joints_2d' has shape"):
        bad = _seq(2); bad.joints_2d = bad.joints_2d[:3]
        write_cache(p, [_seq(3), bad], 'h36m', 'h36m17')
    assert sorted(q.name for q in tmp_path.iterdir()) == ['c.h5']
    with PoseCache(p) as c: assert c.seqs.subject.tolist() == ['S1']


def test_sigkill_leaves_no_cache(tmp_path):
    out = tmp_path / 'c.h5'
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from hpe_pretrain.data.sequence import PoseSequence
        from hpe_pretrain.data.cache_writer import write_cache
        def gen():
            for i in range(1, 100):
                yield PoseSequence(f'S{{i}}', 'Walking 1', '0', 'train', joints_3d=np.zeros((50, 17, 3)),
                                   joints_2d=np.zeros((50, 17, 2)), fps=50., width=1000, height=1000)
                if i == 3: print('READY', flush=True); time.sleep(120)
        write_cache({str(out)!r}, gen(), 'h36m', 'h36m17')
    """)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == 'READY', proc.stderr.read()
        tmp = tmp_path / f'.c.h5.{proc.pid}.tmp'
        assert tmp.exists()  # the writer was mid-way
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()
    assert not out.exists()
    # the next write to the same path cleans the dead writer's temp file
    write_cache(out, [_seq(1)], 'h36m', 'h36m17')
    assert sorted(q.name for q in tmp_path.iterdir()) == ['c.h5']


def test_not_hdf5(tmp_path):
    (tmp_path / 'x.h5').write_text('hello')
    with pytest.raises(ValueError, match=r"x\.h5: not a readable HDF5 pose cache"):
        PoseCache(tmp_path / 'x.h5')
    (tmp_path / 'empty.h5').write_bytes(b'')
    with pytest.raises(ValueError, match=r"empty\.h5: not a readable HDF5 pose cache"):
        PoseCache(tmp_path / 'empty.h5')


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.h5: pose cache does not exist"):
        PoseCache(tmp_path / 'nope.h5')


def test_truncated_cache(tmp_path):
    p = write_cache(tmp_path / 'c.h5', [_seq(i, 200) for i in range(1, 4)], 'h36m', 'h36m17')
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"c\.h5: "):
        PoseCache(p, in_memory=True)


def test_wrong_format_and_version(tmp_path):
    with h5py.File(tmp_path / 'other.h5', 'w') as f:
        f.attrs['format'] = 'mmpose'
    with pytest.raises(ValueError, match=r"other\.h5: attribute 'format' is 'mmpose', expected 'hpe_pretrain.posecache'"):
        PoseCache(tmp_path / 'other.h5')
    with h5py.File(tmp_path / 'noattr.h5', 'w') as f:
        f['joints_3d'] = np.zeros((1, 17, 3))
    with pytest.raises(ValueError, match=r"noattr\.h5: attribute 'format' is None"):
        PoseCache(tmp_path / 'noattr.h5')
    p = write_cache(tmp_path / 'v9.h5', [_seq(1)], 'h36m', 'h36m17')
    with h5py.File(p, 'a') as f:
        f.attrs['version'] = 9
    with pytest.raises(ValueError, match=r"v9\.h5: attribute 'version' is 9, this hpe_pretrain reads version 1"):
        PoseCache(p)


def test_missing_dataset(tmp_path):
    p = write_cache(tmp_path / 'c.h5', [_seq(1)], 'h36m', 'h36m17')
    with h5py.File(p, 'a') as f:
        del f['confidence']
    with pytest.raises(ValueError, match=r"c\.h5: dataset 'confidence' is missing"):
        PoseCache(p)
