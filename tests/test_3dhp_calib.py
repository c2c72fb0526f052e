"""MPI-INF-3DHP test-set cameras (`ts1-4cameras.calib` / `ts5-6cameras.calib`, "tc camera calibration v0.3"):
reading, writing, attaching them to the test sequences, and the synthetic tree's cameras through the pose cache.

Every file is generated here with made-up numbers, in the real layout; the millimetre values of the hand-written
fixtures were chosen so that the published TS1 and TS5/TS6 intrinsics (formats.md §2.2) come out."""
import math
import warnings

import numpy as np
import pytest
from fastcore.test import test_fail as fails_with  # aliased: pytest would collect a `test_*` name as a test

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.data.camera import Camera, look_at
from hpe_pretrain.data.mpi_test_cameras import (TC_CALIB_HEADER, TS_CALIB_SEARCH, find_3dhp_test_calibration,
                                                load_3dhp_test_cameras, read_3dhp_test_calibration,
                                                write_3dhp_test_calibration)
from hpe_pretrain.data.mpi_inf_3dhp import iter_3dhp_test, write_3dhp_test_annot
from hpe_pretrain.data.mpi_inf_3dhp_files import iter_3dhp
from hpe_pretrain.data.prepare import prepare
from hpe_pretrain.data.synthetic import synthetic_3dhp_test_cameras, write_synthetic_3dhp


def _cams(size, n=3, seed=0):
    "Made-up cameras of one image size, with distortion and off-centre principal points."
    rng, (w, h), out = np.random.default_rng(seed), size, {}
    for i in range(n):
        a = 2 * math.pi * i / n + 0.3
        R, t = look_at((4 * math.cos(a), 4 * math.sin(a), 1.0 + 0.2 * i), (0.1, -0.2, 0.9))
        f = 1500 + rng.normal(0, 5, 2)
        out[2 * i + 1] = Camera(str(2 * i + 1), R, t, f, (w / 2 + rng.normal(0, 20), h / 2 + rng.normal(0, 20)),
                                rng.normal(0, 0.1, 3), rng.normal(0, 1e-3, 2), w, h)
    return out


def _calib_text(cams, newline='\n'):
    """A .calib text written field by field (not by `write_3dhp_test_calibration`), with the layout variations the
    reader must take: tabs, comments, unknown fields (one whose value holds the word 'camera'), colour tables inline
    and over several lines, a continuation line for `origin`."""
    out = ['\ufeff' + TC_CALIB_HEADER, '# generated for a test', '   ']
    for i, (sensor, fl, aspect, offset, dist, origin, up, right) in cams.items():
        out += [f'camera {i} 00:00:5e:00:53:{i:02x}', '\tserialNumber 5000' + str(i), '\tcameraModel  test camera model',
                '\tcolorCorrection', '\t\tred ' + ' '.join(['0.9'] * 10), ' '.join(['0.9'] * 246),
                '\t\tgreen', *[' '.join(['1'] * 32)] * 8, '\t\tblue ' + ' '.join(['1.1'] * 256),
                '\tframe 0   # the only frame', '\t\torientation 1',
                f'\t\tsensorSize\t{sensor}\t# in mm', f'\t\tfocalLength\t{fl}\t# in mm', f'\t\tpixelAspect\t{aspect}',
                f'\t\tcenterOffset\t{offset}\t# in mm (positive values move right and down)',
                '\t\tdistortionModel\tOpenCV', f'\t\tdistortion\t{dist}', f'\t\t\torigin\t{origin[0]}', f'\t\t\t\t{origin[1]}',
                f'\t\t\tup\t{up}', f'\t\t\tright\t{right}', '\t\tintrinsicError 0.21']
    return newline.join(out) + newline


TS14 = {8: ('10 10', 7.32506, 1.000325, '-0.0323 0.0931', '0 0 0 0 0', ('0 -3000', '1000'), '0 0 1', '1 0 0')}
TS56 = {0: ('10 5.625', 8.7707, 0.9933, '-0.1051 0.1048', '-0.2769 0.1311 0.0004 -0.0002 0.01', ('1000 2000', '1500'),
            '0 0 1', '0 -1 0')}


@pytest.fixture
def published(tmp_path):
    (tmp_path / 'ts1-4cameras.calib').write_text(_calib_text(TS14), encoding='utf-8')
    (tmp_path / 'ts5-6cameras.calib').write_bytes(_calib_text(TS56, '\r\n').encode('utf-8'))   # Windows line ends
    return tmp_path


