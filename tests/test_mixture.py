"""Datasets together (issue 19): a pretraining mixture of caches in different joint sets and 2D-only keypoint files
(sampled by weight, reproducibly, one tiny MPM step runs), and joint-set-aware weight loading (h36m17 -> mpi17
re-orders the joint-indexed tensors; incompatible sets are refused). Data is generated, never real."""
import json
import math

import numpy as np
import pytest
import torch

from hpe_pretrain.data.paths import RunDir
from hpe_pretrain.data.keypoint_tracks import KeypointTrack
from hpe_pretrain.data.keypoint_files import write_coco_results
from hpe_pretrain.data.other_keypoint_files import write_npz, write_openpose
from hpe_pretrain.data.mixture import (KeypointClips, MixtureDataLoader, MixtureDataset, check_mixture_objective,
                                       mixture_dataloaders, mixture_report, mixture_summary, parse_sources)
from hpe_pretrain.data.loaders import PoseClipDataset
from hpe_pretrain.data.prepare import prepare
from hpe_pretrain.data.skeleton import convert_joints, get_skeleton, joint_map
from hpe_pretrain.train.runs import init_from
from hpe_pretrain.models.factory import create_model, load_encoder
from hpe_pretrain.models.joints import joint_indexed_params, joint_permutation, permute_joint_state
from hpe_pretrain.testing import synth_pose_batch, toy_cache

H, M, C = get_skeleton('h36m17'), get_skeleton('mpi17'), get_skeleton('coco17')


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _coco_tracks(T=60, seed=0):
    "Two coco17 tracks from synthetic h36m17 poses projected to 2D (face points around the head), px."
    kp = synth_pose_batch(B=2, T=T, seed=seed)['kp2d'].numpy()
    out = np.stack([kp[:, :, H.index(n if n in H.joints else 'head')] for n in C.joints], 2)
    out[:, :, C.index('nose')] = kp[:, :, H.index('neck')]
    for n, dx in (('l_eye', 5), ('r_eye', -5), ('l_ear', 10), ('r_ear', -10)): out[:, :, C.index(n), 0] += dx
    return [KeypointTrack(k + 1, np.arange(T), out[k], np.full((T, 17), .9, np.float32), 'coco17') for k in range(2)]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "An h36m17 cache, an mpi17 cache (synthetic 3DHP) and a COCO results file."
    d = tmp_path_factory.mktemp('mix')
    h36m = toy_cache(d / 'h36m.h5', n_seq=8, n_frames=40)
    mpi = prepare('synthetic', src=d / 'raw_3dhp', out=d / 'mpi.h5', fmt='mpi_inf_3dhp', progress=False, subjects=('S1',),
                  seqs=(1,), test_seqs=('TS1',), frames_per_seq=40, test_frames_per_seq=40)
    coco = write_coco_results(_coco_tracks(), d / 'dets' / 'video.json')
    srcs = [{'path': str(h36m), 'weight': 3}, {'path': str(mpi), 'weight': 1, 'name': '3dhp'},
            {'path': str(coco), 'weight': 2, 'image_size': [1000, 1000], 'name': 'coco'}]
    return dict(dir=d, h36m=h36m, mpi=mpi, coco=coco, srcs=srcs)


# --- the mixture -----------------------------------------------------------------------------------------------------

def test_sampled_proportions_match_weights(data):
    ds = MixtureDataset(data['srcs'], 'h36m17', clip_len=9, stride=4)
    np.testing.assert_allclose(ds.probs, [.5, 1 / 6, 1 / 3])
    n = 6000
    for seed in (0, 1):
        src = ds.locate(MixtureDataLoader(ds, bs=64, n_draws=n, seed=seed).get_idxs())[0]
        got = np.bincount(src, minlength=3) / n
        assert (np.abs(got - ds.probs) < 3 * np.sqrt(ds.probs * (1 - ds.probs) / n)).all(), (got, ds.probs)
    # within a source the clips are drawn uniformly: every clip of the small COCO source shows up
    idx = MixtureDataLoader(ds, bs=64, n_draws=n, seed=0).get_idxs()
    assert set(idx[idx >= ds.offsets[2]].tolist()) == set(range(ds.offsets[2], ds.offsets[3]))


