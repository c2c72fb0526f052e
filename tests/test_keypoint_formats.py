"""Real detector output in: files written here in the exact layouts of AlphaPose (Halpe-26 with `idx`), OpenPose v1.2+
folders (empty `people`, `person_id`), PoseTrack18 and COCO annotation files, COCO results and mmpose predictions.
Undetected joints are filled from their neighbours in time, derived joints use detected parts only, scores are
normalised, names choose the joint set, sizes are checked, linking keeps identity in bounded time, and every hostile
file is one ValueError naming the file and the field. Numbers asserted against the true (generated) poses."""
import json, time, warnings

import numpy as np
import pytest

from hpe_pretrain.data.keypoints import read_keypoints, read_track
from hpe_pretrain.data.keypoint_tracks import (KeypointTrack, TrackReport, check_image_size, check_max_gap, fill_gaps,
                                               link_detections)
from hpe_pretrain.data.other_keypoint_files import write_npz
from hpe_pretrain.data.skeleton import get_skeleton

HALPE = get_skeleton('halpe26')
# a person about 400 px tall, relative to the pelvis, y down (px), in Halpe-26 order
_TEMPLATE = np.array([
    [0, -170], [8, -178], [-8, -178], [16, -172], [-16, -172], [40, -130], [-40, -130], [50, -70], [-50, -70],
    [55, -15], [-55, -15], [22, 0], [-22, 0], [24, 95], [-24, 95], [25, 190], [-25, 190],
    [0, -200], [0, -140], [0, 0], [35, 205], [-35, 205], [40, 200], [-40, 200], [20, 200], [-20, 200]], np.float64)
HEAD_BOTTOM = np.array([0, -150.])                   # PoseTrack's head_bottom: under the chin


def _body(T: int, x0: float = 600., y0: float = 500., v: float = 3., phase: float = 0.) -> np.ndarray:
    "(T, 26, 2) px, Halpe-26: walking right at `v` px/frame, the left knee and ankle swinging (20 px, period 40 frames)."
    t = np.arange(T)
    p = _TEMPLATE[None] + np.stack([x0 + v * t, np.full(T, y0)], 1)[:, None]
    swing = 20 * np.sin(2 * np.pi * t / 40 + phase)
    p[:, [13, 15], 0] += swing[:, None]
    return p


def _as(p: np.ndarray, joints: str) -> np.ndarray:
    "Halpe-26 poses in another joint set by name (mid_hip = pelvis; PoseTrack's head_bottom/head_top)."
    s, out = get_skeleton(joints), []
    for j in s.joints:
        if j == 'mid_hip': out.append(p[:, HALPE.index('pelvis')])
        elif j == 'head_bottom': out.append(p[:, HALPE.index('pelvis')] + HEAD_BOTTOM)
        elif j == 'head_top': out.append(p[:, HALPE.index('head')])
        else: out.append(p[:, HALPE.index(j)])
    return np.stack(out, 1)


def _flat(kp, s) -> list: return np.concatenate([kp, np.asarray(s, float)[:, None]], 1).ravel().round(3).tolist()


# ---------------------------------------------------------------- AlphaPose Halpe-26 results (no tracking: NMS idx lists)
def _alphapose(T=120, second=range(40, 60), zero_knee=None, scores=None, tracked=False):
    "AlphaPose `alphapose-results.json` rows: image_id '<t>.jpg', 78 keypoint values, score, box, idx."
    a, b = _body(T), _body(T, x0=1300, v=-3, phase=1.)
    rng = np.random.default_rng(0)
    sc = rng.uniform(.3, 1.07, (T, 26)) if scores is None else scores
    rows = []
    for t in range(T):
        people = [(a[t], sc[t], 1)] + ([(b[t], rng.uniform(.3, 1., 26), 2)] if t in second else [])
        for p, s, pid in people:
            s = np.array(s, float)
            if pid == 1 and zero_knee is not None and zero_knee[t]: p = p.copy(); p[13] = 0; s[13] = 0
            x0, y0 = p.min(0); x1, y1 = p.max(0)
            rows.append({'image_id': f'{t}.jpg', 'category_id': 1, 'keypoints': _flat(p, s),
                         'score': float(2.2 + s.mean()), 'box': [x0 - 10, y0 - 10, x1 - x0 + 20, y1 - y0 + 20],
                         'idx': pid if tracked else [[0.0], [0.0]]})
    return rows, a, b