def test_published_intrinsics(published):
    c14 = read_3dhp_test_calibration(published / 'ts1-4cameras.calib')
    c56 = read_3dhp_test_calibration(published / 'ts5-6cameras.calib')
    assert list(c14) == [8] and list(c56) == [0]
    ts1, ts5 = c14[8], c56[0]
    assert (ts1.width, ts1.height, ts5.width, ts5.height) == (2048, 2048, 1920, 1080)
    np.testing.assert_allclose(ts1.f, [1500.1, 1500.7], atol=0.2)      # mmpose's least-squares TS1: 1500.07, 1500.66
    np.testing.assert_allclose(ts1.c, [1017.4, 1043.1], atol=0.2)      # 1017.38, 1043.06
    assert 1683.5 <= ts5.f[0] <= 1684.0 and 1671.9 <= ts5.f[1] <= 1672.7, ts5.f
    assert 939.8 <= ts5.c[0] <= 939.9 and 560.1 <= ts5.c[1] <= 560.2, ts5.c
    np.testing.assert_allclose(ts1.f[0], 7.32506 / 10 * 2048)           # fx = focalLength / sensor_w * W
    np.testing.assert_allclose(ts5.f[0], 8.7707 / 10 * 1920)
    np.testing.assert_array_equal(ts5.k, [-0.2769, 0.1311, 0.01])       # OpenCV k1 k2 p1 p2 k3 -> k = (k1, k2, k3)
    np.testing.assert_array_equal(ts5.p, [0.0004, -0.0002])             # p = (p1, p2)


def test_extrinsic_axes(published):
    "origin = centre (mm); x = right, y = -up, z = x × y: TS5's camera at (1, 2, 1.5) m, right = -y, up = +z looks along +x."
    cam = read_3dhp_test_calibration(published / 'ts5-6cameras.calib')[0]
    np.testing.assert_allclose(cam.centre, [1.0, 2.0, 1.5], atol=1e-12)
    np.testing.assert_allclose(cam.R, [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-12)
    ahead = cam.project_world(np.array([[4.0, 2.0, 1.5], [4.0, 2.0, 2.0], [4.0, 1.0, 1.5]]), distort=False)
    np.testing.assert_allclose(ahead[0], cam.c)                         # straight ahead: the principal point
    assert ahead[1, 1] < cam.c[1] and ahead[2, 0] > cam.c[0]            # higher: up in the image; world -y: right


def test_round_trip_all_fields(tmp_path):
    for name, size, sensor in (('ts1-4cameras.calib', (2048, 2048), None), ('ts5-6cameras.calib', (1920, 1080), None),
                               ('other.calib', (1280, 720), (6.4, 3.6))):
        cams = _cams(size, seed=len(name))
        p = write_3dhp_test_calibration(tmp_path / name, cams, sensor=sensor, names={1: 'left', 3: 'right'})
        text = p.read_text()
        assert text.startswith(TC_CALIB_HEADER + '\n#') and text.count('colorCorrection') == 3 and 'camera 1 left' in text
        assert [ln.split()[0] for ln in text.splitlines() if ln.strip()].count('red') == 3
        back = read_3dhp_test_calibration(p, None if sensor is None else size)
        assert sorted(back) == sorted(cams)
        for i, cam in cams.items():
            assert back[i].allclose(cam, atol=1e-9), (name, i, back[i], cam)
    assert not list(tmp_path.glob('*.tmp'))                             # atomic writes leave no temporary file
    fails_with(lambda: write_3dhp_test_calibration(tmp_path / 'x.calib', _cams((1920, 1080)), sensor=(10, 10)),
              contains="sensor 10 x 10 mm has not the aspect ratio of camera 1's 1920x1080 image")


def _opencv_project(X, f, c, k1, k2, p1, p2, k3):
    "OpenCV's pinhole + radial-tangential projection of camera points, written out from its documented formula."
    x, y = X[..., 0] / X[..., 2], X[..., 1] / X[..., 2]
    r2 = x * x + y * y
    rad = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd * f[0] + c[0], yd * f[1] + c[1]], -1)


def test_distortion_matches_opencv_as_documented(published):
    "Radial terms are OpenCV's; the tangential ones differ by (p1·y + p2·x)·(x, y)·f, zero when p = 0."
    cam = read_3dhp_test_calibration(published / 'ts5-6cameras.calib')[0]
    X = np.random.default_rng(0).uniform([-1.5, -1, 3], [1.5, 1, 6], (50, 3))
    (k1, k2, k3), (p1, p2) = cam.k, cam.p
    ocv = _opencv_project(X, cam.f, cam.c, k1, k2, p1, p2, k3)
    x, y = X[:, 0] / X[:, 2], X[:, 1] / X[:, 2]
    np.testing.assert_allclose(ocv - cam.project(X), (p1 * y + p2 * x)[:, None] * np.stack([x, y], -1) * cam.f, atol=1e-9)
    radial = Camera('0', cam.R, cam.t, cam.f, cam.c, cam.k, (0, 0), cam.width, cam.height)
    np.testing.assert_allclose(_opencv_project(X, cam.f, cam.c, k1, k2, 0, 0, k3), radial.project(X), atol=1e-9)


