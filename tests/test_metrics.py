"Reference checks of hpe_pretrain.train.metrics / hpe_pretrain.train.evaluate against plain NumPy written from the definitions (formats.md §3)."
import numpy as np
import pytest
import torch

from hpe_pretrain.train.metrics import (mpjpe, p_mpjpe, n_mpjpe, mpjve, pck3d, auc3d, pck_table, MPI_JOINT_GROUPS,
                                  mpi_pck_groups, group_joints, H36M_METRICS, Metric)
from hpe_pretrain.train.evaluate import predict_sequence
from hpe_pretrain.train.eval_protocols import evaluate_h36m, evaluate_3dhp, is_skipped
from hpe_pretrain.data.h36m import H36M_ACTIONS


def ref_p_mpjpe_frame(pred, gt):
    "The reference p_mpjpe steps for one (J, 3) frame: X = gt, Y = pred."
    muX, muY = gt.mean(0), pred.mean(0)
    X0, Y0 = gt - muX, pred - muY
    nX, nY = np.sqrt((X0 ** 2).sum()), np.sqrt((Y0 ** 2).sum())
    X0, Y0 = X0 / nX, Y0 / nY
    U, s, Vt = np.linalg.svd(X0.T @ Y0)
    V = Vt.T
    R = V @ U.T
    if np.linalg.det(R) < 0:
        V[:, -1] *= -1; s[-1] *= -1
        R = V @ U.T
    a = s.sum() * nX / nY
    t = muX - a * muY @ R
    return np.linalg.norm(a * pred @ R + t - gt, axis=-1).mean()


@pytest.fixture
def poses():
    rng = np.random.default_rng(42)
    g = rng.normal(size=(3, 7, 17, 3)) * 250
    return g + rng.normal(size=g.shape) * 30, g


def test_mpjpe_nmpjpe_reference(poses):
    p, g = poses
    frames = [(p[b, t], g[b, t]) for b in range(3) for t in range(7)]
    assert abs(mpjpe(p, g) - np.mean([np.linalg.norm(a - b, axis=1).mean() for a, b in frames])) < 1e-6
    ref_n = [np.linalg.norm((a * b).sum() / (a * a).sum() * a - b, axis=1).mean() for a, b in frames]
    np.testing.assert_allclose(n_mpjpe(p, g, reduce=False).ravel(), ref_n, atol=1e-6)


def test_p_mpjpe_reference_and_invariance(poses):
    p, g = poses
    ref = [ref_p_mpjpe_frame(p[b, t], g[b, t]) for b in range(3) for t in range(7)]
    np.testing.assert_allclose(p_mpjpe(p, g, reduce=False).ravel(), ref, atol=1e-6)
    th = 0.7
    R = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    assert p_mpjpe(1.7 * g @ R.T + [100., -50., 3000.], g) < 1e-6
    assert n_mpjpe(0.6 * g, g) < 1e-6


def test_mpjve_reference(poses):
    p, g = poses
    ref = np.mean([np.mean(np.linalg.norm(np.diff(p[b], axis=0) - np.diff(g[b], axis=0), axis=-1)) for b in range(3)])
    assert abs(mpjve(p, g) - ref) < 1e-6


def test_pck_auc_reference(poses):
    p, g = (x[0] * 0.4 for x in poses)
    P, G = p - p[:, 14:15], g - g[:, 14:15]
    err = np.linalg.norm(P - G, axis=-1)[:, :14]
    assert abs(pck3d(p, g) - 100 * (err < 150).mean()) < 1e-9
    assert abs(auc3d(p, g) - np.mean([100 * (err < t).mean() for t in np.arange(0, 151, 5)])) < 1e-9
    tab = pck_table(p, g)
    for name, js in MPI_JOINT_GROUPS.items():
        e = np.linalg.norm(P - G, axis=-1)[:, list(js)]
        assert abs(tab[name]['PCK'] - 100 * (e < 150).mean()) < 1e-9
    tot = sum(tab[k]['PCK'] * len(js) for k, js in MPI_JOINT_GROUPS.items()) / 14
    assert abs(tab['Total']['PCK'] - tot) < 1e-9


def test_perfect_and_strict():
    g = np.random.default_rng(0).integers(-900, 900, size=(5, 17, 3)).astype(float)
    assert mpjpe(g, g) == 0 and pck3d(g, g) == 100
    assert abs(auc3d(g, g) - 30 / 31 * 100) < 1e-12
    off = g.copy(); off[:, :14, 1] += 150.
    assert pck3d(off, g) == 0


def test_numpy_torch_agree(poses):
    p, g = poses
    for f in (mpjpe, p_mpjpe, n_mpjpe, mpjve, pck3d, auc3d):
        assert abs(f(torch.tensor(p), torch.tensor(g)).item() - float(f(p, g))) < 1e-6, f.__name__