def test_alphapose_halpe26_undetected_knee_filled_and_scores_clipped(tmp_path):
    T = 120; miss = np.random.default_rng(1).random(T) < .2; miss[[0, T - 1]] = False
    rows, a, _ = _alphapose(T, zero_knee=miss)
    (tmp_path / 'alphapose-results.json').write_text(json.dumps(rows))
    pieces, rep = read_track(tmp_path / 'alphapose-results.json', image_size=(1920, 1080))
    (t,) = pieces
    assert (rep.why, rep.n_tracks, rep.frames, rep.size_from, rep.joints_filled) == ('longest', 2, T, 'user', miss.sum())
    assert t.joints == 'halpe26' and t.confidence.max() == 1.0 and t.confidence.min() > 0 or (t.confidence[:, 13] == 0).sum() == miss.sum()
    assert (t.confidence[miss, 13] == 0).all() and t.confidence.max() == 1.0        # scores up to 1.07: clipped
    err = np.abs(t.keypoints[:, 13] - a[:, 13]).max(1)
    assert err[miss].max() < 3, err[miss].max()                                      # the filled knee: within 3 px
    assert np.abs(t.keypoints[~miss] - a[~miss]).max() < 1e-2
    assert str(rep).startswith(f"track 0 (longest of 2 tracks: {T} frames; next 20), 1920x1080 px (from --image-size), {miss.sum()} of {T * 26:,} joints filled")


def test_alphapose_tracked_idx_and_halpe_to_h36m_mean_is_motionberts_map(tmp_path):
    rows, a, b = _alphapose(60, tracked=True)
    (tmp_path / 'ap.json').write_text(json.dumps(rows))
    tracks = read_keypoints(tmp_path / 'ap.json', image_size=(1920, 1080))
    assert [(t.track_id, len(t)) for t in tracks] == [(1, 60), (2, 20)]               # `idx` as track ids
    raw = tracks[0].scores if tracks[0].scores is not None else tracks[0].confidence      # the file's own scores (some > 1)
    x = np.concatenate([tracks[0].keypoints, raw[..., None]], -1)                  # (T, 26, 3)
    # MotionBERT `halpe2h36m` (formats.md §4): the whole (x, y, score) triple mapped, spine = (neck + pelvis) / 2;
    # its crop_scale clips the confidence to 1 afterwards
    src = [19, 12, 14, 16, 11, 13, 15, None, 18, 0, 17, 5, 7, 9, 6, 8, 10]
    ref = np.stack([(x[:, 18] + x[:, 19]) * .5 if i is None else x[:, i] for i in src], 1)
    h = tracks[0].to_joints('h36m17', confidence='mean')
    np.testing.assert_allclose(h.keypoints, ref[..., :2], atol=1e-4)
    np.testing.assert_allclose(h.confidence, np.clip(ref[..., 2], 0, 1), atol=1e-6)
    assert h.confidence[:, 7] != pytest.approx(tracks[0].to_joints('h36m17').confidence[:, 7])   # 'min' differs