def test_same_seed_same_batches_and_reseed(data):
    ds = MixtureDataset(data['srcs'], 'h36m17', clip_len=9, stride=4)
    a, b, c = (MixtureDataLoader(ds, bs=8, n_draws=40, seed=s) for s in (7, 7, 8))
    ba, bb, bc = list(a), list(b), list(c)
    assert len(ba) == 5 and ba[-1]['kp2d'].shape[0] == 8
    for x, y in zip(ba, bb):
        for k in x: assert torch.equal(x[k], y[k]), k
    assert not all(torch.equal(x['kp2d'], y['kp2d']) for x, y in zip(ba, bc))
    a.reseed(3); first = a.get_idxs(); a.get_idxs(); a.reseed(3)
    assert np.array_equal(a.get_idxs(), first)   # exact resume: an epoch's draws depend only on its seed


def test_batch_contract_and_conversion(data):
    ds = MixtureDataset(data['srcs'], 'h36m17', clip_len=9, stride=4)
    b = ds.get_batch(np.arange(len(ds)))
    assert list(b) == ['kp2d', 'conf', 'j3d', 'size', 'intrinsics', 'seq', 'frame', 'valid', 'source', 'has_3d']
    dtypes = dict(kp2d=torch.float32, conf=torch.float32, j3d=torch.float32, size=torch.float32, intrinsics=torch.float32,
                  seq=torch.int64, frame=torch.int64, valid=torch.bool, source=torch.int64, has_3d=torch.bool)
    assert {k: v.dtype for k, v in b.items()} == dtypes
    assert b['kp2d'].shape == (len(ds), 9, 17, 2) and b['j3d'].shape == (len(ds), 9, 17, 3)
    flat = b['source'] == 2
    assert (~b['has_3d'] == flat).all() and b['j3d'][flat].abs().sum() == 0 and b['intrinsics'][flat].abs().sum() == 0
    # the mpi17 cache arrives in h36m17 order: its 3D equals the cache's, converted
    mpi = ds.parts[1]
    raw = PoseClipDataset.get_batch(mpi, [0])   # the cache's own joint order
    assert torch.equal(b['j3d'][ds.offsets[1]], convert_joints(raw['j3d'][0], 'mpi17', 'h36m17'))
    # the COCO source: derived joints (pelvis = mean of the hips), confidence the minimum of the parts
    k = int(ds.offsets[2])
    torch.testing.assert_close(b['kp2d'][k, :, H.index('pelvis')], b['kp2d'][k, :, [H.index('l_hip'), H.index('r_hip')]].mean(1))
    assert torch.allclose(b['conf'][k], torch.tensor(.9))


def test_unconvertible_joint_set_is_refused(data):
    with pytest.raises(ValueError, match=r"mixture source 2 \(coco: .*video\.json\): its joint set coco17 cannot be converted to "
                                         r"the model's joint set mpi17; defined maps: h36m32->h36m17"):
        MixtureDataset(data['srcs'], 'mpi17', clip_len=9)
    ds = MixtureDataset(data['srcs'][:2], 'mpi17', clip_len=9)   # h36m17 -> mpi17: the inverse of a permutation
    b = ds.get_batch([0])
    raw = PoseClipDataset.get_batch(ds.parts[0], [0])
    assert torch.equal(b['j3d'][0, :, M.index('l_wrist')], raw['j3d'][0, :, H.index('l_wrist')])


def test_bad_entries_name_index_and_field(data, tmp_path):
    with pytest.raises(ValueError, match=r"pretrain.data\[1\].weight: expected a number > 0, got -1"):
        parse_sources([data['srcs'][0], {'path': 'x.json', 'weight': -1}])
    with pytest.raises(ValueError, match=r"pretrain.data\[0\].fmt: expected one of coco_results"):
        parse_sources([{'path': 'x.json', 'fmt': 'csv'}])
    with pytest.raises(FileNotFoundError, match=r"mixture source 1 \(nope.h5: .*nope.h5\): no such file"):
        MixtureDataset([data['srcs'][0], str(tmp_path / 'nope.h5')], 'h36m17', clip_len=9)
    with pytest.raises(ValueError, match=r"video.json has no image size; set image_size: \[W, H\]"):
        MixtureDataset([str(data['coco'])], 'h36m17', clip_len=9)


