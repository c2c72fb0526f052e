"""Issue 28: exports, sidecars, keypoint files and run folders are untrusted input.

Every hostile file here is built the way an attacker or a broken tool would build it; the public API and the
command line (`hpe_pretrain.cli.main`) must then refuse it with ONE line naming the file and the field
(exit code 2, no traceback), write nothing, and run nothing (payloads would `touch` a marker file).
Models are a tiny untrained stmo-tiny run (`make_run`); nothing is trained."""
import errno, json, os, pickle, shutil, subprocess, sys, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hpe_pretrain.data.files import file_lock
from hpe_pretrain.data.keypoint_tracks import KeypointTrack
from hpe_pretrain.data.other_keypoint_files import write_npz
from hpe_pretrain.models.export import check_pt2, load_pt2, rewrite_pt2, sha256_file
from hpe_pretrain.testing import make_run, toy_cache
from hpe_pretrain.cli import main
from hpe_pretrain.train.lifting import export_lifting_model, load_lifting_model
from hpe_pretrain.train.runs import init_from
from hpe_pretrain.infer import infer_keypoints

HPE = [sys.executable, '-m', 'hpe_pretrain.cli']   # `hpe-pretrain`
SIZE = ('--image-size', '1000', '1000')


# --- hostile payloads -----------------------------------------------------------------------------------------------

class _Evil:
    "Unpickling this runs `touch MARKER` (and yields `value`, so a trusting loader goes on as if nothing happened)."
    def __init__(self, marker, value: str = 'None'): self.marker, self.value = str(marker), value
    def __reduce__(self): return (eval, (f"__import__('os').system('touch {self.marker}') or {self.value}",))


def _torch_bytes(obj) -> bytes:
    "What `torch.save` writes for `obj` (the format torch.export uses for its pickled weights)."
    import io
    buf = io.BytesIO(); torch.save(obj, buf); return buf.getvalue()


# --- files a detector, a user or an attacker could hand us ---------------------------------------------------------

def _walk(T: int, J: int = 17, seed: int = 0) -> np.ndarray:
    "(T, J, 2) px: one person walking slowly across a 1000x1000 image (every joint well inside it)."
    shape = np.random.default_rng(seed).uniform(-200, 200, (J, 2))
    return shape + [450., 500.] + np.arange(T)[:, None, None] * np.array([2., .5])


def _coco(kp: np.ndarray, conf=None, track_id=1, frames=None) -> list:
    "COCO keypoint results of one person (`track_id` None: no ids), as a detector writes them."
    T, J, _ = kp.shape
    conf = np.full((T, J), .9) if conf is None else conf
    frames = range(T) if frames is None else frames
    return [{'image_id': int(f), 'category_id': 1, 'score': .9,
             'keypoints': np.concatenate([kp[t], conf[t][:, None]], 1).ravel().tolist(),
             **({} if track_id is None else {'track_id': track_id})} for t, f in enumerate(frames)]


def _write(path: Path, obj) -> Path:
    "JSON as Python writes it (NaN and Infinity spelled as such, like many tools do)."
    path.write_text(json.dumps(obj), encoding='utf-8'); return path


def _deep_json(n: int = 200_000) -> str: return '[' * n + ']' * n


def snapshot(*dirs) -> dict:
    "Every path under `dirs` with its size and modification time: equal snapshots = nothing written."
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for d in dirs for p in sorted(Path(d).rglob('*'))}


# --- the command line -----------------------------------------------------------------------------------------------

def cli(capsys, *args) -> tuple[int, str, str]:
    "(exit code, stdout, stderr) of `hpe-pretrain ARGS` run in this process."
    capsys.readouterr()
    try: rc = main([str(a) for a in args])
    except SystemExit as e: rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, *args, contains=()) -> str:
    "Run the command; assert exit 2 and exactly one stderr line `hpe-pretrain CMD: error: ...` holding `contains`."
    rc, out, err = cli(capsys, *args)
    lines = err.splitlines()
    assert rc == 2, f"exit {rc}; stdout {out[-1500:]!r}; stderr {err[-3000:]!r}"
    assert 'Traceback' not in err, err[-3000:]
    assert len(lines) == 1, lines[:20]
    assert lines[0].startswith(f'hpe-pretrain {args[0]}: error: '), lines[0]
    for c in ([contains] if isinstance(contains, str) else contains): assert str(c) in lines[0], lines[0]
    return lines[0]