# ---------------------------------------------------------------- OpenPose v1.3 folders
def _openpose(folder, prefix: str, T: int, empty=(), undetected_hip=(), ears=False):
    "`<prefix>_<12 digits>_keypoints.json` files as OpenPose 1.3 writes them (ears 0, 0, 0 unless `ears`)."
    folder.mkdir(exist_ok=True)
    p = _as(_body(T), 'body25'); s = np.full((T, 25), .8)
    if not ears: p[:, [17, 18]] = 0; s[:, [17, 18]] = 0
    for t in undetected_hip: p[t, 8] = 0; s[t, 8] = 0
    for t in range(T):
        people = [] if t in empty else [{'person_id': [-1], 'pose_keypoints_2d': _flat(p[t], s[t]), 'face_keypoints_2d': [],
                                         'hand_left_keypoints_2d': [], 'hand_right_keypoints_2d': [], 'pose_keypoints_3d': [],
                                         'face_keypoints_3d': [], 'hand_left_keypoints_3d': [], 'hand_right_keypoints_3d': []}]
        (folder / f'{prefix}_{t:012d}_keypoints.json').write_text(json.dumps({'version': 1.3, 'people': people}))
    return p


def test_openpose_folder_empty_frames_undetected_parts_and_derived_head(tmp_path):
    _openpose(tmp_path / 'op', 'Kick_10', 30, empty=(10, 11), undetected_hip=(5, 6, 7, 8))
    pieces, rep = read_track(tmp_path / 'op', image_size=(1920, 1080), dst='h36m17')
    (t,) = pieces
    assert (rep.frames, rep.frames_interpolated, len(t)) == (28, 2, 30)
    true = _body(30)
    np.testing.assert_allclose(t.keypoints[:, 10], (true[:, 1] + true[:, 2]) / 2, atol=1e-2)   # head = eyes only, not (0, 0) ears
    assert (np.delete(t.confidence[:, 10], [10, 11]) == .8).all()
    pelvis = t.keypoints[:, 0]                                                      # mid-hip undetected in frames 5-8
    assert np.abs(pelvis - true[:, 19]).max() < 1e-2                               # on its line, no sweep from (0, 0)
    assert (t.confidence[5:9, 0] == 0).all() and (t.confidence[10:12] == 0).all()


def test_openpose_folder_with_two_videos_is_refused_unless_one_is_chosen(tmp_path):
    _openpose(tmp_path / 'op', 'Kick_10', 12); _openpose(tmp_path / 'op', 'Kick_11', 8)
    with pytest.raises(ValueError, match=r"op: file: the folder holds 2 videos \(Kick_10, Kick_11\); pass video=PREFIX \(--video PREFIX\)"):
        read_keypoints(tmp_path / 'op', image_size=(1920, 1080))
    assert [len(t) for t in read_keypoints(tmp_path / 'op', image_size=(1920, 1080), video='Kick_11')] == [8]
    _, rep = read_track(tmp_path / 'op', image_size=(1920, 1080), video='Kick_10')
    assert rep.frames == 12


# ---------------------------------------------------------------- PoseTrack18 annotations
PT_NAMES = ['nose', 'head_bottom', 'head_top', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder', 'left_elbow',
            'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle']


def _posetrack(T=30, labeled=range(5, 25)):
    "A PoseTrack18 val file: images without sizes, `track_id`s, ears never annotated, box-only annotations, v in {0, 1}."
    base = 10003420000; p = _as(_body(T), 'posetrack18'); q = _as(_body(T, x0=300, phase=2.), 'posetrack18')
    images = [{'has_no_densepose': True, 'is_labeled': t in labeled, 'file_name': f'images/val/000342_mpii_test/{t:06d}.jpg',
               'nframes': T, 'frame_id': base + t, 'vid_id': '000342', 'id': base + t} for t in range(T)]
    anns = []
    for t in labeled:
        for tid, pose in ((0, p), (1, q)):
            v = np.ones(17); v[[3, 4]] = 0
            kp = np.where(v[:, None] > 0, pose[t], 0)
            anns.append({'bbox_head': [pose[t, 2, 0] - 20, pose[t, 2, 1], 40, 50], 'keypoints': _flat(kp, v), 'track_id': tid,
                         'image_id': base + t, 'bbox': [pose[t, :, 0].min(), pose[t, :, 1].min(), 100, 400], 'scores': [],
                         'category_id': 1, 'id': int(f'{base + t}{tid:02d}')})
        anns.append({'bbox_head': [], 'keypoints': [], 'track_id': 2, 'image_id': base + t, 'bbox': [10, 10, 30, 60],
                     'scores': [], 'category_id': 1, 'id': int(f'{base + t}02')})   # a box without keypoints
    cats = [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': PT_NAMES,
             'skeleton': [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                          [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]}]
    return {'images': images, 'annotations': anns, 'categories': cats}, p