def test_keypoint_folder_of_videos(data, tmp_path):
    "A folder with a COCO file, an npz and an OpenPose folder: every track of every video, gaps split, short pieces dropped."
    t = _coco_tracks(T=40, seed=3)
    gap = KeypointTrack(5, np.r_[0:15, 30:40], t[0].keypoints[np.r_[0:15, 30:40]], t[0].confidence[:25], 'coco17', 1000, 1000)
    write_coco_results([gap], tmp_path / 'a.json')
    write_npz(t[1], tmp_path / 'b.npz')
    b25 = np.zeros((40, 25, 2), np.float32); b25[:, [get_skeleton('body25').index(n) for n in C.joints]] = t[0].keypoints
    b25[:, get_skeleton('body25').index('mid_hip')] = t[0].keypoints[:, [C.index('l_hip'), C.index('r_hip')]].mean(1)
    b25[:, get_skeleton('body25').index('neck')] = t[0].keypoints[:, [C.index('l_shoulder'), C.index('r_shoulder')]].mean(1)
    conf = np.ones((40, 25), np.float32); conf[:, get_skeleton('body25').index('l_heel')] = 0
    write_openpose([KeypointTrack(0, np.arange(40), b25, conf, 'body25')], tmp_path / 'op', person_ids=True)
    with pytest.raises(ValueError, match="a plain array has no joint names; pass joints=NAME"):
        KeypointClips(parse_sources([{'path': str(tmp_path), 'image_size': [1000, 1000]}])[0], 'h36m17', 9)
    with pytest.raises(ValueError, match=r"joints='coco17' has 17 joints, the file 25"):   # one joint set for every file
        KeypointClips(parse_sources([{'path': str(tmp_path), 'image_size': [1000, 1000], 'joints': 'coco17'}])[0], 'h36m17', 9)
    (tmp_path / 'op').rename(tmp_path.parent / f'{tmp_path.name}_op')
    kc = KeypointClips(parse_sources([{'path': str(tmp_path), 'image_size': [1000, 1000], 'joints': 'coco17'}])[0], 'h36m17', 9, min_frames=12)
    assert (kc.n_tracks, kc.dropped, kc.n_frames) == (2, 1, 15 + 40)   # the 10-frame piece after the gap is dropped
    assert 'KeypointClips(' in repr(kc) and '1 pieces under 12 frames dropped' in repr(kc)
    op = KeypointClips(parse_sources([{'path': str(tmp_path.parent / f'{tmp_path.name}_op'), 'image_size': [1280, 720]}])[0], 'h36m17', 9)
    b = op.get_batch(np.arange(len(op)))
    assert op.src_joints.keys() == {'body25'} and b['kp2d'].shape[1:] == (9, 17, 2) and (b['conf'] == 1).all()


def test_objective_checks(data):
    check_mixture_objective(data['srcs'], 'mpm', rotate_or_scale=False)
    check_mixture_objective(data['srcs'][:2], 'motionbert', rotate_or_scale=True)
    with pytest.raises(ValueError, match=r"pretrain.objective=motionbert lifts to 3D, but pretrain.data source\(s\) 2 \(coco\) are 2D-only"):
        check_mixture_objective(data['srcs'], 'motionbert', rotate_or_scale=False)
    with pytest.raises(ValueError, match=r"set augment.rotate_deg=0 and augment.scale=0"):
        check_mixture_objective(data['srcs'], 'mpm', rotate_or_scale=True)


def test_mpm_pretraining_step_on_mixture(data):
    "A tiny MPM pretraining (stmo-tiny, a few batches) on two caches + a COCO file: the loss is finite, summary JSON-able."
    from hpe_pretrain.train.learner import ToXY, pose_learner
    from hpe_pretrain.transforms.augment import RandomFlip
    from hpe_pretrain.transforms.corrupt import PSTMOMask
    from hpe_pretrain.transforms.normalize import NormalizePose
    tfms = [RandomFlip('h36m17'), NormalizePose('h36m17'), PSTMOMask(0.5, 2, split_idx=None), ToXY()]
    dls = mixture_dataloaders(data['srcs'], 'h36m17', clip_len=9, stride=4, bs=8, seed=0, after_batch=tfms, n_draws=24)
    assert len(dls.train) == 3 and len(dls.valid.dataset) == 20   # the first cache's test split
    torch.manual_seed(0)
    learn = pose_learner(dls, create_model('stmo-tiny', maxlen=9), task='mpm', seed=0)
    learn.fit(1, 1e-3)
    losses = [float(v) for v in learn.recorder.losses]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert all(math.isfinite(float(v)) for v in learn.recorder.values[-1])
    summ = mixture_summary(dls)
    json.dumps(summ)
    assert [(s['name'], s['kind'], s['joints'], s['has_3d']) for s in summ] == [
        ('h36m.h5', 'cache', 'h36m17', True), ('3dhp', 'cache', 'mpi17', True), ('coco', 'keypoints', 'coco17', False)]
    assert summ[2]['tracks'] == 2 and summ[0]['clips'] == 32 and summ[0]['frames'] == 160