def refused_api(f, *contains) -> str:
    "Call `f`; assert one ValueError / OSError whose one-line message holds `contains`."
    with pytest.raises((ValueError, OSError)) as ei: f()
    msg = str(ei.value)
    assert '\n' not in msg, msg
    for c in contains: assert str(c) in msg, msg
    return msg


# --- shared fixtures (module scope: one run, one .pt2 export, one keypoint file, one cache) ---------------------------

@pytest.fixture(scope='module')
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp('untrusted')
    run, models = make_run(d/'run', 'stmo-tiny')
    pt2 = export_lifting_model(run.path, 'pt2', verbose=False)
    kp = _write(d/'video.json', _coco(_walk(60)))
    cache = toy_cache(d/'cache.h5', n_seq=2, n_frames=30)
    return SimpleNamespace(root=d, run=run.path, model=models['finetune'], pt2=pt2, kp=kp, cache=cache)


@pytest.fixture(scope='module')
def onnx_export(env, tmp_path_factory):
    "One ONNX export of the run (`onnxruntime` is a dev dependency)."
    d = tmp_path_factory.mktemp('onnx')
    return export_lifting_model(env.run, 'onnx', out=d/'model.onnx', verbose=False)


def copy_export(src: Path, dst: Path) -> Path:
    "An export and its sidecar copied to `dst` (+ `.json`)."
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst); shutil.copy(f'{src}.json', f'{dst}.json')
    return dst


def edit_sidecar(p: Path, fn) -> Path:
    "Apply `fn(dict) -> dict | None` to the sidecar of `p`."
    sp = Path(f'{p}.json'); d = json.loads(sp.read_text())
    r = fn(d); sp.write_text(json.dumps(d if r is None else r)); return p


def reseal(p: Path) -> Path:
    "Make the sidecar's SHA-256 match the (tampered) file, as an attacker shipping both would."
    return edit_sidecar(p, lambda d: d.update(sha256=sha256_file(p)))


def hostile_pt2(env, dst: Path, edit) -> Path:
    "A copy of the run's `.pt2` rewritten member by member through `edit`, with a matching sidecar."
    rewrite_pt2(env.pt2, dst, edit)
    shutil.copy(f'{env.pt2}.json', f'{dst}.json')
    return reseal(dst)


def copy_run(env, dst: Path) -> Path:
    "A copy of the run folder (without its exports)."
    shutil.copytree(env.run, dst, ignore=shutil.ignore_patterns('export'))
    return dst


# =====================================================================================================================
# 1. No code execution from a .pt2 without --trust-pickle
# =====================================================================================================================

def _pickled_weight(marker: Path, value: str = 'None'):
    "Edit: `weight_0` stored as a pickle (use_pickle true) whose unpickling runs the payload."
    def edit(rel, data):
        if rel == 'data/weights/model_weights_config.json':
            cfg = json.loads(data)
            for e in cfg['config'].values():
                if e['path_name'] == 'weight_0': e['use_pickle'] = True
            return json.dumps(cfg).encode()
        if rel == 'data/weights/weight_0':
            return _torch_bytes(_Evil(marker, value)) if value != 'None' else pickle.dumps(_Evil(marker))
    return edit


def _weight0_zeros(env) -> str:
    "Python text of a tensor shaped like the program's `weight_0` (so the trusted load succeeds)."
    import zipfile
    with zipfile.ZipFile(env.pt2) as z:
        n = next(n for n in z.namelist() if n.endswith('data/weights/model_weights_config.json'))
        e = next(e for e in json.loads(z.read(n))['config'].values() if e['path_name'] == 'weight_0')
    sizes = [s['as_int'] for s in e['tensor_meta']['sizes']]
    return f"__import__('torch').nn.Parameter(__import__('torch').zeros({sizes}))"


