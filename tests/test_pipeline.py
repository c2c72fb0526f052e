"""End-to-end tests of the `hpe-pretrain` command: the quick main job, eval on both dataset formats, exact resume
after a kill, the NaN guard, same seed -> same weights with two threads, device and config errors (DDP: test_ddp.py).
CPU only (bit-identity pinned to run.device=cpu); each runs in a subprocess."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch

HPE = [sys.executable, '-m', 'hpe_pretrain.cli']   # `hpe-pretrain`, run as the module: no console script needed
TINY = ['model=stmo-tiny', 'data.clip_len=9', 'data.stride=9', 'data.synthetic.frames_per_seq=40',
        'train.tensorboard=false', 'run.num_threads=1', 'run.device=cpu']   # bit-identity holds on the CPU (not with CUDA atomics)

def run(args, timeout=600, **kw):
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, **kw)

@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    "One `hpe-pretrain fit --quick` run shared by the tests that inspect its outputs."
    cwd = tmp_path_factory.mktemp('quick')
    t0 = time.perf_counter()
    r = run([*HPE, 'fit', '--quick'], cwd=cwd)   # the default, relative run.out_dir=outputs, as in the README
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
    ea = EventAccumulator(str(events[0].parent), purge_orphaned_data=False); ea.Reload()   # every event as written
    assert {'train_loss', 'valid_loss'} <= set(ea.Tags()['scalars'])
    steps = {tag: [e.step for e in ea.Scalars(tag)] for tag in ea.Tags()['scalars']}
    assert all(all(a < b for a, b in zip(v, v[1:])) for v in steps.values()), steps   # one value per step and tag
    per_epoch = len(steps['train_loss']) // 3                                          # 3 finetuning epochs
    assert steps['train_loss'] == list(range(1, 3 * per_epoch + 1)) and steps['valid_loss'] == [per_epoch * e for e in (1, 2, 3)]
    hist = (run_dir/'logs'/'finetune_history.csv').read_text().splitlines()
    assert hist[0].startswith('epoch,train_loss,valid_loss,mpjpe_mm') and len(hist) == 1 + 3
    summary = json.loads((run_dir/'results'/'summary.json').read_text())
    assert summary['results']['finetune']['MPJPE'] > 0
    assert Path(summary['cache']).is_absolute() and Path(summary['cache']).resolve().parent == (out/'data').resolve()   # named per data setting
    assert 'MPJPE' in r.stdout and 'per_action' in r.stdout and 'Average (action-wise)' in r.stdout
    print(f'fit --quick: {secs:.0f} s')

def test_eval_h36m_and_3dhp_formats(quick, tmp_path):
    out, _, _ = quick
    run_dir = out/'quick'
    h36m = json.loads((run_dir/'results'/'summary.json').read_text())['cache']   # the cache the run used (absolute)
    r = run([*HPE, 'eval', '--checkpoint', str(run_dir), '--data', str(h36m), '--flip-tta'])
    assert r.returncode == 0, r.stderr
    assert 'h36m: MPJPE' in r.stdout and 'Walking' in r.stdout
    mpi = tmp_path/'synthetic_3dhp.h5'
    r = run([*HPE, 'prepare', '--dataset', 'synthetic', '--format', 'mpi_inf_3dhp', '--out', str(mpi), '--quiet'])
    assert r.returncode == 0, r.stderr
    r = run([*HPE, 'eval', '--checkpoint', str(run_dir/'models'/'finetune_best.pth'), '--data', str(mpi)])
    assert r.returncode == 0, r.stderr
    assert 'mpi_inf_3dhp: PCK' in r.stdout and 'AUC' in r.stdout

def _final_weights(run_dir):
    return torch.load(run_dir/'models'/'finetune_last.pth', map_location='cpu', weights_only=True)['model']

def test_second_fit_refused_overwrite_starts_over_data_kept(tmp_path):
    "`fit` into a finished run is refused (one line, both ways out); --overwrite leaves only the new run's files; other data settings get their own cache."
    ov = TINY + ['pretrain.epochs=1', 'finetune.epochs=1', 'eval.flip_tta=false', f'run.out_dir={tmp_path}', 'run.name=r']
    r = run([*HPE, 'fit'] + ov)
    assert r.returncode == 0, r.stderr[-3000:]
    first = json.loads((tmp_path/'r'/'results'/'summary.json').read_text())
    cache, config = Path(first['cache']), (tmp_path/'r'/'config.yaml').read_bytes()
    before = cache.stat().st_mtime_ns, cache.stat().st_size
    r = run([*HPE, 'fit'] + ov)                                        # the same command again
    assert r.returncode == 2 and r.stderr.strip() == (
        f"hpe-pretrain fit: error: {tmp_path/'r'}: holds a finished run (config.yaml, 4 checkpoint(s)); `hpe-pretrain fit --resume "
        f"{tmp_path/'r'}` continues it, --overwrite starts it over (its checkpoints, logs and results are removed; Python: "
        f"fit_from_config(cfg, overwrite=True)), or choose another run.name"), r.stderr
    assert (tmp_path/'r'/'config.yaml').read_bytes() == config
    r = run([*HPE, 'fit', '--overwrite'] + ov + ['stages=[finetune,eval]', 'data.synthetic.frames_per_seq=50'])   # other data, one stage
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{tmp_path/'r'}: --overwrite: removed the earlier run (models, logs, results, config.yaml)" in r.stdout
    assert 'no pretraining checkpoint in this run' in r.stdout                                   # none left over to start from
    assert sorted(p.name for p in (tmp_path/'r'/'models').iterdir()) == ['finetune_best.pth', 'finetune_last.pth']
    second = json.loads((tmp_path/'r'/'results'/'summary.json').read_text())
    assert Path(second['cache']) != cache and (cache.stat().st_mtime_ns, cache.stat().st_size) == before   # the first data untouched
    r = run([*HPE, 'fit', '--overwrite', '--resume', f"{tmp_path/'r'}"])
    assert r.returncode == 2 and 'choose one' in r.stderr, r.stderr

def test_resume_after_kill_matches_uninterrupted(tmp_path):
    ov = TINY + ['stages=[finetune]', 'finetune.epochs=4', 'data.synthetic.frames_per_seq=120', f'run.out_dir={tmp_path}']
    r = run([*HPE, 'fit', 'run.name=full'] + ov)
    assert r.returncode == 0, r.stderr[-3000:]
    # the same run, killed (SIGKILL) during its third epoch, then resumed
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    p = subprocess.Popen([*HPE, 'fit', 'run.name=cut'] + ov, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
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
    config = (tmp_path/'cut'/'config.yaml').read_bytes()
    # resumed by name alone, as the README says: the run's own config, not the defaults (which would be another model)
    r = run([*HPE, 'fit', '--resume', 'run.name=cut', f'run.out_dir={tmp_path}'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'resuming at epoch {ep + 1} of 4' in r.stdout
    assert (tmp_path/'cut'/'config.yaml').read_bytes() == config      # never rewritten
    a, b = _final_weights(tmp_path/'full'), _final_weights(tmp_path/'cut')
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k                     # bit-identical to the uninterrupted run

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_unusable_device_is_one_line_before_anything_is_written(tmp_path):
    r = run([*HPE, 'fit', '--quick', 'run.device=cuda', f'run.out_dir={tmp_path}'])
    assert r.returncode == 2 and r.stderr.strip() == (f"hpe-pretrain fit: error: run.device=cuda: this torch build has no CUDA "
                                                      f"(torch {torch.__version__}); use run.device=cpu or auto"), r.stderr
    assert list(tmp_path.iterdir()) == []                               # no data prepared, no run folder
    r = run([*HPE, 'fit', '--quick', 'run.device=tpu', f'run.out_dir={tmp_path}'])
    assert r.returncode == 2 and 'run.device' in r.stderr and 'cuda:N' in r.stderr and len(r.stderr.strip().splitlines()) == 1

def test_mixed_precision_pipeline(tmp_path):
    "Pretraining (masked pose modelling), finetuning and evaluation under bf16 autocast, as on a GPU (CPU autocast here)."
    r = run([*HPE, 'fit'] + TINY + ['train.precision=bf16', 'pretrain.epochs=1', 'finetune.epochs=1', 'eval.flip_tta=false',
                                   f'run.out_dir={tmp_path}', 'run.name=bf16'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads((tmp_path/'bf16'/'results'/'summary.json').read_text())
    assert [x['stage'] for x in s['stages']] == ['pretrain', 'finetune'] and 0 < s['results']['finetune']['MPJPE'] < 1e4

def test_bad_config_key_lists_valid_keys():
    r = run([*HPE, 'fit', 'train.bsz=8'])
    assert r.returncode == 2
    assert "Unknown config key 'train.bsz'" in r.stderr and 'Valid keys under train: bs' in r.stderr
    r = run([*HPE, 'fit', 'model=dstformer-huge'])
    assert r.returncode == 2 and 'valid model names: dstformer-base' in r.stderr

def test_help_reads_well():
    r = run([*HPE, '--help'])
    assert r.returncode == 0 and 'prepare' in r.stdout and 'fit' in r.stdout and 'eval' in r.stdout
    r = run([*HPE, 'fit', '--help'])
    assert 'key=value' in r.stdout and '--quick' in r.stdout and '--resume' in r.stdout

def test_same_seed_same_weights_with_two_threads(tmp_path):
    "Two runs with the same seed give bit-identical weights, also with several intra-op threads (pretrain + finetune)."
    ov = ['model=stmo-small', 'data.clip_len=27', 'data.stride=27', 'data.synthetic.frames_per_seq=120',
          'pretrain.epochs=1', 'finetune.epochs=1', 'stages=[pretrain,finetune]', 'train.tensorboard=false',
          'run.num_threads=2', 'run.device=cpu', f'run.out_dir={tmp_path}']
    for name in ('a', 'b'):
        r = run([*HPE, 'fit', f'run.name={name}'] + ov)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in ('pretrain', 'finetune'):
        a, b = (torch.load(tmp_path/n/'models'/f'{stage}_last.pth', map_location='cpu', weights_only=True)['model'] for n in 'ab')
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], stage

def test_infer_command_on_coco_keypoints(quick, tmp_path):
    "`hpe-pretrain infer` on a COCO results file of two people: the longest track is lifted and written."
    import numpy as np
    from hpe_pretrain.data.keypoint_tracks import KeypointTrack
    from hpe_pretrain.data.keypoint_files import write_coco_results
    out, _, _ = quick
    rng = np.random.default_rng(0)
    tracks = [KeypointTrack(i, np.arange(n), rng.uniform(300, 700, (n, 17, 2)) + 400 * i, np.ones((n, 17)), 'coco17')
              for i, n in ((1, 40), (2, 25))]
    kp = write_coco_results(tracks, tmp_path/'people.json')
    r = run([*HPE, 'infer', '--checkpoint', str(out/'quick'), '--keypoints', str(kp), '--image-size', '1920', '1080',
             '--out', str(tmp_path/'video')])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'track 1 (longest of 2 tracks: 40 frames' in r.stdout, r.stdout
    with np.load(tmp_path/'video'/'poses_3d.npz') as z: assert z['poses_3d'].shape == (40, 17, 3) and np.isfinite(z['poses_3d']).all()
    assert (tmp_path/'video'/'animation.html').stat().st_size > 10_000
    r = run([*HPE, 'infer', '--checkpoint', str(out/'quick'), '--keypoints', str(kp), '--out', str(tmp_path/'v2')])
    assert r.returncode == 2 and r.stderr.strip().endswith('has no image size; pass --image-size W H'), r.stderr

def test_fit_list_shows_experiments():
    r = run([*HPE, 'fit', '--list'])
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith('experiments'))
    assert 'h36m_to_3dhp' in line and 'synthetic_h36m_3dhp_pretrain' in line, line

def test_cross_dataset_experiment_end_to_end(tmp_path):
    "Train on H36M-format data, evaluate on it and on 3DHP-format test data (mpi17 permuted to the model's h36m17)."
    r = run([*HPE, 'fit', 'experiment=synthetic_h36m_to_3dhp'] + TINY + ['pretrain.epochs=1', 'finetune.epochs=1', f'run.out_dir={tmp_path}', 'run.name=x'])
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path/'x'/'results'/'summary.json').read_text())
    assert set(s['results']) == {'finetune', 'finetune on synthetic_3dhp'}
    assert {'PCK', 'AUC', 'MPJPE'} <= set(s['results']['finetune on synthetic_3dhp'])
    assert (tmp_path/'x'/'results'/'finetune_on_synthetic_3dhp'/'results.json').exists()
    assert 'finetune on synthetic_3dhp' in r.stdout

def _coco_file(path, T=80):
    "A 2D-only source: one person's coco17 track in COCO *results* format (no track ids), from synthetic h36m17 poses."
    import numpy as np
    from hpe_pretrain.data.keypoint_tracks import KeypointTrack
    from hpe_pretrain.data.keypoint_files import write_coco_results
    rng = np.random.default_rng(0)
    kp = (rng.standard_normal((T, 17, 2)).cumsum(0) * 2 + 500).astype(np.float32)   # a drifting 17-point figure, px
    return write_coco_results([KeypointTrack(1, np.arange(T), kp, np.full((T, 17), .9, np.float32), 'coco17', 1000, 1000)], path)

def test_mixture_pretraining_then_finetune_init_from_across_joint_sets(tmp_path):
    "Pretrain on H36M-format + 3DHP-format caches + a 2D-only COCO file; finetune an mpi17 model from that h36m17 run."
    coco = _coco_file(tmp_path/'video.json')
    src = f"pretrain.data=[{{data: synthetic, weight: 2}}, {{data: synthetic_3dhp}}, {{path: {coco}, weight: 1, name: coco, image_size: [1000, 1000]}}]"
    r = run([*HPE, 'fit', src, 'stages=[pretrain]'] + TINY + ['pretrain.epochs=1', f'run.out_dir={tmp_path}', 'run.name=mix'])
    assert r.returncode == 0, r.stderr[-3000:]
    mix = json.loads((tmp_path/'mix'/'results'/'summary.json').read_text())['stages'][0]['mixture']
    assert [(m['name'], m['kind'], m['joints'], m['has_3d']) for m in mix] == [
        ('synthetic', 'cache', 'h36m17', True), ('synthetic_3dhp', 'cache', 'mpi17', True), ('coco', 'keypoints', 'coco17', False)]
    assert [round(m['probability'], 3) for m in mix] == [0.5, 0.25, 0.25] and all(m['clips'] > 0 for m in mix)
    # printed at start: the sources, their joint conversions, the draws per clip; a note for the small 2D source drawn far more often
    for m in mix: assert f"{m['name']} " in r.stdout and m['conversion'] in r.stdout
    assert 'mpi17 -> h36m17: reordered' in r.stdout and 'coco17 -> h36m17: pelvis, spine, thorax, head derived' in r.stdout
    note = [l for l in r.stdout.splitlines() if l.startswith('note: ')]
    assert len(note) == 1 and note[0].startswith('note: coco (') and mix[2]['draws_per_clip'] > 4, (note, mix)
    # an mpi17 model starts from the h36m17 run: joint-indexed weights permuted by joint name, and the report says so
    r = run([*HPE, 'fit', 'data=synthetic_3dhp', 'stages=[finetune,eval]', f'finetune.init_from={tmp_path/"mix"}'] + TINY +
            ['finetune.epochs=1', f'run.out_dir={tmp_path}', 'run.name=mpi'])
    assert r.returncode == 0, r.stderr[-3000:]
    enc = json.loads((tmp_path/'mpi'/'results'/'summary.json').read_text())['stages'][0]['encoder']
    assert enc['joint_sets'] == ['h36m17', 'mpi17'] and enc['permuted'] and enc['source'].split(' (')[0].endswith('pretrain_best.pth'), enc
    assert 'permuted from h36m17 to mpi17 joint order' in r.stdout
    # 2D-only sources cannot feed an objective that needs 3D
    r = run([*HPE, 'fit', src, 'pretrain.objective=motionbert', 'stages=[pretrain]'] + TINY + [f'run.out_dir={tmp_path}', 'run.name=bad'])
    assert r.returncode == 2 and 'are 2D-only' in r.stderr, r.stderr[-2000:]