def test_posetrack18_names_give_its_own_joint_set_and_the_right_head(tmp_path):
    d, p = _posetrack()
    (tmp_path / 'pt.json').write_text(json.dumps(d))
    tracks = read_keypoints(tmp_path / 'pt.json')
    assert [(t.track_id, t.joints, len(t), t.width) for t in tracks] == [(0, 'posetrack18', 20, None), (1, 'posetrack18', 20, None)]
    with pytest.raises(ValueError, match=r"pt\.json has no image size; pass --image-size W H"):
        read_track(tmp_path / 'pt.json', dst='h36m17')
    (t,), rep = read_track(tmp_path / 'pt.json', image_size=(1280, 720), dst='h36m17', track=0)
    true = _body(30)[5:25]
    np.testing.assert_allclose(t.keypoints[:, 10], true[:, 17], atol=1e-2)       # h36m head = PoseTrack head_top
    assert (t.keypoints[:, [2, 5], 1] > t.keypoints[:, [0], 1] + 50).all()        # knees below the pelvis (y down)
    assert rep.why == 'requested' and rep.n_tracks == 2


# ---------------------------------------------------------------- COCO annotations (val2017 layout) and names
COCO_NAMES = PT_NAMES[:1] + ['left_eye', 'right_eye'] + PT_NAMES[3:]


def _coco_annotations(sizes=((640, 427), (640, 480), (500, 375))):
    imgs, anns = [], []
    for k, (w, h) in enumerate(sizes):
        iid = 397133 + k
        imgs.append({'license': 4, 'file_name': f'{iid:012d}.jpg', 'coco_url': f'http://images.cocodataset.org/val2017/{iid:012d}.jpg',
                     'height': h, 'width': w, 'date_captured': '2013-11-14 17:02:52', 'flickr_url': '', 'id': iid})
        p = _as(_body(1, x0=320, y0=220), 'coco17')[0]; v = np.full(17, 2.); v[[1, 3]] = [1, 0]
        kp = np.where(v[:, None] > 0, p, 0)
        anns.append({'segmentation': [[p[5, 0], p[5, 1], p[6, 0], p[6, 1], p[12, 0], p[12, 1]]], 'num_keypoints': int((v > 0).sum()),
                     'area': 4000.0, 'iscrowd': 0, 'keypoints': _flat(kp, v), 'image_id': iid, 'bbox': [80, 100, 60, 210],
                     'category_id': 1, 'id': 200000 + k})
        anns.append({'segmentation': {'counts': [272, 2, 4], 'size': [h, w]}, 'num_keypoints': 0, 'area': 100.0, 'iscrowd': 1,
                     'keypoints': [0] * 51, 'image_id': iid, 'bbox': [0, 0, 10, 10], 'category_id': 1, 'id': 900000 + k})
    return {'info': {}, 'licenses': [], 'images': imgs, 'annotations': anns,
            'categories': [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': COCO_NAMES, 'skeleton': []}]}


def test_coco_annotations_several_sizes_need_image_size_and_names_reorder(tmp_path):
    d = _coco_annotations()
    (tmp_path / 'person_keypoints_val2017.json').write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"images: several image sizes \(\(500, 375\), \(640, 427\), \(640, 480\)\); pass image_size"):
        read_keypoints(tmp_path / 'person_keypoints_val2017.json')
    tracks = read_keypoints(tmp_path / 'person_keypoints_val2017.json', image_size=(640, 480))
    assert all((t.width, t.height, t.joints) == (640, 480, 'coco17') for t in tracks)
    c = np.concatenate([t.confidence for t in tracks]); assert (c[:, 3] == 0).all() and (c[:, 1] == 1).all()   # v = 1 counts, v = 0 not
    perm = np.random.default_rng(0).permutation(17)                               # names in another order: reordered
    d['categories'][0]['keypoints'] = [COCO_NAMES[i] for i in perm]
    for a in d['annotations']: a['keypoints'] = np.array(a['keypoints']).reshape(17, 3)[perm].ravel().tolist()
    (tmp_path / 'perm.json').write_text(json.dumps(d))
    for t, u in zip(read_keypoints(tmp_path / 'perm.json', image_size=(640, 480)), tracks):
        np.testing.assert_array_equal(t.keypoints, u.keypoints)
    d['categories'][0]['keypoints'][4] = 'left_antenna'
    (tmp_path / 'bad.json').write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"bad\.json: categories\.keypoints: unknown keypoint names left_antenna \(known joint sets: "):
        read_keypoints(tmp_path / 'bad.json', image_size=(640, 480))