def test_bad_files(published):
    bad, good = published / 'ts1-4cameras.calib', _calib_text(TS14)

    def fails(text, msg):
        bad.write_text(text)
        fails_with(lambda: read_3dhp_test_calibration(bad), contains=msg)
    fails(good.replace('focalLength\t7.32506', 'focalLength\t7.32506 7.3'), f"{bad}: line 23: camera 8: field 'focalLength' has 2 values, expected 1")
    fails(good.replace('pixelAspect\t1.000325', 'pixelAspect\tone'), "camera 8: field 'pixelAspect' has a non-numeric value 'one'")
    fails(good.replace('sensorSize', 'sensor'), f"{bad}: camera 8: missing field 'sensorSize'")
    fails(good.replace('right\t1 0 0', 'left\t1 0 0'), "camera 8: missing field 'right'")
    fails(good.replace(TC_CALIB_HEADER, 'Skeletool Camera Calibration File V1.0'), "missing header line 'tc camera calibration v0.3', found 'Skeletool")
    fails(good.replace('origin\t0 -3000', 'origin\tnan -3000'), "field 'origin' is not finite")
    fails(good.replace('camera 8 ', 'camera eight '), "field 'camera' needs an integer index and a name, got 'eight")
    fails(TC_CALIB_HEADER + '\n# nothing else\n', 'no cameras')
    fails(good.replace('# generated for a test', '1 2 3'), 'line 2: numbers before the first field')
    fails_with(lambda: read_3dhp_test_calibration(published / 'ts5-6cameras.calib', image_size=(1920, 1920)),
              contains="camera 0: field 'sensorSize' 10 x 5.625 mm has not the aspect ratio of a 1920x1920 image")
    fails_with(lambda: read_3dhp_test_calibration(published / 'missing.calib'), contains='not found')


def test_search_list_and_selection(tmp_path):
    studio, outdoor = _cams((2048, 2048), n=5), _cams((1920, 1080), n=1)     # studio indices 1, 3, 5, 7, 9
    studio[8] = Camera('8', np.eye(3), (0, 0, 4), (1500, 1500), (1024, 1024), (0, 0, 0), (0, 0), 2048, 2048)
    troot = tmp_path / 'data' / 'mpi_inf_3dhp_test_set'
    (troot / 'TS1').mkdir(parents=True)
    assert find_3dhp_test_calibration(troot) == {}
    for sub in TS_CALIB_SEARCH:                                                 # every place of the search list
        p = write_3dhp_test_calibration(troot / sub / 'ts1-4cameras.calib', studio)
        assert find_3dhp_test_calibration(troot) == {'ts1-4': p.resolve()}, sub
        assert load_3dhp_test_cameras(None, troot, ['TS1', 'TS5'])['TS1'].allclose(studio[8], 1e-9)   # default: camera 8
        p.unlink()
    write_3dhp_test_calibration(troot / '..' / 'ts5-6cameras.calib', outdoor)
    write_3dhp_test_calibration(troot / 'test_util' / 'camera_calibration' / 'ts1-4cameras.calib', studio)
    write_3dhp_test_calibration(troot / 'ts1-4cameras.calib', {3: studio[3]})  # earlier in the search list: wins
    got = load_3dhp_test_cameras(None, troot, ['TS2', 'TS6'])
    assert got['TS2'].allclose(studio[3], 1e-9) and got['TS6'].allclose(outdoor[1], 1e-9)
    folder = troot / 'test_util' / 'camera_calibration'
    assert load_3dhp_test_cameras(folder, None, ['TS4'], {'ts1-4': 7})['TS4'].allclose(studio[7], 1e-9)
    fails_with(lambda: load_3dhp_test_cameras(folder, None, ['TS4', 'TS5']), contains='no ts5-6cameras.calib in this calibration folder')
    assert load_3dhp_test_cameras(folder, None, ['TS4', 'TS7'])['TS7'] is None   # sequences outside TS1-TS6: no camera
    fails_with(lambda: load_3dhp_test_cameras(folder, None, ['TS1'], {'TS1': 8}), contains="calib_camera: unknown groups ['TS1']")
    fails_with(lambda: load_3dhp_test_cameras(tmp_path / 'nowhere', None, ['TS1']), contains='calibration file or folder not found')
    (tmp_path / 'my.calib').write_text((folder / 'ts1-4cameras.calib').read_text())
    fails_with(lambda: load_3dhp_test_cameras(tmp_path / 'my.calib', None, ['TS1']), contains="says neither 'ts1-4' nor 'ts5-6'")
    assert load_3dhp_test_cameras({'TS1': outdoor[1]}, troot, ['TS1', 'TS2']) == {'TS1': outdoor[1], 'TS2': None}
    assert load_3dhp_test_cameras({}, troot, ['TS1']) == {'TS1': None}       # {}: no cameras, no search
    fails_with(lambda: load_3dhp_test_cameras({'TS1': 'cam'}, None, ['TS1']), contains="values for ['TS1'] are not Cameras")
    del studio[8]                                                               # several cameras, none chosen
    write_3dhp_test_calibration(folder / 'ts1-4cameras.calib', studio)
    fails_with(lambda: load_3dhp_test_cameras(folder, None, ['TS1']), contains="holds cameras [1, 3, 5, 7, 9]; pass --calib-camera ts1-4=<index> to hpe-pretrain prepare (Python: calib_camera={'ts1-4': <index>})")
    (troot / 'ts1-4cameras.calib').unlink()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        assert load_3dhp_test_cameras(None, troot, ['TS1'])['TS1'] is None    # found by the search: warn, attach nothing
    assert 'no camera attached' in str(w[0].message)