def test_aggregation_textbook():
    rng = np.random.default_rng(1)
    ga, gb = rng.normal(size=(10, 5, 3)), rng.normal(size=(30, 5, 3))
    P = {'S9/Eating 1/c': ga + [10., 0, 0], 'S11/Posing/c': gb + [0, 50., 0]}
    G = {'S9/Eating 1/c': ga, 'S11/Posing/c': gb}
    assert abs(evaluate_h36m(P, G, root=None).summary['MPJPE'] - 30) < 1e-9
    assert abs(evaluate_h36m(P, G, root=None, aggregation='frame-wise').summary['MPJPE'] - 40) < 1e-9


def test_skip_list_exact():
    s9 = [f'{a} 1' for a in H36M_ACTIONS] + [('Discussion 2' if a == 'Discussion' else a) for a in H36M_ACTIONS]
    assert sorted(a for a in s9 if is_skipped('S9', a)) == ['Greeting', 'SittingDown', 'Waiting 1']
    G = {f'{s}/{a}/{c}': np.zeros((2, 17, 3)) for s in ('S9', 'S11') for a in s9 for c in 'abcd'}
    r = evaluate_h36m(G, G, skip_list=True)
    assert sorted(r.settings['skipped']) == sorted(f'S9/{a}/{c}' for a in ('Greeting', 'SittingDown', 'Waiting 1') for c in 'abcd')


def test_predict_sequence_identity():
    x = np.random.default_rng(2).normal(size=(100, 17, 3)).astype(np.float32)
    perm = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
    for kw in (dict(clip_len=27), dict(clip_len=27, stride=7), dict(clip_len=243), dict(clip_len=27, stride=9, flip_tta=True, flip_perm=perm)):
        np.testing.assert_array_equal(predict_sequence(lambda b: b, x, **kw), x)


def test_3dhp_valid_frames_only():
    g = np.random.default_rng(3).normal(size=(10, 17, 3)) * 300
    p = g.copy(); p[5:] += np.where(np.arange(17) < 14, 1000., 0.)[:, None]  # invalid frames are way off
    r = evaluate_3dhp({'TS1/a/0': p}, {'TS1/a/0': g}, valid={'TS1/a/0': np.r_[np.ones(5), np.zeros(5)]})
    assert r.summary['PCK'] == 100 and r.summary['frames'] == 5


# The two versions of MATLAB's mpii_get_pck_auc_joint_groups.m, 1-based (formats.md, "Added 2026-11-30").
MATLAB_GROUPS = {14: {'Head': [1], 'Neck': [2], 'Shoulder': [3, 6], 'Elbow': [4, 7], 'Wrist': [5, 8],
                      'Hip': [9, 12], 'Knee': [10, 13], 'Ankle': [11, 14]},
                 17: {'Head': [1, 17], 'Neck': [2], 'Shoulder': [3, 6], 'Elbow': [4, 7], 'Wrist': [5, 8],
                      'Spine': [16], 'Hip': [9, 12, 15], 'Knee': [10, 13], 'Ankle': [11, 14]}}


@pytest.mark.parametrize('n', [14, 17])
def test_pck_conventions_reference(poses, n):
    p, g = (x[0] * 0.4 for x in poses)
    err = np.linalg.norm((p - p[:, 14:15]) - (g - g[:, 14:15]), axis=-1)  # MATLAB: root 15 (1-based)
    thr = np.arange(0, 151, 5)
    tab = pck_table(p, g, groups=mpi_pck_groups(n))
    assert list(tab) == list(MATLAB_GROUPS[n]) + ['Total']
    pck_sum = auc_sum = 0.
    for name, js in MATLAB_GROUPS[n].items():
        e = err[:, [j - 1 for j in js]]
        pck, auc = 100 * (e < 150).mean(), np.mean([100 * (e < t).mean() for t in thr])
        assert abs(tab[name]['PCK'] - pck) < 1e-9 and abs(tab[name]['AUC'] - auc) < 1e-9 and tab[name]['joints'] == len(js)
        pck_sum += pck * len(js); auc_sum += auc * len(js)
    assert tab['Total']['joints'] == n
    assert abs(tab['Total']['PCK'] - pck_sum / n) < 1e-9 and abs(tab['Total']['AUC'] - auc_sum / n) < 1e-9
    joints = group_joints(mpi_pck_groups(n))
    assert abs(pck3d(p, g, joints=joints) - pck_sum / n) < 1e-9 and abs(auc3d(p, g, joints=joints) - auc_sum / n) < 1e-9


def test_pck_groups_bad_value():
    assert mpi_pck_groups(14) is MPI_JOINT_GROUPS
    for bad in (15, 16, '17', None):
        with pytest.raises(ValueError, match=r'pck_joints must be one of \(14, 17\)'):
            mpi_pck_groups(bad)


def test_pck_table_per_frame(poses):
    p, g = (x[0] for x in poses)
    t = pck_table(p, g, groups=mpi_pck_groups(17), reduce=False)
    np.testing.assert_allclose(t['Total']['AUC'], auc3d(p, g, joints=range(17), reduce=False), atol=1e-9)
    np.testing.assert_allclose(t['Hip']['PCK'], pck3d(p, g, joints=(8, 11, 14), reduce=False), atol=1e-9)


