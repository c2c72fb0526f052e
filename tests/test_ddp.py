"""DDP with two CPU processes (gloo, `torchrun --standalone --nproc_per_node 2`): the ranks decide as one — the same
validation values (the mean over every clip once, as one process computes it), the same best checkpoint, early stop
and NaN stop, bit-identical weights — the per-epoch seeds reach the loader inside fastai's `DistributedDL`, and a
run killed and resumed equals the uninterrupted one bit for bit. Each test starts two processes (~20-40 s each)."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch

BIN = Path(sys.executable).parent
CLI = ['-m', 'hpe_pretrain.cli']   # `hpe-pretrain` as a module: torchrun runs it with its own python
TORCHRUN = [str(BIN/'torchrun'), '--standalone', '--nproc_per_node', '2']
TINY = ['model=stmo-tiny', 'data.clip_len=9', 'data.stride=9', 'data.synthetic.frames_per_seq=40', 'train.tensorboard=false',
        'run.num_threads=1', 'run.device=cpu']
ENV = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}

def run(args, timeout=600, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=ENV, **kw)

def rank_lines(stdout: str) -> dict:
    "'[rank R] <stage> weights D best B epochs_run E nan_stopped N' -> {(R, stage): rest}."
    out = {}
    for l in stdout.splitlines():
        if l.startswith('[rank ') and ' weights ' in l:
            r, rest = l[len('[rank '):].split('] ', 1)
            out[(int(r), rest.split()[0])] = rest
    return out

def test_ranks_decide_as_one(tmp_path):
    "Validation values reduced over the ranks (equal to one process on the whole set), a NaN on one rank stops both, seeds reach the loader."
    r = run(TORCHRUN + [str(Path(__file__).parent/'ddp_worker.py'), str(tmp_path)])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    a, b = (json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0, 1))
    assert a == b, (a, b)                                               # every recorded value bit for bit, every decision
    assert a['n_valid'] % 2 == 0 and a['n_valid'] % 8                   # shares of 10 clips: batches of 8 and 2 on each rank
    assert a['ddp_values'] == pytest.approx(a['alone_values'], rel=1e-6)  # the mean over each clip once (no padding)
    assert a['nan_stopped'] == [1, 1]                                   # rank 1's NaN at epoch 1, batch 1 stopped both ranks
    assert a['seed_ok'] == [True, True]                                 # the (seed, epoch) shuffle inside DistributedDL

def test_fit_ranks_agree_on_weights_best_and_early_stop(tmp_path):
    "hpe-pretrain fit under torchrun: pretraining (MPM) and finetuning, early stopping on: the same on both ranks."
    r = run(TORCHRUN + [*CLI, 'fit'] + TINY + ['stages=[pretrain,finetune]', 'pretrain.epochs=2', 'finetune.epochs=3',
                                              'train.early_stopping_patience=1', f'run.out_dir={tmp_path}', 'run.name=ddp'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = rank_lines(r.stdout)
    assert set(lines) == {(0, 'pretrain'), (1, 'pretrain'), (0, 'finetune'), (1, 'finetune')}, r.stdout[-2000:]
    for stage in ('pretrain', 'finetune'): assert lines[(0, stage)] == lines[(1, stage)], lines
    assert (tmp_path/'ddp'/'models'/'finetune_best.pth').exists()

def _kill_tree(p: subprocess.Popen) -> None:
    "SIGKILL torchrun and all its workers (as a crash or an OOM kill would), and wait until they are gone."
    pids, todo = [], [p.pid]
    kids = {}
    for st in Path('/proc').glob('[0-9]*/stat'):
        try: f = st.read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        kids.setdefault(int(f[1]), []).append(int(st.parent.name))
    while todo:
        q = todo.pop(); pids.append(q); todo += kids.get(q, [])
    for q in pids:
        try: os.kill(q, signal.SIGKILL)
        except ProcessLookupError: pass
    p.wait()
    deadline = time.time() + 60
    while any(Path(f'/proc/{q}').exists() for q in pids[1:]) and time.time() < deadline: time.sleep(0.05)

def _weights(run_dir):
    return torch.load(run_dir/'models'/'finetune_last.pth', map_location='cpu', weights_only=True)['model']

def test_resume_after_kill_matches_uninterrupted(tmp_path):
    "A DDP run killed (SIGKILL to the whole process group) during an epoch, then resumed: the weights of the uninterrupted run."
    ov = TINY + ['stages=[finetune]', 'finetune.epochs=4', 'data.synthetic.frames_per_seq=120', f'run.out_dir={tmp_path}']
    r = run(TORCHRUN + [*CLI, 'fit', 'run.name=full'] + ov)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    p = subprocess.Popen(TORCHRUN + [*CLI, 'fit', 'run.name=cut'] + ov, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    last, deadline = tmp_path/'cut'/'models'/'finetune_last.pth', time.time() + 300
    try:
        while time.time() < deadline and p.poll() is None:
            try:
                if last.exists() and torch.load(last, map_location='cpu', weights_only=True)['epoch'] >= 0: break
            except Exception: pass   # being replaced right now
            time.sleep(0.05)
    finally: _kill_tree(p)
    ep = torch.load(last, map_location='cpu', weights_only=True)['epoch']
    assert ep < 3, 'the run finished before it could be killed'
    r = run(TORCHRUN + [*CLI, 'fit', '--resume', 'run.name=cut', f'run.out_dir={tmp_path}'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f'resuming at epoch {ep + 1} of 4' in r.stdout
    a, b = _weights(tmp_path/'full'), _weights(tmp_path/'cut')
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