def _guards_code(marker):
    def edit(rel, data):
        if rel == 'models/model.json':
            d = json.loads(data); d['guards_code'] = [f"__import__('os').system('touch {marker}')"]; return json.dumps(d).encode()
    return edit


def _expr_str(marker):
    def edit(rel, data):
        if rel == 'models/model.json':
            d = json.loads(data); stack = [d]
            while stack:                                     # the first shape expression gets the payload
                v = stack.pop()
                if isinstance(v, dict):
                    if isinstance(v.get('expr_str'), str):
                        v['expr_str'] = f"__import__('os').system('touch {marker}') or {v['expr_str']}"; break
                    stack.extend(v.values())
                elif isinstance(v, list): stack.extend(v)
            return json.dumps(d).encode()
    return edit


def _sample_inputs(marker):
    def edit(rel, data):
        if rel.startswith('data/sample_inputs/'): return _torch_bytes(_Evil(marker))
    return edit


PT2_PAYLOADS = {'pickled_weight': _pickled_weight, 'guards_code': _guards_code, 'expr_str': _expr_str, 'sample_inputs': _sample_inputs}


@pytest.mark.parametrize('kind', list(PT2_PAYLOADS))
def test_pt2_payload_refused(env, tmp_path, capsys, kind):
    marker = tmp_path/'PWNED'
    p = hostile_pt2(env, tmp_path/'x.pt2', PT2_PAYLOADS[kind](marker))
    assert check_pt2(p), 'the hostile file must be reported by check_pt2'
    before = snapshot(tmp_path, env.root)
    refused_api(lambda: load_lifting_model(p), f'{p}: refusing to load', '--trust-pickle')
    refused_api(lambda: load_pt2(p), f'{p}: refusing to load')
    refused(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE,
            contains=f'{p}: refusing to load')
    refused(capsys, 'eval', '--checkpoint', p, '--data', env.cache, contains=f'{p}: refusing to load')
    assert not marker.exists(), f'{kind}: the payload ran'
    assert snapshot(tmp_path, env.root) == before


def test_pt2_pickled_weight_runs_only_with_trust_flag(env, tmp_path, capsys):
    "The same file with --trust-pickle: the payload runs (proving the file is hostile) and the program loads."
    marker = tmp_path/'PWNED'
    p = hostile_pt2(env, tmp_path/'x.pt2', _pickled_weight(marker, _weight0_zeros(env)))
    refused(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, contains='refusing to load')
    assert not marker.exists()
    rc, out, err = cli(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, '--trust-pickle')
    assert marker.exists(), (rc, err[-2000:])
    assert rc == 0, err[-2000:]


# =====================================================================================================================
# 2. No silent wrong output
# =====================================================================================================================

def test_checkpoint_of_another_size_refused(env, tmp_path, capsys):
    run = copy_run(env, tmp_path/'run')
    small, _ = make_run(tmp_path/'small', 'stmo-small')
    ck = run/'models'/'finetune_best.pth'
    shutil.copy(small.checkpoint('finetune', 'best'), ck)
    before = snapshot(tmp_path)
    frag = f'{ck}: does not fit'
    refused_api(lambda: load_lifting_model(run), frag)
    refused(capsys, 'eval', '--checkpoint', run, '--data', env.cache, contains=frag)
    refused(capsys, 'infer', '--checkpoint', run, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, contains=frag)
    refused(capsys, 'export', '--checkpoint', run, '--format', 'pt2', contains=frag)
    refused(capsys, 'eval', '--checkpoint', ck, '--data', env.cache, contains=frag)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('other', ['stmo-small', 'dstformer-tiny'])
def test_init_from_another_size_or_architecture_refused(env, tmp_path, other):
    src, _ = make_run(tmp_path/'src', other)
    w0 = {k: v.clone() for k, v in env.model.state_dict().items()}
    refused_api(lambda: init_from(env.model, src.path, 'h36m17', verbose=False), 'does not fit', 'finetune_best.pth')
    assert all(torch.equal(v, w0[k]) for k, v in env.model.state_dict().items()), 'a refused init_from changed the model'


