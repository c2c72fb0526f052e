"""2D keypoint files: every reader round-trips through its writer, people are tracked (by ids or linked), gaps are
filled or split, and bad files give one ValueError naming the file and the field. Data is generated, never real."""
import json
from dataclasses import replace

import numpy as np
import pytest

from hpe_pretrain.data.files import write_text_atomic
from hpe_pretrain.data.keypoints import KEYPOINT_FORMATS, KeypointFormat, detect_format, read_keypoints, read_track
from hpe_pretrain.data.other_keypoint_files import FileHead, write_mmpose, write_npz, write_openpose
from hpe_pretrain.data.keypoint_tracks import (KeypointTrack, fill_gaps, fill_undetected, link_detections, pick_track,
                                               require_image_size)
from hpe_pretrain.data.keypoint_files import write_alphapose, write_coco_annotations, write_coco_results
from hpe_pretrain.data.skeleton import get_skeleton

T = 30


def _person(x: float, y: float, s: float, J: int, rng) -> np.ndarray:
    "A stick figure of J joints, feet at (x, y), about 100·s px tall, with a fixed random shape."
    off = rng.uniform([-25, -100], [25, 0], size=(J, 2))
    return (np.array([x, y]) + s * off).astype(np.float32)


def _crossing(joints: str, ids=(0, 1), frames=None) -> list[KeypointTrack]:
    "Two people walking towards each other across the image (the second larger), crossing half-way."
    J, f = get_skeleton(joints).n_joints, np.arange(T) if frames is None else np.asarray(frames)
    out = []
    for k, (x0, v, s) in enumerate([(100, 6, 1.0), (100 + 6 * (T - 1), -6, 1.4)]):
        shape = _person(0, 0, s, J, np.random.default_rng(k))
        kp = np.stack([shape + np.array([x0 + v * t, 400], np.float32) for t in f])
        conf = np.random.default_rng(10 + k).uniform(0.05, 1, (len(f), J)).astype(np.float32)
        out.append(KeypointTrack(ids[k], f, kp, conf, joints))
    return out


def _check_same(got, want, conf=True):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a.track_id, a.joints) == (b.track_id, b.joints)
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)
        if conf: np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-6)


@pytest.mark.parametrize('fmt, joints, write', [
    ('coco_results', 'coco17', lambda t, p: write_coco_results(t, p / 'r.json')),
    ('alphapose', 'coco17', lambda t, p: write_alphapose(t, p / 'a.json')),
    ('alphapose', 'halpe26', lambda t, p: write_alphapose(t, p / 'a.json')),
    ('openpose', 'body25', lambda t, p: write_openpose(t, p / 'op', person_ids=True)),
    ('mmpose', 'coco17', lambda t, p: write_mmpose(t, p / 'm.json')),
    ('mmpose', 'halpe26', lambda t, p: write_mmpose(t, p / 'm.json', frame_ids=False)),
])
def test_roundtrip_with_ids(tmp_path, fmt, joints, write):
    tracks = _crossing(joints, ids=(7, 3))
    path = write(tracks, tmp_path)
    assert detect_format(path) == fmt
    got = read_keypoints(path, image_size=(1280, 720))
    _check_same(got, tracks[::-1])                  # sorted by track id
    assert require_image_size(got[0]) == (1280, 720)
    assert pick_track(got, 3).track_id == 3


