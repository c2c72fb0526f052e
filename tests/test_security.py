"""Loading a checkpoint never runs code from it, unreadable checkpoints give one line naming the file, and checkpoint
writes are atomic (stale temp files cleaned up, a full disk reported in one line, the previous checkpoint kept).

Every load site is tried with a `.pth` whose pickle would create a marker file: `load_checkpoint` / `resume_epoch`
(the `fit --resume` path), `load_encoder` (also behind `hpe-pretrain eval`), and the two commands themselves.
CPU only; the command-line tests run `hpe-pretrain` in a subprocess on a tiny config (a few seconds each)."""
import errno, io, os, re, subprocess, sys
from pathlib import Path
import pytest
import torch
from hpe_pretrain.models.factory import create_model, load_encoder, read_checkpoint
from hpe_pretrain.train.callbacks import CheckpointCallback, atomic_torch_save, load_checkpoint, resume_epoch
from hpe_pretrain.data.files import DiskFullError, remove_stale_tmp
from hpe_pretrain.testing import synth_learner

PKG = Path(__file__).resolve().parents[1]/'hpe_pretrain'
HPE = [sys.executable, '-m', 'hpe_pretrain.cli']   # `hpe-pretrain`
TINY = ['model=stmo-tiny', 'data.clip_len=9', 'data.stride=9', 'data.synthetic.frames_per_seq=40',
        'train.tensorboard=false', 'run.num_threads=1']

class _Evil:
    "Unpickling this calls `os.system('touch MARKER')`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))

def evil_checkpoint(path:Path, marker:Path) -> Path:
    "A `torch.save` file shaped like a hpe_pretrain checkpoint whose `model` entry would run a command."
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'model': _Evil(marker), 'epoch': 0, 'best': 1.0}, path)
    return path

def _fit(learn, n=1):
    with learn.no_logging(), learn.no_bar(): learn.fit(n, 1e-2)

@pytest.fixture
def good(tmp_path):
    "A real `model_last.pth` / `model_best.pth` pair written by `CheckpointCallback` on the tiny learner."
    ck = CheckpointCallback(tmp_path/'models'); _fit(synth_learner(cbs=ck))
    return ck

def _one_line_error(f, path:Path, contains:str='not a readable checkpoint ('):
    with pytest.raises(ValueError) as ei: f()
    msg = str(ei.value)
    assert msg.startswith(f'{path}: {contains}'), msg
    assert '\n' not in msg, msg
    return msg

# --- loading never runs code ----------------------------------------------------------------------------------------

def test_load_sites_refuse_code(tmp_path, good):
    marker = tmp_path/'PWNED'
    bad = evil_checkpoint(tmp_path/'models'/'evil_last.pth', marker)
    learn = synth_learner()
    msg = _one_line_error(lambda: load_checkpoint(learn, bad), bad)
    assert 'Python objects' in msg and 'posix.system' in msg
    _one_line_error(lambda: load_checkpoint(learn, bad, with_opt=False), bad)
    _one_line_error(lambda: resume_epoch(bad), bad)
    model = create_model('stmo-tiny')
    _one_line_error(lambda: load_encoder(model, bad), bad)
    _one_line_error(lambda: load_encoder(model, bad, prefix='model.', verbose=False), bad)
    _one_line_error(lambda: read_checkpoint(bad), bad)
    assert not marker.exists()