def test_sidecar_joints_edited_refused(env, tmp_path, capsys):
    "Only `joints` edited: the joint names no longer match; edited consistently: the model file records otherwise."
    from hpe_pretrain.train.sidecar import Conventions
    from hpe_pretrain.transforms.normalize import PoseCodec
    p = copy_export(env.pt2, tmp_path/'a'/'m.pt2')
    edit_sidecar(p, lambda d: d.update(joints='coco17'))
    refused_api(lambda: load_lifting_model(p), f'sidecar {p}.json', "'joint_names'", 'coco17')
    refused(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE,
            contains=(f'sidecar {p}.json', 'joint_names'))
    q = copy_export(env.pt2, tmp_path/'b'/'m.pt2')
    coco = Conventions('coco17', 27, PoseCodec.for_skeleton('coco17'), fps=50.).to_dict()
    def consistent(d):
        frames = d['input']['frames']
        d.update({k: coco[k] for k in ('joints', 'joint_names', 'input', 'windows', 'flip', 'output')})
        d['input']['frames'] = frames
    edit_sidecar(q, consistent)
    frag = (f'sidecar {q}.json', "'joints' differs from what m.pt2 itself records")
    refused_api(lambda: load_lifting_model(q), *frag)
    refused(capsys, 'infer', '--checkpoint', q, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, contains=frag)
    refused(capsys, 'eval', '--checkpoint', q, '--data', env.cache, contains=frag)
    assert not (tmp_path/'out').exists()


def test_onnx_swapped_for_another_model_refused(env, onnx_export, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper
    p = copy_export(onnx_export, tmp_path/'m.onnx')
    assert load_lifting_model(p).kind == 'onnx'                     # the genuine pair loads
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['B', 'T', 17, 3])
    y = helper.make_tensor_value_info('pose3d', TensorProto.FLOAT, ['B', 'T', 17, 3])
    other = helper.make_model(helper.make_graph([helper.make_node('Identity', ['x'], ['pose3d'])], 'other', [x], [y]),
                              opset_imports=[helper.make_opsetid('', 18)])
    onnx.save(other, str(p))                                        # another model under the same name
    before = snapshot(tmp_path)
    frag = f"{p}: its SHA-256 is not the sidecar's"
    refused_api(lambda: load_lifting_model(p), frag)
    refused(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, contains=frag)
    refused(capsys, 'eval', '--checkpoint', p, '--data', env.cache, contains=frag)
    assert snapshot(tmp_path) == before


def _finite_outputs(out: Path, T: int):
    "The npz loads without pickles and holds only finite numbers; the JSON holds no NaN/Infinity."
    with np.load(out/'poses_3d.npz', allow_pickle=False) as z:
        assert z['poses_3d'].shape == (T, 17, 3)
        for k in z.files:
            if z[k].dtype.kind == 'f': assert np.isfinite(z[k]).all(), k
    text = (out/'poses_3d.json').read_text()
    def bad(c): raise AssertionError(f'poses_3d.json holds {c}')
    doc = json.loads(text, parse_constant=bad)
    assert np.isfinite(np.array(doc['poses_3d'])).all() and len(doc['poses_3d']) == T


def test_one_nan_coordinate_with_track_ids(env, tmp_path, capsys):
    kp = _walk(60); kp[30, 5, 0] = np.nan
    f = _write(tmp_path/'nan.json', _coco(kp, track_id=7))
    assert 'NaN' in f.read_text()
    rc, out, err = cli(capsys, 'infer', '--checkpoint', env.run, '--keypoints', f, '--out', tmp_path/'out', *SIZE, '--fps', '50')
    assert rc == 0, err
    _finite_outputs(tmp_path/'out', 60)
    lm = load_lifting_model(env.run, device='cpu')
    r = infer_keypoints(lm, f, image_size=(1000, 1000))
    assert np.isfinite(r['poses_3d']).all() and r['confidence'][30].min() == 0   # the NaN joint is "not detected"


