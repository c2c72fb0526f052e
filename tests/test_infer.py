"""`hpe-pretrain infer` beyond the notebook: videos at another frame rate than the model's training data are
resampled to it and back (one pose per input frame), the rates are written with the poses, and long inputs report
progress. Models are untrained or stand-ins: only shapes, bookkeeping and exactness on linear motion are tested."""
import json
from pathlib import Path

import numpy as np

from hpe_pretrain.data.keypoint_tracks import KeypointTrack
from hpe_pretrain.data.keypoint_files import write_coco_results
from hpe_pretrain.testing import make_run
from hpe_pretrain.infer import infer_command
from hpe_pretrain.train.lifting import LiftingModel, load_lifting_model, resample_time
from hpe_pretrain.train.sidecar import Conventions
from hpe_pretrain.transforms.normalize import PoseCodec


def _echo(clip_len: int = 9, fps: float | None = 50.) -> LiftingModel:
    "A stand-in model that returns its encoded input (root convention 'none', so the echo is exact)."
    return LiftingModel(lambda x: x, Conventions('h36m17', clip_len, PoseCodec(0), fps=fps, root_mode='none'), name='echo')


def _linear(T: int, J: int = 17) -> np.ndarray:
    "(T, J, 2) px: a fixed pose moving at constant velocity."
    shape = np.random.default_rng(0).uniform(-50, 50, (J, 2))
    return (shape + 400 + np.arange(T)[:, None, None] * np.array([3., -1.5])).astype(np.float32)


def test_resample_25_to_50_and_back_is_exact_for_linear_motion():
    kp = _linear(40)
    up = resample_time(kp, 25, 50)
    assert up.shape == (79, 17, 2)
    np.testing.assert_allclose(up[::2], kp, atol=1e-4)
    np.testing.assert_allclose(up[1::2], (kp[:-1] + kp[1:]) / 2, atol=1e-4)
    np.testing.assert_allclose(resample_time(up, 50, 25, n=40), kp, atol=1e-4)
    conf = np.random.default_rng(1).uniform(0, 1, (40, 17)).astype(np.float32)
    np.testing.assert_allclose(resample_time(resample_time(conf, 25, 50), 50, 25, n=40), conf, atol=1e-6)


def test_model_at_50fps_on_25fps_input_keeps_every_frame():
    echo = _echo()
    kp = _linear(61)
    plain = PoseCodec(0).encode(kp, np.array([1000., 1000.], np.float32), None)
    plain = plain - plain[:, :1]                                       # the codec's decode: root-relative
    out = echo(kp, None, (1000, 1000), fps=25)
    assert out.shape == (61, 17, 3)                                    # T_out == T_in
    np.testing.assert_allclose(out, plain, atol=1e-6)                  # linear motion: exact
    np.testing.assert_array_equal(echo(kp, None, (1000, 1000), fps=50.), echo(kp, None, (1000, 1000)))
    assert not _echo(fps=None).resamples(25)                           # unknown training rate: never resampled


def _run(d: Path, model: str = 'stmo-tiny') -> Path:
    "A run folder like `fit` leaves, holding an untrained model (clip length 27, the synthetic H36M-format data)."
    return make_run(d/model, model)[0].path


def test_infer_fps_at_model_rate_is_identical_and_25fps_is_resampled(tmp_path, capsys):
    run = _run(tmp_path)
    assert load_lifting_model(run, device='cpu').fps == 50.
    coco = KeypointTrack(0, np.arange(100), _linear(100), np.ones((100, 17)), 'coco17')
    path = write_coco_results([coco], tmp_path/'video.json')
    kw = dict(image_size=(1000, 1000), device='cpu', max_frames=10)
    plain = infer_command(run, path, tmp_path/'plain', **kw)
    same = infer_command(run, path, tmp_path/'same', fps=50, **kw)
    np.testing.assert_array_equal(same['poses_3d'], plain['poses_3d'])
    r25 = infer_command(run, path, tmp_path/'r25', fps=25, **kw)
    assert r25['poses_3d'].shape == (100, 17, 3) and r25['resampled'] and not same['resampled']
    assert not np.allclose(r25['poses_3d'], plain['poses_3d'])        # the model saw other frames
    out = [l for l in capsys.readouterr().out.splitlines() if 'lifted with' in l]
    assert "no --fps: not resampled" in out[0] and "50 fps, as the model's" in out[1]
    assert "25 fps resampled to the model's 50 fps and back" in out[2]
    doc = json.loads((tmp_path/'r25'/'poses_3d.json').read_text())
    assert (doc['video_fps'], doc['model_fps'], doc['resampled'], len(doc['poses_3d'])) == (25., 50., True, 100)
    with np.load(tmp_path/'plain'/'poses_3d.npz', allow_pickle=False) as z:   # no pickles: an unknown rate is NaN
        assert np.isnan(z['video_fps']) and float(z['model_fps']) == 50. and not bool(z['resampled'])


def test_progress_for_long_tracks_only(capsys):
    echo = _echo()
    echo(_linear(3000), None, (1000, 1000), progress=True)              # 334 windows, 6 batches (x2 flip)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6 and lines[-1].startswith('lifting 3000 frames (334 windows of 9): 6/6 batches'), lines
    echo(_linear(100), None, (1000, 1000), progress=True)               # 12 windows: silent
    echo(_linear(3000), None, (1000, 1000))                             # off by default
    assert capsys.readouterr().err == ''


def test_cli_fps(tmp_path, capsys):
    from hpe_pretrain.cli import main
    run = _run(tmp_path)
    path = write_coco_results([KeypointTrack(0, np.arange(40), _linear(40), np.ones((40, 17)), 'coco17')], tmp_path/'v.json')
    args = ['infer', '--checkpoint', str(run), '--keypoints', str(path), '--image-size', '1000', '1000', '--device', 'cpu']
    assert main(args + ['--out', str(tmp_path/'a'), '--fps', '30']) == 0
    assert "30 fps resampled to the model's 50 fps and back" in capsys.readouterr().out
    doc = json.loads((tmp_path/'a'/'poses_3d.json').read_text())
    assert (doc['video_fps'], doc['resampled'], len(doc['frames'])) == (30., True, 40)
    assert main(args + ['--out', str(tmp_path/'b'), '--fps', '0']) == 2
    err = capsys.readouterr().err
    assert "argument --fps: '0': expected a number from 1 to 1000" in err and len(err.strip().splitlines()) == 1, err