@pytest.mark.parametrize('kind', ['empty', 'text', 'truncated'])
def test_unreadable_checkpoints_one_line(tmp_path, good, kind):
    p = tmp_path/f'{kind}.pth'
    if kind == 'empty': p.write_bytes(b'')
    elif kind == 'text': p.write_text('epoch: 3\nmodel: weights.bin\n')
    else:
        data = good.last_path.read_bytes(); p.write_bytes(data[:len(data)//2])
    why = {'empty': 'empty file', 'text': 'not a torch.save file', 'truncated': 'damaged or truncated'}[kind]
    learn = synth_learner()
    _one_line_error(lambda: load_checkpoint(learn, p), p, f'not a readable checkpoint ({why}')
    _one_line_error(lambda: resume_epoch(p), p, f'not a readable checkpoint ({why}')
    _one_line_error(lambda: load_encoder(create_model('stmo-tiny'), p, prefix='model.'), p, f'not a readable checkpoint ({why}')

def test_checkpoints_are_plain_data(good):
    "Checkpoints hold only what `weights_only=True` reads (the optimizer state converted), and they still resume."
    for p in (good.last_path, good.best_path):
        state = torch.load(p, map_location='cpu', weights_only=True)
        assert isinstance(state['model'], dict) and state['epoch'] == 0
    opt = torch.load(good.last_path, weights_only=True)['opt']
    assert type(opt['hypers']) is list and all(type(v) in (float, int, bool) for h in opt['hypers'] for v in h.values())
    learn = synth_learner()
    meta = load_checkpoint(learn, good.last_path)
    assert meta['epoch'] == 0 and resume_epoch(good.last_path) == 1
    _fit(learn)  # the restored optimizer state trains on

def test_checkpoint_field_errors(tmp_path):
    p = tmp_path/'x.pth'
    torch.save({'weights': {}}, p)
    _one_line_error(lambda: load_checkpoint(synth_learner(), p), p, "field 'model' missing")
    _one_line_error(lambda: resume_epoch(p), p, "field 'epoch' is None")
    torch.save({'model': {'w': torch.ones(2)}, 'epoch': 1}, p)
    _one_line_error(lambda: load_checkpoint(synth_learner(), p), p, "field 'model' does not fit this model")

def test_no_unsafe_loads_in_package():
    "No `torch.load(weights_only=False)` anywhere; `pickle.load` only in the trust-flag-gated data readers."
    for f in PKG.rglob('*.py'):
        text = f.read_text()
        assert not re.search(r'weights_only\s*=\s*False', text), f
        if f.parent.name != 'data': assert 'pickle.load(' not in text, f
    for m in re.finditer(r'torch\.load\(([^)]*)\)', '\n'.join(f.read_text() for f in PKG.rglob('*.py'))):
        assert 'weights_only=True' in m[1], m[0]

# --- the command line ---------------------------------------------------------------------------------------------

def _run(args, cwd):
    return subprocess.run(HPE + args, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, 'PYTHONUNBUFFERED': '1'})

def _assert_cli_refused(r, path:Path, marker:Path):
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]   # (fit also reports building the data cache there)
    assert 'Traceback' not in r.stderr and [l for l in lines if 'error' in l.lower()] == lines[-1:], r.stderr
    assert lines[-1].startswith(f'hpe-pretrain {r.args[len(HPE)]}: error: {path}: not a readable checkpoint ('), lines[-1]
    assert not marker.exists()

def test_cli_eval_refuses_code(tmp_path):
    from hpe_pretrain.train.config import load_config, save_config
    run = tmp_path/'shared_run'
    save_config(load_config(TINY), run/'config.yaml')
    marker = tmp_path/'PWNED'
    ck = evil_checkpoint(run/'models'/'finetune_best.pth', marker)
    r = _run(['eval', '--checkpoint', str(run), '--data', str(tmp_path/'any.h5')], cwd=tmp_path)
    _assert_cli_refused(r, ck, marker)

def test_cli_fit_resume_refuses_code(tmp_path):
    from hpe_pretrain.train.config import load_config, save_config
    marker = tmp_path/'PWNED'
    save_config(load_config(TINY + ['stages=[finetune]', 'finetune.epochs=1', f'run.out_dir={tmp_path/"out"}', 'run.name=shared']),
                tmp_path/'out'/'shared'/'config.yaml')
    ck = evil_checkpoint(tmp_path/'out'/'shared'/'models'/'finetune_last.pth', marker)
    r = _run(['fit', '--resume', str(tmp_path/'out'/'shared')], cwd=tmp_path)
    _assert_cli_refused(r, ck, marker)

# --- atomic writes ------------------------------------------------------------------------------------------------

def test_stale_temps_removed_when_fit_starts(tmp_path):
    d = tmp_path/'models'
    d.mkdir()
    dead = subprocess.Popen([sys.executable, '-c', '']); dead.wait()
    stale = [d/f'model_last.pth.{dead.pid}.3fa9c2d1e0b4.tmp',   # named by a writer that is gone
             d/'model_best.pthk2m9x_q1.tmp',                   # older naming, no PID
             d/f'model_best.pth.{os.getpid()}.0a1b2c3d4e5f.tmp']  # this process is not writing now
    live = d/f'model_last.pth.{os.getppid()}.aaaaaaaaaaaa.tmp'    # a live writer's: kept
    other = d/f'other_last.pth.{dead.pid}.bbbbbbbbbbbb.tmp'       # another checkpoint's: not ours to judge
    for p in stale + [live, other]: p.write_bytes(b'PK\x03\x04 half written')
    ck = CheckpointCallback(d)
    _fit(synth_learner(cbs=ck))
    assert sorted(p.name for p in d.iterdir()) == sorted(['model_best.pth', 'model_last.pth', live.name, other.name])
    assert remove_stale_tmp(d/'other_last.pth') == [other]