def test_nan_in_every_frame_refused(env, tmp_path, capsys):
    f = _write(tmp_path/'nan.json', _coco(np.full((40, 17, 2), np.nan)))
    before = snapshot(tmp_path)
    refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', f, '--out', tmp_path/'out', *SIZE,
            contains=(f'{f}: keypoints:', 'no joint detected'))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('args,frag', [
    (('--fps', '1e308'), 'argument --fps'), (('--fps', 'inf'), 'argument --fps'), (('--fps', '0'), 'argument --fps'),
    (('--fps', 'nan'), 'argument --fps'),
    (('--max-gap', '-5'), 'argument --max-gap'), (('--max-gap', '1e12'), 'argument --max-gap'),
    (('--image-size', '1e20', '1080'), 'argument --image-size'), (('--image-size', '0', '480'), 'argument --image-size'),
    (('--track', '1e300'), 'argument --track'), (('--min-score', '2'), 'argument --min-score')])
def test_infer_options_out_of_range(env, tmp_path, capsys, args, frag):
    args = list(args) + ([] if '--image-size' in args else list(SIZE))
    refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', env.kp, '--out', tmp_path/'out', *args, contains=frag)
    assert not any(tmp_path.iterdir())


def test_export_clip_len_zero(env, tmp_path, capsys):
    refused(capsys, 'export', '--checkpoint', env.run, '--format', 'pt2', '--clip-len', '0', '--out', tmp_path/'m.pt2',
            contains='argument --clip-len')
    refused_api(lambda: export_lifting_model(env.run, 'pt2', out=tmp_path/'m.pt2', clip_len=0, verbose=False), 'clip_len 0')
    refused_api(lambda: export_lifting_model(env.run, 'pt2', out=tmp_path/'m.pt2', clip_len=28, verbose=False), 'clip_len 28')
    assert not any(tmp_path.iterdir())


def test_api_ranges(env, tmp_path):
    "The same ranges in Python: fps, max_gap, image size, confidences."
    lm = load_lifting_model(env.run, device='cpu')
    kp = _walk(30).astype(np.float32)[:, :17]
    for fps in (1e308, float('inf'), 0, float('nan'), -50):
        refused_api(lambda: lm(kp, None, (1000, 1000), fps=fps), 'fps')
    refused_api(lambda: lm(kp, np.full((30, 17), 1e6, np.float32), (1000, 1000)), 'confidence')
    for size in ((1e20, 1080), (0, 480), (float('inf'), 480)):
        refused_api(lambda: lm(kp, None, size), 'image_size')
        refused_api(lambda: infer_keypoints(lm, env.kp, image_size=size), 'image_size')
    refused_api(lambda: infer_keypoints(lm, env.kp, image_size=(1000, 1000), max_gap=-5), 'max_gap')
    gap = _write(tmp_path/'gap.json', _coco(_walk(60)[np.r_[0:25, 35:60]], frames=np.r_[0:25, 35:60]))
    t = time.perf_counter()
    r = infer_keypoints(lm, gap, image_size=(1000, 1000), max_gap=10**12)      # bounded by the track: no MemoryError
    assert time.perf_counter() - t < 20 and len(r['poses_3d']) == 60 and r['pieces'] == 1


def test_sidecar_fps_out_of_range(env, tmp_path, capsys):
    p = copy_export(env.pt2, tmp_path/'m.pt2')
    edit_sidecar(p, lambda d: d['input'].update(fps=1e-9))
    frag = (f'sidecar {p}.json', 'input.fps is 1e-09')
    refused_api(lambda: load_lifting_model(p), *frag)
    refused(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, contains=frag)
    assert not (tmp_path/'out').exists()


@pytest.mark.parametrize('case', ['confidence_1e6', 'track_id_1e300'])
def test_keypoint_numbers_out_of_range(env, tmp_path, capsys, case):
    dets = _coco(_walk(30))
    if case == 'confidence_1e6': dets[3]['keypoints'][2] = 1e6; frag = 'score 1e+06'
    else:
        for d in dets: d['track_id'] = 1e300
        frag = '[0].track_id'
    f = _write(tmp_path/'k.json', dets)
    before = snapshot(tmp_path)
    refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', f, '--out', tmp_path/'out', *SIZE, contains=(f'{f}:', frag))
    assert snapshot(tmp_path) == before