def test_3dhp_pck_joints():
    g = np.random.default_rng(4).normal(size=(10, 17, 3)) * 300
    p = g + np.where(np.arange(17) < 14, 200., 0.)[:, None]  # only the 14 joints are off
    r14, r17 = (evaluate_3dhp({'TS1/a/0': p}, {'TS1/a/0': g}, pck_joints=n) for n in (14, 17))
    assert r14.summary['PCK'] == 0 and abs(r17.summary['PCK'] - 300 / 17) < 1e-9
    assert (r14.settings['pck_joints'], r17.settings['pck_joints'], r17.summary['pck_joints']) == (14, 17, 17)
    assert r17.tables['per_joint_group'][-1]['joints'] == 17 and r14.summary['MPJPE'] == r17.summary['MPJPE']
    with pytest.raises(ValueError, match='pck_joints'):
        evaluate_3dhp({'TS1/a/0': p}, {'TS1/a/0': g}, pck_joints=16)


# ---- the metric table: a new metric is one function + one line of H36M_METRICS ----

def max_joint_error(pred, gt, reduce=True):
    "Toy metric: the worst joint's error of each frame (mm)."
    e = np.linalg.norm(np.asarray(pred) - np.asarray(gt), axis=-1).max(-1)
    return e.mean() if reduce else e


@pytest.fixture
def toy_metric(monkeypatch):
    "MaxJE registered for one test (monkeypatch restores the table)."
    monkeypatch.setitem(H36M_METRICS, 'MaxJE', Metric(max_joint_error, learner='maxje_mm'))
    yield 'MaxJE'


def _two_actions():
    rng = np.random.default_rng(3)
    g = {f'S9/{a}/c{c}': rng.normal(size=(n, 5, 3)) * 100 for a, n in (('Eating 1', 10), ('Posing', 30)) for c in range(2)}
    p = {k: v + rng.normal(size=v.shape) * 10 for k, v in g.items()}
    return p, g


def test_toy_metric_in_every_table(toy_metric):
    p, g = _two_actions()
    res = evaluate_h36m(p, g, root=None)
    assert list(res.summary)[:5] == ['MPJPE', 'P-MPJPE', 'N-MPJPE', 'MPJVE', 'MaxJE']
    for table in ('per_sequence', 'per_action', 'aggregations'):
        assert all('MaxJE' in r for r in res.tables[table]), table
    seq = {r['sequence']: r['MaxJE'] for r in res.tables['per_sequence']}
    for k in g: np.testing.assert_allclose(seq[k], max_joint_error(p[k], g[k]), rtol=1e-12)
    per_action = [np.mean(np.concatenate([max_joint_error(p[k], g[k], False) for k in g if a in k])) for a in ('Eating', 'Posing')]
    np.testing.assert_allclose(res.summary['MaxJE'], np.mean(per_action), rtol=1e-12)          # action-wise: mean of frame pools
    fw = evaluate_h36m(p, g, root=None, aggregation='frame-wise').summary['MaxJE']
    np.testing.assert_allclose(fw, np.mean(np.concatenate([max_joint_error(p[k], g[k], False) for k in g])), rtol=1e-12)
    assert res.settings['protocol'].endswith('MPJVE (mm/frame), MaxJE')
    from hpe_pretrain.train.learner import lift_metrics
    assert [m.name for m in lift_metrics()] == ['mpjpe_mm', 'p_mpjpe_mm', 'maxje_mm']          # and the learner tracks it


def test_metric_table_is_restored_and_numbers_unchanged():
    assert list(H36M_METRICS) == ['MPJPE', 'P-MPJPE', 'N-MPJPE', 'MPJVE']
    p, g = _two_actions()
    res = evaluate_h36m(p, g, root=None, aggregation='frame-wise')
    pooled = lambda f: np.mean(np.concatenate([f(p[k], g[k], reduce=False) for k in g]))
    np.testing.assert_allclose([res.summary[k] for k in ('MPJPE', 'P-MPJPE', 'N-MPJPE')], [pooled(mpjpe), pooled(p_mpjpe), pooled(n_mpjpe)], rtol=1e-12)
    w = {k: len(v) for k, v in g.items()}                                                          # MPJVE: sequences weighted by frames
    np.testing.assert_allclose(res.summary['MPJVE'], sum(w[k] * mpjve(p[k], g[k]) for k in g) / sum(w.values()), rtol=1e-12)


def test_learner_metric_decodes_through_the_codec():
    from hpe_pretrain.train.learner import mpjpe_mm, p_mpjpe_mm
    from hpe_pretrain.transforms.normalize import PoseCodec
    y = torch.randn(2, 4, 17, 3, dtype=torch.float64); pred = y + 0.01 * torch.randn_like(y)
    b = {'y3d': y}
    c = PoseCodec()
    assert mpjpe_mm(pred, b) == mpjpe(c.decode_3d(pred.float()), c.decode_3d(y.float()))
    assert p_mpjpe_mm(pred, b) == p_mpjpe(c.decode_3d(pred.float()), c.decode_3d(y.float()))
    assert (mpjpe_mm.__name__, p_mpjpe_mm.__name__) == ('mpjpe_mm', 'p_mpjpe_mm')
