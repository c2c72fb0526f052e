"""Every encoding has one home, `PoseCodec` (and `MotionBERTCodec` for MotionBERT's checkpoints): a round trip per
convention (pixels <-> input, metres <-> target, MotionBERT's modes that have an inverse), the description evaluated
against the computation, and the training arithmetic pinned bit for bit (same seed -> same weights)."""
import json

import numpy as np
import pytest
import torch

from hpe_pretrain.transforms.normalize import Formula, PoseCodec, NormalizePose, _wh
from hpe_pretrain.transforms.codecs import MotionBERTCodec, codec_from_description
from hpe_pretrain.transforms.augment import flip_batch, jitter_batch, rotate_scale_batch
from hpe_pretrain.transforms.corrupt import detector_noise_std
from hpe_pretrain.testing import synth_pose_batch

SIZES = torch.tensor([[1000, 1002], [1920, 1080], [640, 480], [1080, 1920]])


def _kp(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(4, 6, 17, 2, generator=g, dtype=dtype) * SIZES[:, None, None].to(dtype)


@pytest.mark.parametrize('lib', ['torch', 'numpy'])
def test_pixels_input_round_trip(lib):
    codec, kp, conf = PoseCodec(), _kp(), torch.rand(4, 6, 17, dtype=torch.float64)
    if lib == 'numpy': kp, conf, size = kp.numpy(), conf.numpy(), SIZES.numpy()
    else: size = SIZES
    x = codec.encode(kp, size, conf)
    assert x.shape == (4, 6, 17, 3) and type(x) is type(kp) and x.dtype == kp.dtype
    np.testing.assert_allclose(np.asarray(codec.decode_2d(x, size)), np.asarray(kp), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(codec.encode_2d(codec.decode_2d(x, size), size)), np.asarray(x[..., :2]), rtol=0, atol=1e-12)
    assert (np.asarray(x[..., 2]) == np.asarray(conf)).all()
    assert np.abs(np.asarray(x[..., 0])).max() <= 1                           # the width spans [-1, 1]


def test_metres_target_round_trip():
    j3d = torch.randn(4, 6, 17, 3, dtype=torch.float64) + torch.tensor([0., 0., 5.], dtype=torch.float64)
    for root in (0, 14):
        codec = PoseCodec(root)
        y3d, root3d = codec.split_3d(j3d)
        assert (y3d[..., root, :] == 0).all() and (root3d == j3d[..., root, :]).all()
        torch.testing.assert_close(codec.join_3d(y3d, root3d), j3d, rtol=0, atol=1e-12)
        torch.testing.assert_close(codec.decode_3d(y3d, root3d), j3d * 1000, rtol=0, atol=1e-9)
        torch.testing.assert_close(codec.decode_mm(j3d), (j3d - j3d[..., root:root + 1, :]) * 1000, rtol=0, atol=1e-9)


def test_training_arithmetic_is_pinned():
    "The exact float32 operations the weights depend on (written out here on purpose): a change fails here first."
    kp, conf, pred = _kp(torch.float32), torch.rand(4, 6, 17), torch.randn(4, 6, 17, 3)
    w, h = (SIZES[:, i].float().reshape(4, 1, 1) for i in (0, 1))
    x = PoseCodec().encode(kp, SIZES, conf)
    assert torch.equal(x[..., 0], kp[..., 0] * (2 / w) - 1) and torch.equal(x[..., 1], kp[..., 1] * (2 / w) - h / w)
    assert torch.equal(PoseCodec().decode_3d(pred), pred * 1000)
    assert torch.equal(PoseCodec().px_per_unit(SIZES, pred[..., 0]), w / 2)
    assert detector_noise_std('h36m17')[0] == 6. / (1000. / 2)


@pytest.mark.parametrize('mode', ['screen', 'pixel'])
def test_motionbert_round_trip(mode):
    codec, size = MotionBERTCodec(mode), (1920, 1080)
    kp = np.random.default_rng(0).uniform(0, 1080, (27, 17, 2))
    x = codec.encode(kp, size)
    y = np.concatenate([x[..., :2], np.zeros_like(x[..., :1])], -1)    # a prediction whose x, y are the input's
    np.testing.assert_allclose(codec.decode(y, size)[..., :2], kp, rtol=0, atol=1e-3)   # float32 input: 1e-6 relative


def test_motionbert_crop_has_no_inverse_but_forgets_the_box():
    "`crop` has no inverse (the box is the track's): it maps a moved and scaled track to the same input."
    codec, kp = MotionBERTCodec('crop'), np.random.default_rng(1).uniform(100, 900, (27, 17, 2))
    np.testing.assert_allclose(codec.encode(kp * 2.5 + np.array([40., -70.]), None), codec.encode(kp, None), atol=1e-6)


@pytest.mark.parametrize('codec', [PoseCodec(0), PoseCodec(14), MotionBERTCodec('screen'), MotionBERTCodec('pixel'), MotionBERTCodec('crop')])
def test_description_is_the_computation(codec):
    d = json.loads(json.dumps(codec.describe()))
    assert codec_from_description(d) == codec and d['channels'] == ['x', 'y', 'confidence']
    kp = np.random.default_rng(2).uniform(0, 1000, (5, 17, 2)); size = (1000., 1002.)
    lo, hi = kp.reshape(-1, 2).min(0), kp.reshape(-1, 2).max(0)
    env = dict(x=kp[..., 0], y=kp[..., 1], w=size[0], h=size[1], xmin=lo[0], xmax=hi[0], ymin=lo[1], ymax=hi[1], s=max(hi - lo))
    xy = np.stack([Formula(d['formula'][c])(**env) for c in d['channels'][:2]], -1)
    np.testing.assert_allclose(np.asarray(codec.encode(kp, np.asarray(size), None))[..., :2], xy, rtol=0, atol=1e-6)


def test_formula_refuses_code():
    for bad in ('__import__("os").system("true")', 'x.real', 'x[0]', 'open("f")', 'x ** 2', 'lambda: 1', '"a"'):
        with pytest.raises(ValueError, match='is not allowed|not an expression'): Formula(bad)


def test_augmentations_re_encode_through_the_codec():
    b = NormalizePose('h36m17')(synth_pose_batch(B=4, T=5, seed=0))
    codec = PoseCodec()
    fb = flip_batch(b, 'h36m17')                                              # the codec is symmetric about the centre
    torch.testing.assert_close(codec.encode(fb['kp2d'], fb['size'], fb['conf']), fb['x'], rtol=0, atol=1e-5)
    rb = rotate_scale_batch(b, torch.full((4,), .5), torch.full((4,), 1.1))
    assert torch.equal(rb['x'], codec.encode(rb['kp2d'], rb['size'], b['x'][..., 2]))
    noise = torch.randn(4, 5, 17, 2)
    jb = jitter_batch(b, noise, 'px')
    w, _ = _wh(b['size'], noise)
    torch.testing.assert_close(jb['x2d'] - b['x2d'], noise / (w[..., None] / 2), rtol=0, atol=1e-6)