def test_coco_annotations_roundtrip(tmp_path):
    tracks = [replace(t, confidence=(t.confidence > 0.3).astype(np.float32), width=640, height=480) for t in _crossing('coco17')]
    path = write_coco_annotations(tracks, tmp_path / 'ann.json')                  # v = 0: written as (0, 0, 0)
    assert detect_format(path) == 'coco_annotations'
    assert json.loads(path.read_text())['categories'][0]['keypoints'][:3] == ['nose', 'left_eye', 'right_eye']
    got = read_keypoints(path)
    _check_same(got, [fill_undetected(t)[0] for t in tracks])                     # read back filled, not at (0, 0)
    assert require_image_size(got[1]) == (640, 480)
    d = json.loads(path.read_text())
    for a in d['annotations']: a['keypoints'][2::3] = [1 if v else 0 for v in a['keypoints'][2::3]]   # v = 1 counts too
    d['annotations'][0]['iscrowd'] = 1
    write_text_atomic(path, json.dumps(d))
    got = read_keypoints(path)
    assert [len(t) for t in got] == [T - 1, T]
    np.testing.assert_array_equal(got[1].confidence, tracks[1].confidence)


def test_npz_roundtrip_and_conversion(tmp_path):
    t = _crossing('halpe26')[1]
    got = read_keypoints(write_npz(t, tmp_path / 'k.npz'), joints='halpe26')
    _check_same(got, [replace(t, track_id=0)])
    assert got[0].width is None
    with pytest.raises(ValueError, match='has no image size; pass --image-size W H'): require_image_size(got[0])
    h = got[0].to_joints('h36m17')
    assert h.joints == 'h36m17' and h.keypoints.shape == (T, 17, 2) and h.confidence.shape == (T, 17)
    np.testing.assert_allclose(h.keypoints[:, 0], t.keypoints[:, 19], atol=1e-5)   # halpe pelvis -> h36m pelvis
    np.save(tmp_path / 'k.npy', t.keypoints)
    got = read_keypoints(tmp_path / 'k.npy', joints='halpe26', image_size=(640, 480))
    assert (got[0].confidence == 1).all() and require_image_size(got[0]) == (640, 480)


@pytest.mark.parametrize('joints, write, strip', [
    ('coco17', lambda t, p: write_coco_results(t, p / 'r.json'), 'track_id'),
    ('coco17', lambda t, p: write_mmpose(t, p / 'm.json'), 'track_id'),
    ('body25', lambda t, p: write_openpose(t, p / 'op'), None),           # person_id [-1]: no ids
])
def test_linking_without_ids_crossing(tmp_path, joints, write, strip):
    tracks = _crossing(joints)
    path = write(tracks[::-1], tmp_path)          # the second person written first
    if strip:
        d = json.loads(path.read_text())
        for x in (d['instance_info'] if isinstance(d, dict) else d): [i.pop(strip) for i in x['instances']] if 'instances' in x else x.pop(strip)
        write_text_atomic(path, json.dumps(d))
    got = read_keypoints(path)
    assert len(got) == 2
    got = sorted(got, key=lambda t: t.keypoints[0, 0, 0])   # the left starter first
    for a, b in zip(got, tracks):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)   # every frame: the same person


def test_alphapose_idx_list_and_repeated_idx(tmp_path):
    tracks = _crossing('halpe26', ids=(5, 2))
    path = write_alphapose(tracks, tmp_path / 'a.json')
    d = json.loads(path.read_text())
    for x in d: x['idx'] = [x['idx']]
    write_text_atomic(path, json.dumps(d))
    _check_same(read_keypoints(path), tracks[::-1])
    for x in d: x['idx'] = 0.0                     # not tracked: the same idx for everyone -> linked
    write_text_atomic(path, json.dumps(d))
    got = read_keypoints(path)
    assert sorted(t.track_id for t in got) == [0, 1] and [len(t) for t in got] == [T, T]


def test_linking_bridges_short_gaps_and_pick_longest():
    a, b = _crossing('coco17')
    keep = np.ones(T, bool); keep[10:14] = False                # person b unseen for 4 frames
    f = np.r_[a.frames, b.frames[keep]]; kp = np.r_[a.keypoints, b.keypoints[keep]]; c = np.r_[a.confidence, b.confidence[keep]]
    lab = link_detections(f, kp, c, max_gap=5)
    assert (lab[:T] == 0).all() and (lab[T:] == 1).all()
    lab = link_detections(f, kp, c, max_gap=2)
    assert len(np.unique(lab[T:])) == 2                         # too long a gap: a new track


