"evaluate_cache records the cache's 2D input source and the 3DHP PCK convention in every result."
import json

import h5py
import numpy as np
import pytest

from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.train.evaluate import evaluate_cache


def _seq(subject: str, n: int, **kw) -> PoseSequence:
    r = np.random.default_rng(n)
    j3 = (r.normal(size=(n, 17, 3)) * 0.3 + [0, 0, 5]).astype(np.float32)
    return PoseSequence(subject, 'Seq', '0', 'test', j3, (r.random((n, 17, 2)) * 1000).astype(np.float32), 50., 1000, 1000, **kw)


@pytest.fixture
def caches(tmp_path):
    m = write_cache(tmp_path / '3dhp.h5', [_seq('TS1', 12), _seq('TS2', 7)], 'mpi_inf_3dhp', 'mpi17')
    h = write_cache(tmp_path / 'h36m.h5', [_seq('S9', 10)], 'h36m', 'h36m17')
    return m, h


def test_input_2d_recorded(caches, tmp_path):
    m, h = caches
    oracle = lambda s: s.joints_3d
    assert evaluate_cache(lambda b: b, m, input_fn=oracle, clip_len=5).settings['input_2d'] == 'unknown'
    with h5py.File(m, 'a') as f: f.attrs['input_2d'] = 'annot2'
    with h5py.File(h, 'a') as f: f.attrs['input_2d'] = np.bytes_(b'cpn_ft_h36m_dbb')  # a fixed-length string
    r = evaluate_cache(lambda b: b, m, input_fn=oracle, clip_len=5, pck_joints=17)
    rh = evaluate_cache(lambda b: b, h, input_fn=oracle, clip_len=5, pck_joints=17)
    assert (r.settings['input_2d'], rh.settings['input_2d']) == ('annot2', 'cpn_ft_h36m_dbb')
    assert 'pck_joints' not in rh.settings and 'pck_joints' not in rh.summary  # H36M: nothing recorded
    assert str(r).split('\n')[1] == 'input 2D: annot2; aggregation: frame-wise (all valid frames pooled); flip TTA: off; PCK joints: 17'
    assert str(rh).split('\n')[1] == 'input 2D: cpn_ft_h36m_dbb; aggregation: action-wise; flip TTA: off'
    r.write(tmp_path / 'out')
    js = json.loads((tmp_path / 'out' / 'results.json').read_text())
    assert js['settings']['input_2d'] == 'annot2' and js['settings']['pck_joints'] == js['summary']['pck_joints'] == 17
    md = (tmp_path / 'out' / 'results.md').read_text()
    assert '- **input_2d**: annot2' in md and '- **pck_joints**: 17' in md


def test_pck_joints_through_evaluate_cache(caches):
    m, _ = caches
    shifted = lambda s: s.joints_3d + np.where(np.arange(17) < 14, 0.2, 0.)[:, None].astype(np.float32)
    r14, r17 = (evaluate_cache(lambda b: b, m, input_fn=shifted, clip_len=5, pck_joints=n) for n in (14, 17))
    assert r14.summary['PCK'] == 0 and abs(r17.summary['PCK'] - 300 / 17) < 1e-6
    assert [g['group'] for g in r17.tables['per_joint_group']][-4:] == ['Hip', 'Knee', 'Ankle', 'Total']
    with pytest.raises(ValueError, match=r'pck_joints must be one of \(14, 17\)'):
        evaluate_cache(lambda b: b, m, 5, pck_joints=15)