def test_outputs_never_need_pickle(env, tmp_path, capsys):
    "Our own poses_3d.npz loads with allow_pickle=False, also with the largest track id that fits int64."
    f = _write(tmp_path/'k.json', _coco(_walk(30), track_id=2**63 - 1))
    rc, out, err = cli(capsys, 'infer', '--checkpoint', env.run, '--keypoints', f, '--out', tmp_path/'out', *SIZE)
    assert rc == 0, err
    with np.load(tmp_path/'out'/'poses_3d.npz', allow_pickle=False) as z:
        assert int(z['track_id']) == 2**63 - 1 and all(z[k].dtype != object for k in z.files)


# =====================================================================================================================
# 3. Outputs as a set
# =====================================================================================================================

def _temps(parent: Path, name: str) -> list:
    return sorted(q.name for q in parent.glob(f'.{name}.*') if not q.name.endswith('.lock'))


def test_full_disk_mid_write_keeps_previous_output(env, tmp_path, capsys, monkeypatch):
    out = tmp_path/'out'
    rc, _, err = cli(capsys, 'infer', '--checkpoint', env.run, '--keypoints', env.kp, '--out', out, *SIZE)
    assert rc == 0, err
    prev = {q.name: q.read_bytes() for q in out.iterdir()}
    assert {'poses_3d.npz', 'poses_3d.json', 'animation.html'} <= set(prev)
    import hpe_pretrain.infer as infer_mod
    def full(*a, **k): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))   # after the npz and JSON were written
    monkeypatch.setattr(infer_mod, '_animation', full)
    refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', env.kp, '--out', out, *SIZE, '--fps', '25',
            contains='no space left on device')
    assert {q.name: q.read_bytes() for q in out.iterdir()} == prev
    assert _temps(tmp_path, 'out') == []


def test_output_folder_with_user_files_refused(env, tmp_path, capsys):
    out = tmp_path/'out'; out.mkdir(); (out/'notes.txt').write_text('mine')
    before = snapshot(tmp_path)
    refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', env.kp, '--out', out, *SIZE,
            contains=(f'{out}: exists and holds files this command did not write', 'notes.txt'))
    assert (out/'notes.txt').read_text() == 'mine' and snapshot(out) == {k: v for k, v in before.items() if k.startswith(f'{out}/')}
    assert _temps(tmp_path, 'out') == [] and sorted(q.name for q in tmp_path.iterdir()) in (['out'], ['.out.lock', 'out'])


def test_second_writer_refused(env, tmp_path, capsys):
    out = tmp_path/'out'
    with file_lock(tmp_path/'.out.lock'):                      # another infer holds the folder
        refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', env.kp, '--out', out, *SIZE,
                contains=(f'output folder {out} is in use by process {os.getpid()}',))
    assert not out.exists() and _temps(tmp_path, 'out') == []


def test_export_failing_midway_leaves_nothing(env, tmp_path, capsys, monkeypatch):
    import hpe_pretrain.train.lifting as lifting
    def full(*a, **k): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(lifting, 'make_sidecar', full)
    d = tmp_path/'exp'
    refused(capsys, 'export', '--checkpoint', env.run, '--format', 'pt2', '--out', d/'m.pt2', contains='no space left on device')
    assert not (d/'m.pt2').exists() and not (d/'m.pt2.json').exists()
    assert not d.exists() or not any(d.iterdir()), sorted(q.name for q in d.iterdir())


# =====================================================================================================================
# 4. Denial of service
# =====================================================================================================================

def test_many_people_without_track_ids_in_bounded_time(env, tmp_path, capsys):
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(25), np.arange(20)), -1).reshape(-1, 2) * [150., 190.] + [150., 150.]
    shape = rng.uniform(-40, 40, (500, 17, 2))
    dets = [d for t in range(3) for d in _coco(grid[:, None] + shape + [2. * t, 1. * t], track_id=None, frames=[t] * 500)]
    assert len(dets) == 1500 and 'track_id' not in dets[0]
    f = _write(tmp_path/'crowd.json', dets)
    t = time.perf_counter()
    rc, out, err = cli(capsys, 'infer', '--checkpoint', env.run, '--keypoints', f, '--out', tmp_path/'out',
                       '--image-size', '4000', '4000')
    dt = time.perf_counter() - t
    assert rc == 0, err[-2000:]
    assert dt < 20, f'{dt:.1f} s for 500 people x 3 frames'
    assert 'of 500 tracks' in out, out