def test_fill_gaps_interpolates_and_splits():
    a = _crossing('coco17')[0]
    keep = np.r_[0:5, 8:12, 25:T]                              # gaps of 3 and 13 frames
    t = KeypointTrack(4, a.frames[keep], a.keypoints[keep], a.confidence[keep], 'coco17')
    pieces = fill_gaps(t, max_gap=5)
    assert [(p.track_id, p.frames[0], p.frames[-1]) for p in pieces] == [(4, 0, 11), (4, 25, T - 1)]
    np.testing.assert_allclose(pieces[0].keypoints, a.keypoints[:12], atol=1e-3)   # linear motion: exact
    assert (pieces[0].confidence[5:8] == 0).all()
    np.testing.assert_array_equal(pieces[0].confidence[:5], a.confidence[:5])
    assert len(fill_gaps(t, max_gap=13)) == 1
    low = replace(a, confidence=np.where(np.arange(T)[:, None] == 3, 0.01, np.ones((T, 17))).astype(np.float32))
    assert (fill_gaps(low, min_score=0.1)[0].confidence[3] == 0).all()
    assert (fill_gaps(low)[0].confidence[3] == np.float32(0.01)).all()
    assert pick_track(pieces).frames[0] == 0


@pytest.mark.parametrize('name, content, match', [
    ('e.json', '', r'e\.json: file: empty file'),
    ('l.json', '[]', r'l\.json: file: an empty list'),
    ('b.json', '{"images": [', r'b\.json: file: not JSON'),
    ('u.json', '{"foo": 1}', r'u\.json: file: unknown keypoint format'),
    ('n.json', '[{"image_id": 1, "keypoints": [0, 0, 1]}]', r'n\.json: \[0\]\.keypoints: expected 51 numbers'),
    ('a.json', '[{"image_id": "1.jpg", "keypoints": [0, 0, 1]}]', r'a\.json: \[0\]\.keypoints: expected 51 numbers .* or 78 numbers'),
    ('m.json', '[{"image_id": 1}]', r'm\.json: file: unknown keypoint format'),
    ('c.json', '{"images": [{"id": 1}], "annotations": [{"image_id": 1, "num_keypoints": 1, "keypoints": [0, 0, 2]}]}',
     r'c\.json: annotations\[0\]\.keypoints: expected 51 numbers'),
    ('w.json', '{"images": [{"id": 1, "width": 640}], "annotations": [{"image_id": 1, "num_keypoints": 1, "keypoints": [5, 5, 2' + ', 0' * 48 + ']}]}',
     r"w\.json: images\[0\] width, height: expected width and height as integers in 1\.\.100000 px, got \(640, None\)"),
    ('z.json', '{"images": [{"id": 1}], "annotations": [{"image_id": 1, "num_keypoints": 1, "keypoints": [0, 0, 2' + ', 0' * 48 + ']}]}',
     r"z\.json: keypoints: no joint detected in any of its 1 detections"),
    ('p_000001_keypoints.json', '{"version": 1.3, "people": [{"pose_keypoints_2d": [1, 2]}]}',
     r'p_000001_keypoints\.json: people\[0\]\.pose_keypoints_2d: expected 75 numbers'),
    ('mm.json', '[[{"keypoints": [[1, 2]], "keypoint_scores": [1]}]]', r'mm\.json: \[0\]\.instances\[0\]\.keypoints: expected 17 or 26'),
])
def test_bad_files(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=match): read_keypoints(tmp_path / name)