def test_synthetic_cameras_through_the_cache(tmp_path):
    "Synthetic 3DHP: the attached camera projects the cache's test joints_3d onto its joints_2d (< 1e-3 px)."
    root = write_synthetic_3dhp(tmp_path / 'syn', subjects=('S2',), seqs=(1,), frames_per_seq=8, test_frames_per_seq=20)
    calib = root / 'mpi_inf_3dhp_test_set' / 'test_util' / 'camera_calibration'
    assert sorted(p.name for p in calib.iterdir()) == ['ts1-4cameras.calib', 'ts5-6cameras.calib']
    out = write_cache(tmp_path / 'syn.h5', iter_3dhp(root, seqs=(1,)), dataset='mpi_inf_3dhp', joints='mpi17')
    cams = synthetic_3dhp_test_cameras(0)
    with PoseCache(out) as cache:
        test = [cache.sequence(i) for i in range(len(cache)) if cache.seqs.split[i] == 'test']
        assert [s.subject for s in test] == [f'TS{i}' for i in range(1, 7)]
        for s in test:
            cam = s.camera_params
            assert cam.allclose(cams['ts1-4'][8] if s.subject in ('TS1', 'TS2', 'TS3', 'TS4') else cams['ts5-6'][0], 1e-9)
            np.testing.assert_allclose(cam.project(s.joints_3d), s.joints_2d, atol=1e-3)
        assert len({tuple(s.camera_params.f) for s in test}) == 2                 # TS1-4 share one camera, TS5-6 another
        ts5 = next(i for i in range(len(cache)) if cache.seqs.subject[i] == 'TS5')
        np.testing.assert_allclose(cache.intrinsics[ts5], cams['ts5-6'][0].intrinsics_vector(), rtol=1e-6)   # distortion too


def test_prepare_passes_calibration_on(tmp_path):
    "`prepare('mpi_inf_3dhp', ..., calibration=PATH)` reaches `iter_3dhp_test` (the path is part of the fingerprint)."
    rng = np.random.default_rng(2)
    cam = _cams((1920, 1080), n=1)[1]
    X = rng.normal(0, 0.3, (5, 17, 3)) + [0, 0, 4]
    write_3dhp_test_annot(tmp_path / 'src' / 'TS6' / 'annot_data.mat', cam.project(X), X * 1000, X * 1000,
                          np.ones(5), np.ones(5))
    calib = write_3dhp_test_calibration(tmp_path / 'cams' / 'ts5-6cameras.calib', {4: cam})
    assert next(iter_3dhp_test(tmp_path / 'src')).camera_params is None
    out = prepare('mpi_inf_3dhp', src=tmp_path / 'src', out=tmp_path / 'c.h5', calibration=calib, progress=False)
    with PoseCache(out) as cache:
        s = cache.sequence(0)
        assert s.camera_params.allclose(Camera('4', *[getattr(cam, k) for k in 'R t f c k p'.split()], 1920, 1080), 1e-9)
        np.testing.assert_allclose(s.camera_params.project(s.joints_3d), s.joints_2d, atol=1e-3)
        assert any(f['path'].endswith('ts5-6cameras.calib') for f in cache.source['files'])
