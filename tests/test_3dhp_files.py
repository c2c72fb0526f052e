"""End-to-end MPI-INF-3DHP file tests: a small raw tree and P-STMO npz files, written in the real layouts with
made-up numbers, read through `iter_3dhp` and into a pose cache."""
import numpy as np
import pytest

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.data.mpi_inf_3dhp import (
    VNECT_CAMERAS, read_3dhp_annot, read_3dhp_test_annot, write_3dhp_sequence, write_3dhp_test_annot)
from hpe_pretrain.data.mpi_inf_3dhp_files import detect_3dhp_format, iter_3dhp, write_pstmo_npz_test, write_pstmo_npz_train

MPI17_FROM_28 = [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6]  # formats.md §4


def _train(rng, F, n=14):
    a2 = [rng.uniform(0, 2048, (F, 28, 2)) for _ in range(n)]
    a3 = [rng.normal(0, 400, (F, 28, 3)) + [0, 0, 4500] for _ in range(n)]
    return a2, a3, [a * 0.95 for a in a3]


def _test(rng, N):
    a3 = rng.normal(0, 400, (N, 17, 3)) + [0, 0, 4000]
    return dict(annot2=rng.uniform(0, 1920, (N, 17, 2)), annot3=a3, univ_annot3=a3 * 1.05,
                valid=rng.integers(0, 2, N), activity=rng.integers(1, 8, N))


@pytest.fixture
def raw_tree(tmp_path):
    rng = np.random.default_rng(0)
    train = {('S1', 1): _train(rng, 6), ('S1', 2): _train(rng, 4), ('S7', 1): _train(rng, 3), ('S7', 2): _train(rng, 5)}
    for (s, q), v in train.items(): write_3dhp_sequence(tmp_path, s, q, *v)
    test = {'TS1': _test(rng, 7), 'TS6': _test(rng, 2)}
    for ts, v in test.items(): write_3dhp_test_annot(tmp_path / 'mpi_inf_3dhp_test_set' / ts / 'annot_data.mat', **v)
    return tmp_path, train, test


def test_raw_tree_to_cache(raw_tree, tmp_path_factory):
    root, train, test = raw_tree
    assert detect_3dhp_format(root) == 'raw'
    seqs = list(iter_3dhp(root, usable_frames={('S7', 2): 2}))
    assert [s.name for s in seqs[:2]] == ['S1/Seq1/0', 'S1/Seq1/1']
    assert len(seqs) == 4 * len(VNECT_CAMERAS) + 2
    out = tmp_path_factory.mktemp('cache') / 'mpi.h5'
    write_cache(out, iter_3dhp(root, usable_frames={('S7', 2): 2}), dataset='mpi_inf_3dhp', joints='mpi17')
    with PoseCache(out) as cache:
        assert len(cache) == len(seqs)
        for i, s in enumerate(seqs):
            c = cache.sequence(i)
            assert (c.name, c.split, c.n_frames, c.fps, c.width, c.height) == (s.name, s.split, s.n_frames, s.fps, s.width, s.height)
            if s.split == 'train':
                a2, a3, u3 = (x[int(s.camera)] for x in train[s.subject, int(s.action[3:])])
                n = {('S7', 'Seq2'): 2}.get((s.subject, s.action), len(a3))  # truncation to usable frames
                np.testing.assert_allclose(c.joints_3d, a3[:n, MPI17_FROM_28] / 1000, rtol=1e-6, atol=1e-6)
                np.testing.assert_allclose(c.joints_3d_univ, u3[:n, MPI17_FROM_28] / 1000, rtol=1e-6, atol=1e-6)
                np.testing.assert_allclose(c.joints_2d, a2[:n, MPI17_FROM_28], rtol=1e-6)
            else:
                v = test[s.subject]
                np.testing.assert_allclose(c.joints_3d, v['annot3'] / 1000, rtol=1e-6, atol=1e-6)
                np.testing.assert_allclose(c.joints_3d_univ, v['univ_annot3'] / 1000, rtol=1e-6, atol=1e-6)
                np.testing.assert_array_equal(c.valid, v['valid'])
    assert [s.fps for s in seqs if s.camera == '0'] == [25.0, 50.0, 25.0, 25.0, 25.0, 50.0]  # S1 Seq2 is 50 fps
    assert [(s.width, s.height) for s in seqs[-2:]] == [(2048, 2048), (1920, 1080)]


def test_pstmo_npz(tmp_path):
    rng = np.random.default_rng(1)
    tr = {'S2 Seq1': ({c: {'data_2d': rng.uniform(0, 2048, (3, 17, 2)), 'data_3d': rng.normal(0, 500, (3, 17, 3))}
                       for c in ('0', '1', '2')}, 25)}
    te = {'TS3': {'data_2d': rng.uniform(0, 2048, (4, 17, 2)), 'data_3d': rng.normal(0, 500, (4, 17, 3)),
                  'valid': np.array([1, 1, 0, 1])}}
    write_pstmo_npz_train(tmp_path / 'data_train_3dhp.npz', tr)
    write_pstmo_npz_test(tmp_path / 'data_test_3dhp.npz', te)
    assert detect_3dhp_format(tmp_path) == 'pstmo_npz'
    with pytest.raises(ValueError, match='trust_pickle=True'): list(iter_3dhp(tmp_path))
    seqs = list(iter_3dhp(tmp_path, trust_pickle=True))
    assert [(s.name, s.split) for s in seqs] == [('S2/Seq1/0', 'train'), ('S2/Seq1/1', 'train'), ('S2/Seq1/2', 'train'),
                                                 ('TS3/test/0', 'test')]
    np.testing.assert_allclose(seqs[1].joints_3d, tr['S2 Seq1'][0]['1']['data_3d'] / 1000, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(seqs[3].valid, [1, 1, 0, 1])


def test_bad_sources(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no MPI-INF-3DHP files'): iter_3dhp(tmp_path / 'empty')
    p = tmp_path / 'S1' / 'Seq1' / 'annot.mat'
    write_3dhp_sequence(tmp_path, 'S1', 1, *_train(np.random.default_rng(2), 3))
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(ValueError, match='annot.mat: cannot read'): read_3dhp_annot(p)
    q = tmp_path / 'TS1' / 'annot_data.mat'
    q.parent.mkdir(); q.write_bytes(b'not a mat file at all')
    with pytest.raises(ValueError, match='TS1/annot_data.mat: neither HDF5'): read_3dhp_test_annot(q)
