"""MotionBERT's released checkpoints end to end: its H36M protocol in `hpe-pretrain eval` and its in-the-wild inference
in `hpe-pretrain infer`, each compared with a transcription of MotionBERT's own procedure written out here
(`train.py` `evaluate`, `lib/data/datareader_h36m.py`, `lib/utils/utils_data.py` `split_clips` / `crop_scale` /
`flip_data`, `lib/data/dataset_wild.py`, `infer_wild.py`), step by step in plain numpy, on a random-weight checkpoint
saved in MotionBERT's layout and data in its file layouts. The model itself is the package's `DSTformer` (its equality
with MotionBERT's network is tested where the weights are imported); what is compared here is everything around it."""
import json

import numpy as np
import pytest
import torch

from hpe_pretrain.data.h36m import H36M_ACTION_IDS
from hpe_pretrain.data.h36m_formats import write_motionbert_pkl
from hpe_pretrain.data.keypoint_tracks import KeypointTrack
from hpe_pretrain.data.keypoint_files import write_alphapose
from hpe_pretrain.models.factory import create_model
from hpe_pretrain.testing import write_motionbert_checkpoint
from hpe_pretrain.cli import main
from hpe_pretrain.train.runs import load_weights, read_weights

RES = {'54138969': (1000, 1002), '55011271': (1000, 1000), '58860488': (1000, 1000), '60457274': (1000, 1002)}
CAMS = list(RES)
LEFT, RIGHT = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]
BLOCK = ['s_09_act_05_subact_02', 's_09_act_10_subact_02', 's_09_act_13_subact_01']


def _mb_flip(a):
    "MotionBERT's `flip_data`: negate x, swap its left and right joint lists."
    b = a.copy(); b[..., 0] *= -1; b[..., LEFT + RIGHT, :] = b[..., RIGHT + LEFT, :]; return b


def _mb_forward(model, clip, flip=True, rootrel=True):
    "One clip through the model as `evaluate` / `infer_wild.py` do: flip averaging, then the root (rootrel) or first-frame depth."
    with torch.no_grad():
        f = lambda a: model(torch.from_numpy(np.ascontiguousarray(a[None], np.float32)))[0].double().numpy()
        y = (f(clip) + _mb_flip(f(_mb_flip(clip)))) / 2 if flip else f(clip)
    if rootrel: y[:, 0, :] = 0
    else: y[0, 0, 2] = 0
    return y


def _p_mpjpe(p, g):
    "Per-frame P-MPJPE (Procrustes: scale, rotation, translation), the textbook formula."
    mp, mg = p.mean(1, keepdims=True), g.mean(1, keepdims=True)
    p0, g0 = p - mp, g - mg
    np_, ng = np.sqrt((p0 ** 2).sum((1, 2), keepdims=True)), np.sqrt((g0 ** 2).sum((1, 2), keepdims=True))
    p0, g0 = p0 / np_, g0 / ng
    U, s, Vt = np.linalg.svd(np.matmul(g0.transpose(0, 2, 1), p0))
    V = Vt.transpose(0, 2, 1); R = np.matmul(V, U.transpose(0, 2, 1))
    sign = np.sign(np.linalg.det(R))[:, None]
    V[:, :, -1] *= sign; s[:, -1] *= sign.flatten(); R = np.matmul(V, U.transpose(0, 2, 1))
    a = s.sum(1, keepdims=True)[..., None] * ng / np_
    t = mg - a * np.matmul(mp, R)
    return np.linalg.norm(a * np.matmul(p, R) + t - g, axis=-1).mean(-1)


def _pkl_test_split(rng):
    "A test split in the layout of MotionBERT's `h36m_sh_conf_cam_source_final.pkl` (sequences > 243 frames, not multiples)."
    seqs = [(9, 2, 1), (9, 5, 2), (9, 10, 2), (9, 13, 1), (9, 13, 2), (11, 14, 1), (11, 2, 2)]
    cols = {k: [] for k in ('joint_2d', 'confidence', 'joint3d_image', 'camera_name', 'source', '2.5d_factor', 'action')}
    for k, (s, a, b) in enumerate(seqs):
        for ci in (0, 1):
            n = 250 + 37 * k + 11 * ci
            base = rng.uniform(300, 700, (17, 2)) + np.cumsum(rng.normal(0, 2, (n, 1, 2)), 0)
            cols['joint_2d'].append(base + rng.normal(0, 3, (n, 17, 2)))
            cols['confidence'].append(rng.uniform(0.3, 1, (n, 17, 1)))
            cols['joint3d_image'].append(np.concatenate([base + rng.normal(0, 2, (n, 17, 2)), rng.normal(0, 40, (n, 17, 1))], -1))
            cols['camera_name'] += [CAMS[ci]] * n
            cols['source'] += [f's_{s:02d}_act_{a:02d}_subact_{b:02d}_ca_{ci + 1:02d}'] * n
            cols['2.5d_factor'].append(rng.uniform(4, 5.5, n))
            cols['action'] += [H36M_ACTION_IDS[a]] * n
    d = {k: np.concatenate(v) if isinstance(v[0], np.ndarray) else np.array(v) for k, v in cols.items()}
    d['joint3d_image'][:, 0, 2] = 0
    d['joints_2.5d_image'] = d['joint3d_image'] * d['2.5d_factor'][:, None, None]
    return d