# =====================================================================================================================
# 5. One line for every failure
# =====================================================================================================================

def _keypoint_case(tmp_path: Path, case: str) -> tuple[Path, list, str]:
    "(file, extra infer options, message fragment) of a broken keypoint file."
    if case == 'truncated_npz':
        p = write_npz(KeypointTrack(0, np.arange(40), _walk(40), np.ones((40, 17)), 'coco17'), tmp_path/'k.npz')
        data = p.read_bytes(); p.write_bytes(data[:len(data) // 2])
        return p, ['--joints', 'coco17'], f'{p}: file: not a readable numpy file'
    if case == 'deep_json':
        p = tmp_path/'k.json'; p.write_text(_deep_json()); return p, [], f'{p}: file: JSON nested too deeply'
    if case == 'mmpose_instances_5':
        return _write(tmp_path/'k.json', [{'frame_id': 0, 'instances': 5}]), [], '[0].instances: expected a list'
    if case == 'coco_annotations_null':
        return (_write(tmp_path/'k.json', {'images': [{'id': 0, 'width': 1000, 'height': 1000}], 'annotations': [None]}), [],
                'annotations[0]: expected a JSON object, got null')
    if case in ('image_id_1e19', 'image_id_inf'):
        dets = _coco(_walk(5)); dets[0]['image_id'] = 1e19 if case == 'image_id_1e19' else float('inf')
        return _write(tmp_path/'k.json', dets), [], '[0].image_id: expected an integer'
    if case == 'alphapose_huge_frame':
        dets = _coco(_walk(5), track_id=None)
        for k, d in enumerate(dets): d['image_id'] = f'frame_{k}.jpg'; d['idx'] = 1
        dets[0]['image_id'] = 'frame_' + '9' * 40 + '.jpg'
        return _write(tmp_path/'k.json', dets), [], '[0].image_id: frame number'
    raise KeyError(case)


KEYPOINT_CASES = ['truncated_npz', 'deep_json', 'mmpose_instances_5', 'coco_annotations_null', 'image_id_1e19', 'image_id_inf',
                  'alphapose_huge_frame']


@pytest.mark.parametrize('case', KEYPOINT_CASES)
def test_broken_keypoint_files_one_line(env, tmp_path, capsys, case):
    p, extra, frag = _keypoint_case(tmp_path, case)
    before = snapshot(tmp_path)
    refused(capsys, 'infer', '--checkpoint', env.run, '--keypoints', p, '--out', tmp_path/'out', *SIZE, *extra,
            contains=(str(p), frag))
    assert snapshot(tmp_path) == before


def _export_case(env, tmp_path: Path, case: str) -> tuple[Path, str]:
    "(exported file, message fragment) of a broken export or sidecar."
    if case == 'truncated_pt2':
        p = copy_export(env.pt2, tmp_path/'m.pt2'); data = p.read_bytes(); p.write_bytes(data[:len(data) // 2])
        return reseal(p), f'{p}: not a .pt2 archive'
    if case == 'random_onnx':       # random bytes with a sidecar that vouches for them
        p = tmp_path/'m.onnx'; p.write_bytes(np.random.default_rng(0).bytes(4096))
        shutil.copy(f'{env.pt2}.json', f'{p}.json'); edit_sidecar(p, lambda d: d.update(format='onnx', file='m.onnx'))
        return reseal(p), f'{p}: not an ONNX model'
    p = copy_export(env.pt2, tmp_path/'m.pt2'); sp = Path(f'{p}.json')
    if case == 'deep_sidecar': sp.write_text(_deep_json()); return p, f'sidecar {sp}: JSON nested too deeply'
    if case.startswith('sidecar_no_'):
        key = case[len('sidecar_no_'):]
        def drop(d): del d[key]
        edit_sidecar(p, drop)
        return p, f"sidecar {sp}: key '{key}' missing"
    body = {'sidecar_list': [1, 2], 'sidecar_string': 'hello', 'sidecar_null': None}[case]
    sp.write_text(json.dumps(body))
    return p, f"sidecar {sp}: expected a JSON object, got {type(body).__name__}"


EXPORT_CASES = ['truncated_pt2', 'random_onnx', 'deep_sidecar', 'sidecar_list', 'sidecar_string', 'sidecar_null',
                'sidecar_no_model', 'sidecar_no_joints']


@pytest.mark.parametrize('case', EXPORT_CASES)
def test_broken_exports_one_line(env, tmp_path, capsys, case):
    p, frag = _export_case(env, tmp_path, case)
    before = snapshot(tmp_path, env.root)
    refused_api(lambda: load_lifting_model(p), frag)
    refused(capsys, 'infer', '--checkpoint', p, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE, contains=frag)
    refused(capsys, 'eval', '--checkpoint', p, '--data', env.cache, contains=frag)
    assert snapshot(tmp_path, env.root) == before


def _cmds(env, run: Path, tmp_path: Path) -> dict:
    return {'eval': ('eval', '--checkpoint', run, '--data', env.cache),
            'infer': ('infer', '--checkpoint', run, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE),
            'export': ('export', '--checkpoint', run, '--format', 'pt2')}


@pytest.mark.parametrize('case', ['list', 'python_tag'])
def test_hostile_run_config_one_line(env, tmp_path, capsys, case):
    marker = tmp_path/'PWNED'
    run = copy_run(env, tmp_path/'run')
    text = '- a\n- b\n' if case == 'list' else f'!!python/object/apply:os.system ["touch {marker}"]\n'
    if case == 'python_tag':    # a tag inside an otherwise valid config, too
        cfg = (run/'config.yaml').read_text()
        (run/'config.yaml').write_text(cfg.replace('run:\n', f'run:\n  evil: !!python/object/apply:os.system ["touch {marker}"]\n', 1))
        assert 'evil' in (run/'config.yaml').read_text()
        before = snapshot(tmp_path)
        for cmd, args in _cmds(env, run, tmp_path).items():
            refused(capsys, *args, contains=f'{run}/config.yaml')
        assert not marker.exists() and snapshot(tmp_path) == before
    (run/'config.yaml').write_text(text)
    before = snapshot(tmp_path)
    for cmd, args in _cmds(env, run, tmp_path).items():
        refused(capsys, *args, contains=f'{run}/config.yaml')
    refused_api(lambda: load_lifting_model(run), f'{run}/config.yaml')
    assert not marker.exists() and snapshot(tmp_path) == before


@pytest.mark.parametrize('device', ['tpu', 'cuda', 'cuda:banana'])
def test_unavailable_device_one_line(env, tmp_path, capsys, device):
    if device == 'cuda' and torch.cuda.is_available(): device = f'cuda:{torch.cuda.device_count()}'   # one this machine lacks
    before = snapshot(tmp_path)
    for args in (_cmds(env, env.run, tmp_path)['infer'], _cmds(env, env.run, tmp_path)['eval'],
                 ('infer', '--checkpoint', env.pt2, '--keypoints', env.kp, '--out', tmp_path/'out', *SIZE)):
        refused(capsys, *args, '--device', device, contains=('--device=', device))
    assert snapshot(tmp_path) == before


def test_debug_shows_the_traceback(env, tmp_path, capsys):
    f = _write(tmp_path/'k.json', [{'frame_id': 0, 'instances': 5}])
    args = ['infer', '--checkpoint', str(env.run), '--keypoints', str(f), '--out', str(tmp_path/'out'), *SIZE]
    with pytest.raises(ValueError, match='instances'): main(args + ['--debug'])
    r = subprocess.run([*HPE, *args, '--debug'], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'Traceback (most recent call last)' in r.stderr and 'instances' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'out').exists()