def test_report_names_conversions_and_draws_per_clip(data):
    "The start-of-run report: each source's joint conversion; expected draws per clip match the draws made; a note per oversampled source."
    dls = mixture_dataloaders(data['srcs'], 'h36m17', clip_len=9, stride=4, bs=64, seed=0, n_draws=6000)
    summ, ds = mixture_summary(dls), dls.train.dataset
    assert [s['conversion'] for s in summ] == ['h36m17 as is', 'mpi17 -> h36m17: reordered',
                                               'coco17 -> h36m17: pelvis, spine, thorax, head derived (means of their parts)']
    drawn = np.bincount(ds.locate(dls.train.get_idxs())[0], minlength=3) / [len(p) for p in ds.parts]   # draws per clip, counted
    np.testing.assert_allclose(drawn, [s['draws_per_clip'] for s in summ], rtol=0.1)
    np.testing.assert_allclose([s['draws_per_clip'] for s in summ], 6000 * ds.probs / [len(p) for p in ds.parts], rtol=1e-3)
    lines = mixture_report(dls, note_above=50).splitlines()
    over = [s['name'] for s in summ if s['draws_per_clip'] > 50]
    assert over and len(over) < 3 and lines[0].startswith('mixture of 3 sources, 6,000 clips drawn per epoch')
    assert [l.split(' (')[0] for l in lines[5:]] == [f'note: {n}' for n in over], lines
    assert all(f"{s['name']} " in lines[2 + i] and s['conversion'] in lines[2 + i] for i, s in enumerate(summ))
    assert len(mixture_report(MixtureDataset(data['srcs'][:2], 'h36m17', clip_len=9, stride=4)).splitlines()) == 4   # no note


# --- joint-set-aware loading -------------------------------------------------------------------------------------------

def _marked(arch):
    "A model whose joint-indexed tensors hold the joint index in every entry of the joint's slice."
    m = create_model(f'{arch}-tiny')
    sd = m.state_dict()
    with torch.no_grad():
        for k, (axis, block) in joint_indexed_params(m).items():
            v = sd[k]; sh = v.shape
            j = torch.arange(17.).repeat_interleave(block).reshape([-1 if a == axis else 1 for a in range(v.ndim)])
            v.copy_(j.expand(sh))
    return m


@pytest.mark.parametrize('arch', ['dstformer', 'stmo'])
def test_h36m_to_mpi_lands_on_the_same_joint(arch):
    src, dst = _marked(arch), create_model(f'{arch}-tiny')
    rep = load_encoder(dst, src, src_joints='h36m17', dst_joints='mpi17', verbose=False)
    spec = joint_indexed_params(dst)
    assert sorted(rep.permuted) == sorted(spec) and rep.joint_sets == ('h36m17', 'mpi17')
    assert 'permuted from h36m17 to mpi17 joint order' in str(rep)
    sd = dst.state_dict()
    for name in ('l_wrist', 'r_ankle', 'l_elbow', 'pelvis'):   # same name, same joint (head/neck: the map pairs them, not the names)
        for k, (axis, block) in spec.items():
            sl = sd[k].narrow(axis, M.index(name) * block, block)
            assert (sl == H.index(name)).all(), (k, name)


@pytest.mark.parametrize('arch', ['dstformer', 'stmo'])
def test_permuted_model_computes_the_same_function(arch):
    "An h36m17 model and its mpi17 re-ordering give the same output for the same poses (in each one's joint order)."
    torch.manual_seed(0)
    src, dst = create_model(f'{arch}-tiny').eval(), create_model(f'{arch}-tiny').eval()
    load_encoder(dst, src, src_joints='h36m17', dst_joints='mpi17', verbose=False)
    x = torch.randn(2, 9, 17, 3)
    to_mpi = lambda y: y[..., joint_permutation('h36m17', 'mpi17'), :]
    torch.testing.assert_close(dst(to_mpi(x)), to_mpi(src(x)), atol=1e-5, rtol=1e-4)
    if arch == 'stmo':
        mf = torch.zeros(2, 9, dtype=torch.bool); mf[:, ::2] = True
        torch.testing.assert_close(dst.forward_mpm(to_mpi(x), mf), to_mpi(src.forward_mpm(x, mf)), atol=1e-5, rtol=1e-4)
    assert joint_permutation('h36m17', 'mpi17') == joint_map('mpi17', 'h36m17').argmax(0).tolist()   # the inverse of mpi17->h36m17