# ---------------------------------------------------------------- COCO results: flags or scores
def test_coco_results_flags_read_as_confidence_1_and_scores_are_range_checked(tmp_path):
    p = _as(_body(10), 'coco17')
    rows = [{'image_id': t, 'category_id': 1, 'keypoints': _flat(p[t], np.where(np.arange(17) == 3, 0, 2)), 'score': .9} for t in range(10)]
    (tmp_path / 'flags.json').write_text(json.dumps(rows))
    (t,) = read_keypoints(tmp_path / 'flags.json')
    assert (t.confidence[:, 3] == 0).all() and (np.delete(t.confidence, 3, 1) == 1).all()   # v = 2 -> 1, never 2
    for r, s in zip(rows, np.linspace(.5, 1.5, 10)): r['keypoints'][2::3] = [float(s)] * 17
    rows[0]['keypoints'][5] = -0.3
    (tmp_path / 'scores.json').write_text(json.dumps(rows))
    (t,) = read_keypoints(tmp_path / 'scores.json')
    assert t.confidence.max() == 1 and t.confidence[0, 1] == 0 and t.confidence[0, 0] == .5
    rows[3]['keypoints'][8] = 1e6
    (tmp_path / 'big.json').write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"big\.json: keypoints: score 1e\+06 \(frame 3, joint 2\): expected scores in \[0, 1\]"):
        read_keypoints(tmp_path / 'big.json')


# ---------------------------------------------------------------- mmpose predictions with meta_info
def test_mmpose_predictions_names_from_meta_info(tmp_path):
    names = COCO_NAMES + ['head', 'neck', 'hip', 'left_big_toe', 'right_big_toe', 'left_small_toe', 'right_small_toe', 'left_heel', 'right_heel']
    p = _body(6)
    meta = {'dataset_name': 'halpe', 'num_keypoints': 26, 'keypoint_id2name': {str(k): n for k, n in enumerate(names)},
            'keypoint_name2id': {n: k for k, n in enumerate(names)}, 'flip_indices': list(range(26)), 'sigmas': [.026] * 26}
    info = [{'frame_id': t + 1, 'instances': [{'keypoints': p[t].tolist(), 'keypoint_scores': [1.2] * 26,
                                               'bbox': [[500., 300., 700., 720.]], 'bbox_score': .98}]} for t in range(6)]
    (tmp_path / 'results_video.json').write_text(json.dumps({'meta_info': meta, 'instance_info': info}))
    (t,) = read_keypoints(tmp_path / 'results_video.json', image_size=(1920, 1080))
    assert t.joints == 'halpe26' and (t.frames == np.arange(1, 7)).all() and (t.confidence == 1).all()   # 1.2: clipped
    np.testing.assert_allclose(t.keypoints, p, atol=1e-4)


# ---------------------------------------------------------------- hostile files: one ValueError naming file and field
def _rows(**kw):
    r = {'image_id': 0, 'category_id': 1, 'keypoints': _flat(_as(_body(1), 'coco17')[0], np.full(17, .9)), 'score': .9}
    return [dict(r, **kw)]