def test_temp_names_are_per_process(tmp_path, monkeypatch):
    seen = []
    real = torch.save
    def spy(obj, f, *a, **k): seen.extend(p.name for p in tmp_path.iterdir()); return real(obj, f, *a, **k)
    monkeypatch.setattr(torch, 'save', spy)
    atomic_torch_save({'w': torch.ones(2)}, tmp_path/'a.pth')
    assert len(seen) == 1 and re.fullmatch(rf'\.a\.pth\.{os.getpid()}\.tmp', seen[0]), seen
    assert [p.name for p in tmp_path.iterdir()] == ['a.pth']

def _half_then(exc):
    "A stand-in for `torch.save` that writes half of the real bytes, then fails with `exc`."
    real = torch.save
    def save(obj, f, *a, **k):
        buf = io.BytesIO(); real(obj, buf)
        f.write(buf.getvalue()[:len(buf.getvalue())//2]); raise exc
    return save

@pytest.mark.parametrize('exc', [OSError(errno.ENOSPC, 'No space left on device'),
                                 RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534'),
                                 RuntimeError('[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: file write failed')],
                         ids=['ENOSPC', 'unexpected-pos', 'stream-writer'])
def test_full_disk_keeps_previous_checkpoint(good, monkeypatch, exc):
    before = {p.name: p.read_bytes() for p in good.path.iterdir()}
    learn = synth_learner(cbs=CheckpointCallback(good.path))
    monkeypatch.setattr(torch, 'save', _half_then(exc))
    with pytest.raises(OSError) as ei: _fit(learn)   # fastai wraps callback errors; the message stays one line
    assert isinstance(ei.value, DiskFullError) and isinstance(ei.value, ValueError) and ei.value.errno == errno.ENOSPC
    assert str(ei.value).startswith((f'no space left on device while writing {good.best_path} (',
                                     f'no space left on device while writing {good.last_path} (')), str(ei.value)
    assert {p.name: p.read_bytes() for p in good.path.iterdir()} == before   # old checkpoints intact, no temp left

def test_other_write_errors_pass_through(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, 'save', _half_then(PermissionError(errno.EACCES, 'Permission denied')))
    with pytest.raises(PermissionError): atomic_torch_save({'w': torch.ones(2)}, tmp_path/'a.pth')
    assert list(tmp_path.iterdir()) == []

@pytest.fixture
def tiny_tmpfs(tmp_path):
    "A 600 KiB tmpfs (needs root and permission to mount; skipped otherwise)."
    d = tmp_path/'tmpfs'; d.mkdir()
    if os.geteuid() != 0: pytest.skip('mounting a tmpfs needs root')
    try: r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=600k', 'tmpfs', str(d)], capture_output=True, text=True)
    except OSError as e: pytest.skip(f'cannot run mount: {e}')
    if r.returncode != 0: pytest.skip(f'cannot mount a tmpfs here: {r.stderr.strip()}')
    try: yield d
    finally: subprocess.run(['umount', str(d)], capture_output=True)

def test_full_disk_real_tmpfs(tiny_tmpfs):
    ck = CheckpointCallback(tiny_tmpfs)
    learn = synth_learner(cbs=ck); _fit(learn)
    before = {p.name: p.read_bytes() for p in tiny_tmpfs.iterdir()}
    with pytest.raises(DiskFullError, match=re.escape(f'no space left on device while writing {tiny_tmpfs}/big.pth')):
        atomic_torch_save({'w': torch.zeros(400_000)}, tiny_tmpfs/'big.pth')   # 1.6 MB into 600 KiB
    filler = tiny_tmpfs/'filler'
    with open(filler, 'wb', buffering=0) as f:   # fill the rest of the disk, then train one more epoch
        try:
            while True: f.write(b'\0' * 4096)
        except OSError as e: assert e.errno == errno.ENOSPC
    with pytest.raises(DiskFullError, match='no space left on device while writing'): _fit(learn)
    after = {p.name: p.read_bytes() for p in tiny_tmpfs.iterdir() if p != filler}
    assert after == before