def _mb_evaluate(model, test):
    "MotionBERT's `evaluate` on a test split: clips, decode, per-frame errors, skip list, per-action means."
    src = test['source']
    starts, n = [], len(src)
    cuts = np.r_[0, np.flatnonzero(src[1:] != src[:-1]) + 1, n]
    for a, b in zip(cuts[:-1], cuts[1:]):                       # split_clips(source, 243, 243): every sequence > 243 here
        starts += [range(s, s + 243) for s in range(a, b - 242, 243)]
    res = np.array([RES[c] for c in test['camera_name']], np.float64)
    x = test['joint_2d'] / res[:, :1, None] * 2 - np.stack([np.ones(n), res[:, 1] / res[:, 0]], -1)[:, None]
    inp = np.concatenate([x, test['confidence'].reshape(n, 17, 1)], -1)
    e1, e2, oc = np.zeros(n), np.zeros(n), np.zeros(n)
    for idx in starts:
        idx = np.array(idx)
        if src[idx[0]][:-6] in BLOCK: continue
        pred = _mb_forward(model, inp[idx])
        w, h = res[idx[0]]
        pred[..., :2] = (pred[..., :2] + np.array([1, h / w])) * w / 2; pred[..., 2:] *= w / 2
        pred = pred * test['2.5d_factor'][idx][:, None, None]
        pred = pred - pred[:, 0:1]; gt = test['joints_2.5d_image'][idx] - test['joints_2.5d_image'][idx][:, 0:1]
        e1[idx] += np.linalg.norm(pred - gt, axis=-1).mean(-1); e2[idx] += _p_mpjpe(pred, gt); oc[idx] += 1
    out = {}
    for act in sorted(set(test['action'])):
        m = (test['action'] == act) & (e1 > 0)
        if m.any(): out[act] = ((e1[m] / oc[m]).mean(), (e2[m] / oc[m]).mean())
    return out


@pytest.fixture(scope='module')
def mb_data(tmp_path_factory):
    d = tmp_path_factory.mktemp('mb')
    rng = np.random.default_rng(0)
    test = _pkl_test_split(rng)
    n = 300
    train = {'joint_2d': rng.uniform(300, 700, (n, 17, 2)), 'confidence': rng.uniform(0, 1, (n, 17, 1)),
             'joint3d_image': rng.uniform(300, 700, (n, 17, 3)), 'camera_name': np.array(['54138969'] * n),
             'source': np.array(['s_01_act_02_subact_01_ca_01'] * n)}
    pkl = write_motionbert_pkl(d/'h36m_sh_conf_cam_source_final.pkl', {'train': train, 'test': test})
    ck = write_motionbert_checkpoint(d/'best_epoch.bin', dim_feat=32, dim_rep=64, depth=1, maxlen=243, seed=5)
    assert main(['prepare', '--dataset', 'h36m', '--src', str(pkl), '--trust-pickle', '--out', str(d/'mb.h5')]) == 0
    return d, test, ck


def test_eval_is_motionberts_protocol(mb_data, capsys):
    d, test, ck = mb_data
    assert main(['eval', '--checkpoint', str(ck), '--data', str(d/'mb.h5'), '--out', str(d/'ours')]) == 0
    res = json.loads((d/'ours'/'results.json').read_text())
    ours = {r['action']: (r['MPJPE'], r['P-MPJPE']) for r in res['tables']['per_action'] if not r['action'].startswith('Average')}
    w = read_weights(ck); model = create_model(w.config).eval(); load_weights(model, w)
    ref = _mb_evaluate(model, test)
    assert set(ours) == set(ref)                                      # Greeting and SittingDown: only skipped sequences
    for a in ref: assert abs(ours[a][0] - ref[a][0]) < 0.05 and abs(ours[a][1] - ref[a][1]) < 0.05, (a, ours[a], ref[a])
    avg = next(r for r in res['tables']['per_action'] if r['action'].startswith('Average'))
    assert abs(avg['MPJPE'] - np.mean([v[0] for v in ref.values()])) < 0.05
    st = res['settings']
    assert st['eval_protocol'] == 'motionbert' and st['tail'] == 'drop' and st['flip_tta'] is True
    assert any('s_09_act_05_subact_02' in s for s in st['skipped']) and any('s_09_act_13_subact_01' in s for s in st['skipped'])
    assert not any('s_09_act_13_subact_02' in s for s in st['skipped'])     # Waiting 2 is scored: ids, not names