@pytest.mark.parametrize('name, content, match', [
    ('id19.json', json.dumps(_rows(image_id=1e19)), r"id19\.json: \[0\]\.image_id: expected an integer in 0\.\."),
    ('idinf.json', json.dumps(_rows(image_id=float('inf'))), r"idinf\.json: \[0\]\.image_id: expected an integer .* got inf"),
    ('ap.json', json.dumps(_rows(image_id='frame_99999999999999999999.jpg', idx=0)), r"ap\.json: \[0\]\.image_id: frame number 9+ in .* too large"),
    ('deep.json', '[' * 200_000 + ']' * 200_000, r"deep\.json: file: JSON nested too deeply"),
    ('mm.json', json.dumps({'meta_info': {}, 'instance_info': [{'frame_id': 0, 'instances': 5}]}), r"mm\.json: \[0\]\.instances: expected a list, got int"),
    ('ann.json', json.dumps({'images': [], 'annotations': [None]}), r"ann\.json: annotations\[0\]: expected a JSON object, got null"),
    ('tid.json', json.dumps(_rows(track_id=1e300)), r"tid\.json: \[0\]\.track_id: expected an integer in -9223372036854775808\.\."),
    ('conf.json', json.dumps([dict(_rows()[0], keypoints=[1.] * 50 + [1e6])]), r"conf\.json: keypoints: score 1e\+06 \(frame 0, joint 16\)"),
    ('zero.json', json.dumps([dict(_rows()[0], keypoints=[5., 5., 0.] * 17)]), r"zero\.json: keypoints: no joint detected in any of its 1 detections"),
    ('far.json', json.dumps([dict(_rows()[0], keypoints=[1e30, 5., 1.] * 17)]), r"far\.json: keypoints: coordinate 1e\+30 px \(frame 0, joint 0\)"),
    ('str.json', json.dumps([dict(_rows()[0], keypoints='1, 2, 3')]), r"str\.json: \[0\]\.keypoints: expected a list of numbers, got str"),
    ('v_000000000000_keypoints.json', json.dumps({'version': 1.3, 'people': [{'person_id': [1e300], 'pose_keypoints_2d': [1.] * 75}]}),
     r"v_000000000000_keypoints\.json: people\[0\]\.person_id: expected an integer"),
])
def test_hostile_files_one_line_value_error(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=match) as e: read_keypoints(tmp_path / name, image_size=(1920, 1080))
    assert '\n' not in str(e.value)


