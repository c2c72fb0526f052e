"""On a GPU (`pytest -m cuda`; skipped without CUDA): the quick main job in bf16 on CUDA, a resume that loads the
optimizer state onto the GPU, CPU and CUDA predictions of one model, a training step with no host sync, attention
past CUDA's grid limit, and the batch transforms on the GPU. Plus, on any machine: `tools/gpu_check.sh` says
"no GPU" and succeeds where there is none."""
import os, subprocess, sys
from pathlib import Path
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HPE = [sys.executable, '-m', 'hpe_pretrain.cli']   # the module: works without the console script
ENV = {**os.environ, 'PYTHONUNBUFFERED': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

def run(args, timeout=900, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=ENV, **kw)

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_gpu_check_says_no_gpu_here(tmp_path):
    r = subprocess.run(['bash', str(ROOT/'tools'/'gpu_check.sh'), str(tmp_path)], capture_output=True, text=True, timeout=120,
                       env={**ENV, 'PYTHON': sys.executable})
    assert r.returncode == 0 and r.stdout.strip().startswith('no GPU'), r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []

@pytest.mark.cuda
@cuda
def test_quick_fit_bf16_then_resume_on_cuda(tmp_path):
    "The default main job's path on a GPU (bf16 autocast, fused AdamW), then a resume: the optimizer state loads onto the GPU."
    ov = ['run.device=cuda', 'train.precision=bf16', f'run.out_dir={tmp_path}', 'run.name=q']
    r = run(HPE + ['fit', '--quick'] + ov)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = run(HPE + ['fit', '--resume', 'run.name=q', f'run.out_dir={tmp_path}', 'finetune.epochs=4', 'stages=[finetune]'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'resuming at epoch 3 of 4' in r.stdout, r.stdout[-2000:]

@pytest.mark.cuda
@cuda
def test_cpu_and_cuda_predictions_agree():
    from hpe_pretrain.models.factory import create_model
    torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
    for name in ('stmo-small', 'dstformer-small'):
        torch.manual_seed(0); m = create_model(name, dec_depth=0) if name.startswith('stmo') else create_model(name)
        x = torch.randn(4, 81, 17, 3)
        with torch.inference_mode():
            cpu = m.eval()(x); gpu = m.cuda()(x.cuda()).cpu()
        assert (cpu - gpu).abs().max() < 1e-4, (name, (cpu - gpu).abs().max())

@pytest.mark.cuda
@cuda
def test_training_step_never_waits_for_the_gpu():
    "Forward, loss, backward and the fused AdamW step of both tasks under bf16 autocast, with CUDA's sync debug mode set to error."
    from hpe_pretrain.models.factory import create_model
    from hpe_pretrain.testing import synth_pose_batch
    from hpe_pretrain.transforms.normalize import NormalizePose
    from hpe_pretrain.transforms.corrupt import PSTMOMask
    from hpe_pretrain.train.learner import LiftTask, LiftLoss, MPMTask, MPMLoss, adamw, decay_groups
    b = NormalizePose('h36m17')(synth_pose_batch(B=8, T=27, device='cuda'))
    mask = PSTMOMask(0.5, 2, split_idx=None)
    for task, loss_fn, batch in ((MPMTask(create_model('stmo-tiny'), mask.n_masked), MPMLoss(), mask(dict(b))),
                                 (LiftTask(create_model('dstformer-tiny')), LiftLoss({'mpjpe': 1, 'n_mpjpe': .5, 'velocity': 1}), b)):
        task.cuda(); opt = adamw('cuda')(decay_groups(task), lr=1e-3)
        def step():
            with torch.autocast('cuda', dtype=torch.bfloat16): loss = loss_fn(task(batch).float(), batch)
            loss.backward(); opt.step(); opt.zero_grad()
        step(); torch.cuda.synchronize()          # the first step allocates the optimizer state
        torch.cuda.set_sync_debug_mode('error')
        try: step()
        finally: torch.cuda.set_sync_debug_mode(0)

@pytest.mark.cuda
@cuda
def test_joint_attention_past_the_grid_limit():
    "B·T = 70,000 sequences of joint attention (more than a CUDA grid dimension holds): chunked, the same as per chunk."
    from hpe_pretrain.models.layers import Attention
    torch.manual_seed(0)
    att = Attention(32, 4, 'joints').cuda()
    x = torch.randn(280, 250, 17, 32, device='cuda', requires_grad=True)
    y = att(x); y.float().square().mean().backward()
    with torch.no_grad(): ref = torch.cat([att(x[i:i + 40]) for i in range(0, 280, 40)])
    assert torch.allclose(y, ref, atol=1e-5) and torch.isfinite(x.grad).all()

@pytest.mark.cuda
@cuda
def test_batch_transforms_on_the_gpu_match_the_cpu():
    "The deterministic batch transforms give the CPU's numbers on the GPU; the random ones run there."
    from hpe_pretrain.testing import synth_pose_batch
    from hpe_pretrain.train.config import load_config
    from hpe_pretrain.train.pipeline import stage_transforms
    from hpe_pretrain.transforms.normalize import NormalizePose
    b = synth_pose_batch(B=16, T=27)
    cpu = NormalizePose('h36m17')(dict(b)); gpu = NormalizePose('h36m17')({k: v.cuda() for k, v in b.items()})
    for k in ('x', 'y3d', 'x2d'): assert (cpu[k] - gpu[k].cpu()).abs().max() < 1e-5, k
    for stage in ('pretrain', 'finetune'):
        out = {k: v.cuda() for k, v in b.items()}
        for t in stage_transforms(load_config(['augment.rotate_deg=10', 'augment.jitter_px=2']), stage)[:-1]: out = t(out, split_idx=0)
        assert out['x'].is_cuda and torch.isfinite(out['x']).all()
