"""End-to-end tests of the `hpe-pretrain` command: the quick main job, eval on both dataset formats, exact resume
after a kill, the NaN guard, DDP with two processes, same seed -> same weights with two threads, and config errors.
CPU only; each runs in a subprocess."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch

BIN = Path(sys.executable).parent
HPE = str(BIN/'hpe-pretrain')
TINY = ['model=stmo-tiny', 'data.clip_len=9', 'data.stride=9', 'data.synthetic.frames_per_seq=40',
        'train.tensorboard=false', 'run.num_threads=1']

def run(args, timeout=600, **kw):
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, **kw)

@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    "One `hpe-pretrain fit --quick` run shared by the tests that inspect its outputs."
    cwd = tmp_path_factory.mktemp('quick')
    t0 = time.perf_counter()
    r = run([HPE, 'fit', '--quick'], cwd=cwd)   # the default, relative run.out_dir=outputs, as in the README
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return cwd/'outputs', r, time.perf_counter() - t0

def test_fit_quick_outputs(quick):
    out, r, secs = quick
    run_dir = out/'quick'
    for f in ('config.yaml', 'models/pretrain_best.pth', 'models/finetune_last.pth', 'logs/finetune_history.csv',
              'results/finetune/results.json', 'results/finetune/per_action.csv', 'results/summary.json',
              'results/finetune/samples.npz', 'results/report.html'):
        assert (run_dir/f).exists(), f
    events = list((run_dir/'logs'/'tb'/'finetune').glob('events.out.tfevents.*'))
    assert events, 'no TensorBoard events'
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(events[0].parent)); ea.Reload()
    assert {'train_loss', 'valid_loss'} <= set(ea.Tags()['scalars'])
    hist = (run_dir/'logs'/'finetune_history.csv').read_text().splitlines()
    assert hist[0].startswith('epoch,train_loss,valid_loss,mpjpe_mm') and len(hist) == 1 + 3
    summary = json.loads((run_dir/'results'/'summary.json').read_text())
    assert summary['results']['finetune']['MPJPE'] > 0
    assert 'MPJPE' in r.stdout and 'per_action' in r.stdout and 'Average (action-wise)' in r.stdout
    print(f'fit --quick: {secs:.0f} s')

def test_eval_h36m_and_3dhp_formats(quick, tmp_path):
    out, _, _ = quick
    run_dir = out/'quick'
    h36m = out/'data'/'synthetic_h36m.h5'
    r = run([HPE, 'eval', '--checkpoint', str(run_dir), '--data', str(h36m), '--flip-tta'])
    assert r.returncode == 0, r.stderr
    assert 'h36m: MPJPE' in r.stdout and 'Walking' in r.stdout
    mpi = tmp_path/'synthetic_3dhp.h5'
    r = run([HPE, 'prepare', '--dataset', 'synthetic', '--format', 'mpi_inf_3dhp', '--out', str(mpi), '--quiet'])
    assert r.returncode == 0, r.stderr
    r = run([HPE, 'eval', '--checkpoint', str(run_dir/'models'/'finetune_best.pth'), '--data', str(mpi)])
    assert r.returncode == 0, r.stderr
    assert 'mpi_inf_3dhp: PCK' in r.stdout and 'AUC' in r.stdout

def _final_weights(run_dir):
    return torch.load(run_dir/'models'/'finetune_last.pth', map_location='cpu', weights_only=True)['model']

def test_resume_after_kill_matches_uninterrupted(tmp_path):
    ov = TINY + ['stages=[finetune]', 'finetune.epochs=4', 'data.synthetic.frames_per_seq=120', f'run.out_dir={tmp_path}']
    r = run([HPE, 'fit', 'run.name=full'] + ov)
    assert r.returncode == 0, r.stderr[-3000:]
    # the same run, killed (SIGKILL) during its third epoch, then resumed
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    p = subprocess.Popen([HPE, 'fit', 'run.name=cut'] + ov, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    last = tmp_path/'cut'/'models'/'finetune_last.pth'
    deadline = time.time() + 300
    while time.time() < deadline:
        if last.exists():
            try:
                if torch.load(last, map_location='cpu', weights_only=True)['epoch'] >= 1: break
            except Exception: pass  # being replaced right now
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    ep = torch.load(last, map_location='cpu', weights_only=True)['epoch']
    assert ep < 3, 'the run finished before it could be killed'
    r = run([HPE, 'fit', 'run.name=cut', '--resume'] + ov)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'resuming at epoch {ep + 1} of 4' in r.stdout
    a, b = _final_weights(tmp_path/'full'), _final_weights(tmp_path/'cut')
    assert a.keys() == b.keys()
    for k in a: assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), k

def test_ddp_two_processes_identical_weights(tmp_path):
    r = run([str(BIN/'torchrun'), '--standalone', '--nproc_per_node', '2', HPE, 'fit'] + TINY +
            ['stages=[finetune]', 'finetune.epochs=2', f'run.out_dir={tmp_path}', 'run.name=ddp'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    digests = {l.split()[1]: l.split()[-1] for l in r.stdout.splitlines() if l.startswith('[rank ') and 'weights' in l}
    assert set(digests) == {'0]', '1]'}, r.stdout[-2000:]
    assert len(set(digests.values())) == 1, digests
    assert (tmp_path/'ddp'/'models'/'finetune_last.pth').exists()

def test_bad_config_key_lists_valid_keys():
    r = run([HPE, 'fit', 'train.bsz=8'])
    assert r.returncode == 2
    assert "Unknown config key 'train.bsz'" in r.stderr and 'Valid keys under train: bs' in r.stderr
    r = run([HPE, 'fit', 'model=dstformer-huge'])
    assert r.returncode == 2 and 'valid model names: dstformer-base' in r.stderr

def test_help_reads_well():
    r = run([HPE, '--help'])
    assert r.returncode == 0 and 'prepare' in r.stdout and 'fit' in r.stdout and 'eval' in r.stdout
    r = run([HPE, 'fit', '--help'])
    assert 'key=value' in r.stdout and '--quick' in r.stdout and '--resume' in r.stdout

def test_same_seed_same_weights_with_two_threads(tmp_path):
    "Two runs with the same seed give bit-identical weights, also with several intra-op threads (pretrain + finetune)."
    ov = ['model=stmo-small', 'data.clip_len=27', 'data.stride=27', 'data.synthetic.frames_per_seq=120',
          'pretrain.epochs=1', 'finetune.epochs=1', 'stages=[pretrain,finetune]', 'train.tensorboard=false',
          'run.num_threads=2', f'run.out_dir={tmp_path}']
    for name in ('a', 'b'):
        r = run([HPE, 'fit', f'run.name={name}'] + ov)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in ('pretrain', 'finetune'):
        a, b = (torch.load(tmp_path/n/'models'/f'{stage}_last.pth', map_location='cpu', weights_only=True)['model'] for n in 'ab')
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], stage

def test_infer_command_on_coco_keypoints(quick, tmp_path):
    "`hpe-pretrain infer` on a COCO results file of two people: the longest track is lifted and written."
    import numpy as np
    from hpe_pretrain.data.keypoints import KeypointTrack, write_coco_results
    out, _, _ = quick
    rng = np.random.default_rng(0)
    tracks = [KeypointTrack(i, np.arange(n), rng.uniform(300, 700, (n, 17, 2)) + 400 * i, np.ones((n, 17)), 'coco17')
              for i, n in ((1, 40), (2, 25))]
    kp = write_coco_results(tracks, tmp_path/'people.json')
    r = run([HPE, 'infer', '--checkpoint', str(out/'quick'), '--keypoints', str(kp), '--image-size', '1920', '1080',
             '--out', str(tmp_path/'video')])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'track 1, 40 frames' in r.stdout, r.stdout
    with np.load(tmp_path/'video'/'poses_3d.npz') as z: assert z['poses_3d'].shape == (40, 17, 3) and np.isfinite(z['poses_3d']).all()
    assert (tmp_path/'video'/'animation.html').stat().st_size > 10_000
    r = run([HPE, 'infer', '--checkpoint', str(out/'quick'), '--keypoints', str(kp), '--out', str(tmp_path/'v2')])
    assert r.returncode == 2 and r.stderr.strip().endswith('has no image size; pass --image-size W H'), r.stderr