def test_bad_arrays_and_arguments(tmp_path):
    np.save(tmp_path / 'k.npy', np.zeros((5, 17, 4), np.float32))
    with pytest.raises(ValueError, match=r'k\.npy: joints: .*pass joints=NAME'): read_keypoints(tmp_path / 'k.npy')
    with pytest.raises(ValueError, match=r'k\.npy: keypoints: expected a \(T, 17, 2\|3\) array'): read_keypoints(tmp_path / 'k.npy', joints='coco17')
    (tmp_path / 'e.npz').write_bytes(b'')
    with pytest.raises(ValueError, match=r'e\.npz: file: empty file'): read_keypoints(tmp_path / 'e.npz', joints='coco17')
    (tmp_path / 'g.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match=r'g\.npz: file: not a numpy file'): read_keypoints(tmp_path / 'g.npz', joints='coco17')
    path = write_coco_results(_crossing('coco17'), tmp_path / 'r.json')
    with pytest.raises(ValueError, match="joints='body25' has 25 joints"): read_keypoints(path, joints='body25')
    with pytest.raises(ValueError, match=r'r\.json: file: expected a JSON object'): read_keypoints(path, fmt='coco_annotations')
    with pytest.raises(ValueError, match=r'no track 9; track ids: \[0, 1\]'): pick_track(read_keypoints(path), 9)
    with pytest.raises(ValueError, match='no person tracks'): pick_track([])
    (tmp_path / 'op').mkdir()
    with pytest.raises(ValueError, match=r'op: file: no \*_keypoints\.json'): read_keypoints(tmp_path / 'op')


def test_linking_is_order_free_and_fast():
    a, b = _crossing('coco17')
    f = np.r_[a.frames, b.frames]; kp = np.r_[a.keypoints, b.keypoints]; c = np.r_[a.confidence, b.confidence]
    perm = np.random.default_rng(0).permutation(len(f))
    lab = np.empty(len(f), np.int64); lab[perm] = link_detections(f[perm], kp[perm], c[perm])
    assert len(set(lab[:T])) == 1 and len(set(lab[T:])) == 1 and lab[0] != lab[T]
    import time
    n = 3000                                                      # a 2-minute video, two people, many short false tracks
    f = np.repeat(np.arange(n), 3); kp = np.random.default_rng(1).uniform(0, 1000, (3 * n, 17, 2)).astype(np.float32)
    t0 = time.perf_counter(); link_detections(f, kp, np.ones((3 * n, 17), np.float32))
    assert time.perf_counter() - t0 < 20


@pytest.mark.parametrize('seed', range(3))
def test_linking_runs_same_as_frame_by_frame(seed):
    "The single-person shortcut (`runs=True`) labels exactly as the frame-by-frame greedy step, jumps and crowds included."
    rng = np.random.default_rng(seed); n = 300; J = 17
    xy = np.cumsum(rng.normal(0, rng.uniform(1, 12), (n, 2)), 0) + 400 + 130 * np.cumsum(rng.random(n) < .03)[:, None]
    f = np.r_[np.nonzero(rng.random(n) > rng.uniform(0, .4))[0], np.nonzero(rng.random(n) < .1)[0]]
    shape = _person(0, 0, 1.0, J, rng)
    kp = (shape + xy[f][:, None] * rng.uniform(.9, 1.1, (len(f), 1, 1))).astype(np.float32 if seed % 2 else np.float64)
    c = np.where(rng.random((len(f), J)) < .2, 0, rng.random((len(f), J))).astype(np.float32)
    c[rng.random(len(f)) < .05] = 0
    for max_gap, min_iou in ((0, 0.), (3, .1), (10, .5)):
        fast = link_detections(f, kp, c, max_gap, min_iou)
        np.testing.assert_array_equal(fast, link_detections(f, kp, c, max_gap, min_iou, runs=False))


def test_linking_one_person_is_vectorised(monkeypatch):
    "A clean single-person track of 5,000 frames is linked in whole runs, not frame by frame."
    import hpe_pretrain.data.keypoint_tracks as K
    calls, cost = [], K._pair_cost
    monkeypatch.setattr(K, '_pair_cost', lambda *a: calls.append(1) or cost(*a))
    n = 5000
    kp = _person(0, 0, 1.0, 17, np.random.default_rng(0))[None] + np.c_[np.arange(n) * 2., np.zeros(n)][:, None].astype(np.float32)
    lab = link_detections(np.arange(n), kp, np.ones((n, 17), np.float32))
    assert (lab == 0).all() and len(calls) < 10


# ---- the format table: a new format is one reader + one line of KEYPOINT_FORMATS ----

def _read_txt(path, joints=None, image_size=None):
    "A toy format: one line per frame, J × (x, y, score)."
    a = np.loadtxt(path, ndmin=2)
    a = a.reshape(len(a), -1, 3)
    w, h = image_size or (None, None)
    return [KeypointTrack(0, np.arange(len(a)), a[..., :2], a[..., 2], joints or 'coco17', w, h, source=str(path))]


@pytest.fixture
def toy_format(monkeypatch):
    "The toy `txt` format registered for one test (monkeypatch restores the table)."
    monkeypatch.setitem(KEYPOINT_FORMATS, 'txt', KeypointFormat(lambda p, head: p.suffix == '.txt', _read_txt, 'TOY one line per frame'))
    yield 'txt'


def test_toy_format_is_detected_read_and_in_infer_help(tmp_path, toy_format, capsys):
    t = _crossing('coco17')[0]
    np.savetxt(tmp_path / 'walk.txt', np.concatenate([t.keypoints, t.confidence[..., None]], -1).reshape(T, -1))
    assert detect_format(tmp_path / 'walk.txt') == 'txt'
    got = read_keypoints(tmp_path / 'walk.txt', image_size=(640, 480))
    np.testing.assert_allclose(got[0].keypoints, t.keypoints, atol=1e-4)
    assert (got[0].width, got[0].height) == (640, 480)
    pieces, report = read_track(tmp_path / 'walk.txt', fmt='txt', image_size=(640, 480), dst='h36m17')
    assert pieces[0].joints == 'h36m17' and report.frames == T
    with pytest.raises(ValueError, match=r"walk\.txt: video: only for OpenPose folders, not txt"):
        read_keypoints(tmp_path / 'walk.txt', video='x')
    from hpe_pretrain.cli import main
    assert main(['infer', '--help']) == 0
    assert 'txt: TOY one line per frame' in ' '.join(capsys.readouterr().out.split())


def test_toy_format_is_gone_after_the_fixture():
    assert 'txt' not in KEYPOINT_FORMATS and list(KEYPOINT_FORMATS) == ['coco_results', 'coco_annotations', 'alphapose', 'openpose', 'mmpose', 'npz']


def test_each_written_file_is_claimed_by_exactly_one_format(tmp_path):
    "The built-in sniffs exclude each other: detection does not depend on the table's order."
    files = {'coco_results': write_coco_results(_crossing('coco17'), tmp_path / 'r.json'),
             'alphapose': write_alphapose(_crossing('halpe26'), tmp_path / 'a.json'),
             'openpose': write_openpose(_crossing('body25'), tmp_path / 'op'),
             'mmpose': write_mmpose(_crossing('coco17'), tmp_path / 'm.json'),
             'npz': write_npz(_crossing('coco17')[0], tmp_path / 'k.npz'),
             'coco_annotations': write_coco_annotations([replace(t, width=640, height=480) for t in _crossing('coco17')], tmp_path / 'c.json')}
    files['mmpose_list'] = write_mmpose(_crossing('coco17'), tmp_path / 'm2.json', frame_ids=False)
    files['openpose_file'] = sorted((tmp_path / 'op').glob('*.json'))[0]
    for want, path in files.items():
        claims = [k for k, f in KEYPOINT_FORMATS.items() if f.sniff(path, FileHead(path))]
        assert claims == [want.split('_list')[0].split('_file')[0]], (path, claims)