def test_eval_refuses_a_cache_without_the_factor(tmp_path, capsys):
    from hpe_pretrain.testing import toy_cache
    ck = write_motionbert_checkpoint(tmp_path/'mb.bin', maxlen=27)
    assert main(['eval', '--checkpoint', str(ck), '--data', str(toy_cache(tmp_path/'toy.h5'))]) == 2
    err = capsys.readouterr().err
    assert 'the cache has no 2.5d_factor' in err and len(err.strip().splitlines()) == 1


def _mb_crop(m):
    "`crop_scale(motion, [1, 1])` as MotionBERT writes it."
    r = m.copy(); v = m[m[..., 2] != 0][:, :2]
    if len(v) < 4: return np.zeros(m.shape)
    xmin, xmax, ymin, ymax = v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()
    s = max(xmax - xmin, ymax - ymin)
    r[..., :2] = (m[..., :2] - [(xmin + xmax - s) / 2, (ymin + ymax - s) / 2]) / s
    r[..., :2] = (r[..., :2] - 0.5) * 2
    return np.clip(r, -1, 1)


def _halpe2h36m(x):
    "MotionBERT's `halpe2h36m`: the (x, y, score) triples mapped joint by joint."
    src = [19, 12, 14, 16, 11, 13, 15, None, 18, 0, 17, 5, 7, 9, 6, 8, 10]
    y = np.stack([x[:, s] if s is not None else (x[:, 18] + x[:, 19]) * 0.5 for s in src], 1)
    return y


@pytest.mark.parametrize('pixel', [False, True])
def test_infer_is_motionberts_in_the_wild_inference(tmp_path, pixel):
    "An AlphaPose Halpe-26 file of one person over 300 frames (windows 243 + a short 57): `infer` = MotionBERT's `infer_wild.py`."
    rng = np.random.default_rng(1)
    T, W, H = 300, 1920, 1080
    kp = (rng.uniform(700, 1200, (26, 2)) + np.cumsum(rng.normal(0, 4, (T, 1, 2)), 0)).astype(np.float32)
    sc = rng.uniform(0.3, 1.0, (T, 26)).astype(np.float32)
    f = write_alphapose([KeypointTrack(1, np.arange(T), kp, sc, 'halpe26')], tmp_path/'alphapose-results.json')
    ck = write_motionbert_checkpoint(tmp_path/'best_epoch.bin', dim_feat=32, dim_rep=64, depth=1, maxlen=243, seed=7)
    args = ['infer', '--checkpoint', str(ck), '--keypoints', str(f), '--out', str(tmp_path/'out')] + (['--pixel', '--image-size', str(W), str(H)] if pixel else [])
    assert main(args) == 0
    with np.load(tmp_path/'out'/'poses_3d.npz', allow_pickle=False) as z: ours = z['poses_3d']
    items = json.loads(f.read_text())                                  # infer_wild: read_input
    k = _halpe2h36m(np.array([np.array(it['keypoints']).reshape(-1, 3) for it in items], np.float64))
    if pixel:
        k[..., :2] = (k[..., :2] - np.array([W, H]) / 2) / (min(W, H) / 2); motion = k
    else: motion = _mb_crop(k)
    motion = motion.astype(np.float32)
    w = read_weights(ck); model = create_model(w.config).eval(); load_weights(model, w)
    ref = np.concatenate([_mb_forward(model, motion[s:s + 243]) for s in range(0, T, 243)])   # WildDetDataset: a short last clip
    if pixel: ref = ref * (min(W, H) / 2); ref[..., :2] += np.array([W, H]) / 2
    assert ours.shape == ref.shape == (T, 17, 3)
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max(), np.abs(ours - ref).max()
    doc = json.loads((tmp_path/'out'/'poses_3d.json').read_text())
    assert ('pixels' in doc['units']) == pixel and 'metres' not in doc['units']
