"""Models in and out: MotionBERT checkpoints into `fit`, and `hpe-pretrain export` (ONNX, pt2) — checked against eager
PyTorch, loaded back through the one loader, and run from the sidecar alone by code that does not import the package."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hpe_pretrain.data.paths import list_configs
from hpe_pretrain.models.export import load_pt2, sha256_file
from hpe_pretrain.models.factory import create_model, finetune_model_config, model_config
from hpe_pretrain.testing import make_run, write_motionbert_checkpoint
from hpe_pretrain.cli import main
from hpe_pretrain.train.lifting import export_lifting_model, load_lifting_model


@pytest.mark.parametrize('model', ['dstformer-tiny', 'stmo-tiny'])
def test_export_both_formats_match_eager(tmp_path, model):
    ort = pytest.importorskip('onnxruntime')
    run, ms = make_run(tmp_path/model, model); m = ms['finetune']
    p = export_lifting_model(run.path, 'onnx', verbose=False)
    q = export_lifting_model(run.path, 'pt2', verbose=False)
    sess = ort.InferenceSession(str(p), providers=['CPUExecutionProvider'])
    prog, _ = load_pt2(q)
    for shape in [(1, 27), (6, 27), (2, 5)]:
        x = torch.randn(*shape, 17, 3)
        with torch.no_grad(): ref = m(x)
        assert abs(sess.run(None, {'x': x.numpy()})[0] - ref.numpy()).max() <= 1e-4
        assert (prog(x) - ref).abs().max().item() <= 1e-4
    for f in (p, q):
        side = json.loads(f.with_name(f.name + '.json').read_text())
        assert side['sha256'] == sha256_file(f) and side['model']['name'] == model and side['joints'] == 'h36m17'
        assert side['input']['encoding']['channels'] == ['x', 'y', 'confidence'] and side['output']['units'].startswith('metres')
        assert side['check']['max_abs_diff'] <= 1e-4 and side['model']['checkpoint_sha256'] == sha256_file(run.checkpoint('finetune', 'best'))


def test_export_cli_errors(tmp_path, capsys):
    (tmp_path/'run').mkdir()
    assert main(['export', '--checkpoint', str(tmp_path/'run')]) == 2
    assert 'no config.yaml: not a run folder' in capsys.readouterr().err
    run, _ = make_run(tmp_path/'tiny', 'dstformer-tiny')
    assert main(['export', '--checkpoint', str(run.path), '--format', 'onnx', '--out', str(tmp_path/'m.onnx'), '--clip-len', '9']) == 0
    side = json.loads((tmp_path/'m.onnx.json').read_text())
    assert side['input']['frames'] == {'min': 1, 'max': 27} and side['windows']['clip_len'] == 9


def test_motionbert_file_exports(tmp_path):
    "A MotionBERT checkpoint (not in a run) exports too: config from the shapes, its head, its conventions stated."
    write_motionbert_checkpoint(tmp_path/'best_epoch.bin')
    p = export_lifting_model(tmp_path/'best_epoch.bin', 'pt2', verbose=False)
    side = json.loads(p.with_name(p.name + '.json').read_text())
    assert p == tmp_path/'best_epoch.pt2' and side['model']['name'] == 'dstformer-tiny' and side['model']['kind'] == 'motionbert'
    assert 'normalised units' in side['output']['units'] and side['input']['encoding']['name'] == 'motionbert_crop'
    assert side['windows']['tail'] == 'short' and side['output']['root']['mode'] == 'zero'


@pytest.mark.parametrize('model', list_configs('model'))
def test_every_shipped_model_traces(model):
    "Every shipped model goes through torch.export with dynamic batch and frames (the step both formats start from)."
    from hpe_pretrain.models.export import _trace
    torch.manual_seed(0)
    m = create_model(finetune_model_config(model_config(model))).eval()
    x = torch.randn(2, 9, 17, 3)
    _, dyn, frames = _trace(m, x, model)
    assert set(dyn) == {0, 1}, frames


def test_fit_quick_from_motionbert_weights(tmp_path, capsys):
    "`fit --quick model=dstformer-tiny model.weights=<MotionBERT file of tiny size>` runs (finetuning only, to be quick)."
    write_motionbert_checkpoint(tmp_path/'latest_epoch.bin')
    rc = main(['fit', '--quick', 'model=dstformer-tiny', f'model.weights={tmp_path}/latest_epoch.bin', 'stages=[finetune,eval]',
               'finetune.epochs=1', 'data.synthetic.frames_per_seq=40', 'train.tensorboard=false', f'run.out_dir={tmp_path}'])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert 'latest_epoch.bin (motionbert)' in out and 'head kept as initialised' in out


# ---------------------------------------------------------------------------------------------------------------------
# A deployment engineer's runner: numpy + onnxruntime + the sidecar, nothing of hpe_pretrain.

def _encode(enc: dict, kp: np.ndarray, conf: np.ndarray, size) -> np.ndarray:
    "The model input, from the sidecar's encoding name and formulas (written here again on purpose)."
    w, h = size
    name = enc['name']
    if name in ('screen', 'motionbert_screen'): xy = np.stack([kp[..., 0] / w * 2 - 1, kp[..., 1] / w * 2 - h / w], -1)
    elif name == 'motionbert_pixel': xy = (kp - np.array([w, h]) / 2) / (min(w, h) / 2)
    elif name == 'motionbert_crop':
        pts = kp[conf != 0]
        lo, hi = pts.min(0), pts.max(0); s = max(hi - lo); corner = (lo + hi - s) / 2
        return np.clip(np.concatenate([((kp - corner) / s - 0.5) * 2, conf[..., None]], -1), -1, 1)
    else: raise ValueError(name)
    return np.concatenate([xy, conf[..., None]], -1)


def _decode(side: dict, y: np.ndarray, size) -> np.ndarray:
    w, h = size
    name, root = side['input']['encoding']['name'], side['output']['root']['joint']
    if name == 'screen': return y - y[:, root:root + 1]
    if name == 'motionbert_pixel': y = y * (min(w, h) / 2); y[..., :2] += np.array([w, h]) / 2
    return y


def run_from_sidecar(model_path: Path, kp: np.ndarray, conf: np.ndarray, size) -> np.ndarray:
    import onnxruntime as ort
    side = json.loads(Path(str(model_path) + '.json').read_text())
    sess = ort.InferenceSession(str(model_path), providers=['CPUExecutionProvider'])
    x = _encode(side['input']['encoding'], kp.astype(np.float64), conf.astype(np.float64), size).astype(np.float32)
    T, S, tail = side['windows']['clip_len'], side['windows']['stride'], side['windows']['tail']
    perm, ch, root, mode = side['flip']['perm'], side['flip']['negate_channel'], side['output']['root']['joint'], side['output']['root']['mode']
    def flip(a): a = a[..., perm, :].copy(); a[..., ch] *= -1; return a
    def f(a):
        y = sess.run(None, {'x': a[None]})[0][0]
        if side['flip']['test_time']: y = (y + flip(sess.run(None, {'x': flip(a)[None]})[0][0])) / 2
        if mode == 'relative': y = y - y[:, root:root + 1]
        elif mode == 'zero': y[:, root] = 0
        elif mode == 'first_frame_z': y[0, root, 2] = 0
        return y
    N = len(x); acc = np.zeros((N, x.shape[1], 3)); cnt = np.zeros(N)
    starts = list(range(0, max(N - T, 0) + 1, S))
    for s in starts:
        n = min(T, N - s); idx = np.minimum(np.arange(s, s + T), N - 1)
        acc[s:s + n] += f(x[idx])[:n]; cnt[s:s + n] += 1
    if starts[-1] + T < N:
        s = starts[-1] + S
        if tail == 'short': acc[s:] += f(x[s:]); cnt[s:] += 1
        else: idx = np.minimum(np.arange(s, s + T), N - 1); acc[s:] += f(x[idx])[:N - s]; cnt[s:] += 1
    return _decode(side, acc / cnt[:, None, None], size)


@pytest.mark.parametrize('src', ['run', 'motionbert_crop', 'motionbert_pixel'])
def test_export_runs_from_its_sidecar_alone(tmp_path, src):
    "An exported model run by the code above, which knows only the sidecar, gives what the package gives within 1e-4."
    pytest.importorskip('onnxruntime')
    if src == 'run': path = make_run(tmp_path/'run', 'dstformer-tiny')[0].path; enc = None
    else: path = write_motionbert_checkpoint(tmp_path/'mb.bin', maxlen=27, seed=3); enc = src.split('_')[1]
    p = export_lifting_model(path, 'onnx', out=tmp_path/'m.onnx', verbose=False, encoding=enc)
    rng = np.random.default_rng(0)
    kp = (rng.uniform(300, 700, (17, 2)) + np.cumsum(rng.normal(0, 3, (70, 1, 2)), 0)).astype(np.float32)   # 70 frames: 2 whole windows + a tail
    conf = rng.uniform(0.2, 1, (70, 17)).astype(np.float32)
    size = (1280, 720)
    ours = load_lifting_model(p)(kp, conf, size)
    ref = load_lifting_model(path, encoding=enc)(kp, conf, size)
    theirs = run_from_sidecar(p, kp, conf, size)
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() <= 1e-4 * scale and np.abs(theirs - ours).max() <= 1e-4 * scale