def test_hostile_arrays_and_numbers(tmp_path):
    t = KeypointTrack(0, np.arange(20), _as(_body(20), 'coco17'), np.full((20, 17), .9), 'coco17')
    (tmp_path / 'cut.npz').write_bytes(write_npz(t, tmp_path / 'k.npz').read_bytes()[:-120])
    with pytest.raises(ValueError, match=r"cut\.npz: file: not a readable numpy file \(BadZipFile"): read_keypoints(tmp_path / 'cut.npz', joints='coco17')
    np.save(tmp_path / 'obj.npy', np.array([[['a', 'b']] * 17], object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: file: not a numpy file"): read_keypoints(tmp_path / 'obj.npy', joints='coco17')
    kp = t.keypoints.copy(); kp[3, 5] = np.nan; kp[7] = np.nan                    # NaN: not detected, never NaN downstream
    np.save(tmp_path / 'nan.npy', kp)
    pieces, rep = read_track(tmp_path / 'nan.npy', joints='coco17', image_size=(1920, 1080), dst='h36m17')
    assert len(pieces) == 1 and all(np.isfinite(p.keypoints).all() for p in pieces)
    assert (rep.frames, rep.frames_interpolated, rep.joints_filled) == (19, 1, 1)
    np.testing.assert_allclose(pieces[0].keypoints[7, 11], t.keypoints[7, 5], atol=1e-2)   # l_shoulder of the NaN frame, interpolated
    for bad in (-5, 2.5, float('nan'), True, '3'):
        with pytest.raises(ValueError, match=r"max_gap: expected an integer >= 0"): check_max_gap(bad)
    assert check_max_gap(10 ** 12, 20) == 20 and len(fill_gaps(t, max_gap=10 ** 12)) == 1   # bounded: no allocation
    with pytest.raises(ValueError, match=r"image_size: expected width and height as integers in 1\.\.100000 px, got \(1e\+20, 1080\)"):
        read_track(tmp_path / 'nan.npy', joints='coco17', image_size=(1e20, 1080))
    assert check_image_size((1920, 1080)) == (1920, 1080)


def test_image_size_warnings(tmp_path):
    rows = _rows(); (tmp_path / 'r.json').write_text(json.dumps(rows))            # a person at x 545..655, y 300..705
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        read_keypoints(tmp_path / 'r.json', image_size=(1920, 1080))
        assert not w
        read_keypoints(tmp_path / 'r.json', image_size=(480, 360))                 # too small: far outside
        read_keypoints(tmp_path / 'r.json', image_size=(3 * 1920, 3 * 1080))       # 3x too large: all top-left
    msgs = [str(x.message) for x in w]
    assert len(msgs) == 2 and all('\n' not in m for m in msgs)
    assert 'detected keypoints lie more than 25% outside the 480x360 image' in msgs[0]
    assert 'top-left quarter of the 5760x3240 image' in msgs[1]


# ---------------------------------------------------------------- linking: identity and bounded time
def test_linking_keeps_identity_when_a_joint_drops_before_two_people_meet(tmp_path):
    "Issue 24.7: one joint zeroed in the frame before a two-person frame must not switch the track."
    T = 60; a, b = _body(T), _body(T, x0=700, v=-2, phase=1.)
    rows = []
    for t in range(T):
        pa = a[t].copy(); sa = np.full(26, .9)
        if t == 29: pa[13] = 0; sa[13] = .9                                         # the left knee at (0, 0), a score kept
        rows.append({'image_id': f'{t}.jpg', 'category_id': 1, 'keypoints': _flat(pa, sa), 'score': 3., 'idx': 0})
        if t >= 30: rows.append({'image_id': f'{t}.jpg', 'category_id': 1, 'keypoints': _flat(b[t], np.full(26, .9)), 'score': 3., 'idx': 0})
    (tmp_path / 'ap.json').write_text(json.dumps(rows))
    tracks = read_keypoints(tmp_path / 'ap.json', image_size=(1920, 1080))
    assert sorted(len(t) for t in tracks) == [30, 60]
    long = max(tracks, key=len)
    np.testing.assert_allclose(np.delete(long.keypoints, 29, 0), np.delete(a, 29, 0), atol=1e-2)   # person a, every frame


@pytest.mark.parametrize('spread', [2000., 200.])                                  # a sparse and a dense crowd
def test_linking_500_people_is_fast_and_keeps_identity(spread):
    rng = np.random.default_rng(0)
    base = _TEMPLATE[None, :17] * .2 + rng.uniform(0, spread, (500, 1, 2))        # people 80 px tall
    kp = np.concatenate([base + [2. * t, t] for t in range(3)]); c = np.ones(kp.shape[:2])
    t0 = time.perf_counter(); lab = link_detections(np.repeat(np.arange(3), 500), kp, c); dt = time.perf_counter() - t0
    assert dt < 5, dt                                                               # 47 s before (greedy pairs in Python)
    if spread > 1000: assert (lab == np.tile(np.arange(500), 3)).all()              # apart: everyone keeps their identity
    assert len(np.unique(lab)) <= 520


def test_track_report_is_one_short_line():
    r = TrackReport('a.json', 1, 0, 'the only one', 10, (), None, 'none', 0, 170, 0, 0, 1)
    assert str(r) == "track 0 (the only one: 10 frames), image size unknown, 0 of 170 joints filled (0.0%), 0 frames interpolated, 0 dropped, 1 piece"