@pytest.mark.parametrize('arch', ['dstformer', 'stmo'])
def test_every_joint_sized_tensor_is_listed(arch):
    "Guard for new architectures/tensors: with 13 joints, every tensor with a J-multiple dimension is in the class's joint_axes."
    m = create_model(f'{arch}-tiny', num_joints=13)
    spec = joint_indexed_params(m)
    for k, v in m.state_dict().items():
        if any(n % 13 == 0 for n in v.shape): assert k in spec and v.shape[spec[k][0]] == 13 * spec[k][1], k


def test_incompatible_pairs_fail_with_the_message():
    m = create_model('stmo-tiny')
    with pytest.raises(ValueError, match=r"checkpoint joints coco17, model joints h36m17: not a permutation \(the model's pelvis, "
                                         r"spine, thorax, head are derived from several coco17 joints\); its joint-indexed weights "
                                         r"cannot be carried over: train a coco17 model \(data.joints=coco17"):
        load_encoder(m, create_model('stmo-tiny'), src_joints='coco17', dst_joints='h36m17', verbose=False)
    with pytest.raises(ValueError, match=r"checkpoint joints h36m17, model joints h36m32: not a permutation \(the model's r_toe"):
        joint_permutation('h36m17', 'h36m32')
    with pytest.raises(ValueError, match=r"checkpoint joints halpe26, model joints mpi17: no joint map between them"):
        joint_permutation('halpe26', 'mpi17')
    # a selection is fine: h36m32 weights start an h36m17 model
    assert joint_permutation('h36m32', 'h36m17') == joint_map('h36m32', 'h36m17').argmax(1).tolist()
    sd32 = {'embed.joint_embed': torch.arange(32.).reshape(1, 1, 32, 1).expand(1, 1, 32, 32).clone()}
    out, done = permute_joint_state(sd32, create_model('dstformer-tiny'), 'h36m32', 'h36m17')
    assert done == ['embed.joint_embed'] and out['embed.joint_embed'][0, 0, H.index('l_wrist'), 0] == get_skeleton('h36m32').index('l_wrist')
    with pytest.raises(ValueError, match=r"embed.joint_embed: shape \(1, 1, 17, 32\) in the checkpoint, expected 32 entries on axis 2"):
        permute_joint_state(create_model('dstformer-tiny').state_dict(), create_model('dstformer-tiny'), 'h36m32', 'h36m17')


def test_init_from_run_folder_and_checkpoint(tmp_path):
    from hpe_pretrain.train.config import load_config, save_config
    run = RunDir(tmp_path / 'run'); save_config(load_config(['model=stmo-tiny', 'pretrain.objective=mpm']), run.config)
    run.models.mkdir()
    pre = _marked('stmo')
    torch.save({'model': {f'model.{k}': v for k, v in pre.state_dict().items()}}, run.checkpoint('pretrain', 'last'))
    ft = create_model('stmo-tiny', dec_depth=0)
    rep = init_from(ft, run.path, 'mpi17', verbose=False)
    assert rep.source == f"{run.checkpoint('pretrain', 'last')} (run, pretrain)"
    assert rep.permuted == ['joint_embed.joint_embed', 'to_frame.weight']        # to_joints: MPM leaves it untrained
    assert 'to_joints.weight' in rep.excluded and 'head.proj.weight' in rep.excluded
    assert (ft.joint_embed.joint_embed[0, 0, M.index('l_wrist')] == H.index('l_wrist')).all()
    # a checkpoint outside a run: the joint set must be given
    lone = tmp_path / 'lone.pth'; lone.write_bytes(run.checkpoint('pretrain', 'last').read_bytes())
    with pytest.raises(ValueError, match=r"lone.pth: a checkpoint of this package outside its run folder: cannot tell which joint set .*or pass src_joints"):
        init_from(ft, lone, 'mpi17', verbose=False)
    assert init_from(ft, lone, 'mpi17', src_joints='h36m17', verbose=False).permuted[0] == 'joint_embed.joint_embed'
    with pytest.raises(FileNotFoundError, match="no config.yaml: not a run folder"):
        init_from(ft, tmp_path, 'mpi17')
    # a checkpoint file inside the run (what `model.weights` may name) knows its joint set too; exclude chosen here
    rep = init_from(create_model('stmo-tiny', dec_depth=0), run.checkpoint('pretrain', 'last'), 'mpi17', exclude=('head.',), verbose=False)
    assert rep.joint_sets == ('h36m17', 'mpi17') and 'to_joints.weight' in rep.permuted   # only the head is left out here
