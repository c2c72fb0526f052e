"""The GPU check of issue #27 (run it through `tools/gpu_check.sh`, which installs what a bare GPU machine lacks).

Sections, in order of importance, each timed and written as soon as it ends (a run cut short keeps what it did):
environment; the command line on CUDA (`fit --quick` in bf16, `--resume`, `eval`, `infer` on CUDA vs the CPU with the
max |Δ|); training clips/s and peak memory of stmo-small and dstformer-lite at T=243 (fp32 / bf16 / bf16 with fastai's
Adam instead of the fused AdamW); the attention backend that runs (kernel names from the profiler, and which backends
accept our shapes); the batch transforms on the GPU vs the CPU; the `cuda` tests (pytest); bf16 + torch.compile last
(compiling takes minutes). A section that would not finish within `--budget` is skipped and says so.

    python benchmarks/gpu_check.py --out DIR [--budget 450]     # JSON + Markdown: DIR/gpu_check.json, DIR/gpu_check.md
"""
import argparse, json, os, re, subprocess, sys, tempfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HPE = [sys.executable, '-m', 'hpe_pretrain.cli']
T, DEV = 243, 'cuda'   # --cpu-smoke: T=27 on the CPU, to check this script where there is no GPU


class Check:
    "Sections run within a time budget; results saved after each one."
    def __init__(self, out: Path, budget: float):
        self.out, self.budget, self.t0, self.res = out, budget, time.perf_counter(), {}
        self.work = Path(tempfile.mkdtemp(prefix='gpu_check_'))   # run folders stay out of OUT (few files come back)
    def left(self) -> float: return self.budget - (time.perf_counter() - self.t0)
    def section(self, name: str, fn, need_s: float):
        if self.left() < need_s: self.res[name] = {'skipped': f'{self.left():.0f} s of the budget left, {need_s:.0f} s needed'}
        else:
            t = time.perf_counter(); print(f'== {name} ({self.left():.0f} s left)', flush=True)
            try: r = fn(self)
            except Exception as e: r = {'error': f'{type(e).__name__}: {e}'[:600], 'trace': traceback.format_exc()[-3000:]}
            r['seconds'] = round(time.perf_counter() - t, 1); self.res[name] = r
        self.save()
    def save(self):
        (self.out/'gpu_check.json').write_text(json.dumps(self.res, indent=1, default=str))
        (self.out/'gpu_check.md').write_text(markdown(self.res))


def sh(args, timeout=600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ, 'PYTHONUNBUFFERED': '1'}, **kw)
    if r.returncode: raise RuntimeError(f"{' '.join(map(str, args[3:]))} exited {r.returncode}: {(r.stderr or r.stdout)[-1500:]}")
    return r


def env(c: Check) -> dict:
    import torch, platform
    from importlib.metadata import version
    p = torch.cuda.get_device_properties(0)
    pk = {n: version(n) for n in ('fastai', 'fastcore', 'fasttransform', 'omegaconf', 'numpy', 'h5py', 'accelerate')}
    return dict(gpu=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f'{p.major}.{p.minor}', sms=p.multi_processor_count,
                torch=torch.__version__, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), python=platform.python_version(),
                bf16=torch.cuda.is_bf16_supported(), packages=pk)


def cli(c: Check) -> dict:
    "fit --quick on CUDA in bf16, resume, eval, infer on CUDA vs the CPU."
    import numpy as np
    out, r = c.work/'runs', {}
    t = time.perf_counter()
    sh(HPE + ['fit', '--quick', f'run.device={DEV}', 'train.precision=bf16', f'run.out_dir={out}', 'run.name=q', 'train.tensorboard=false'])
    r['fit_quick_s'] = round(time.perf_counter() - t, 1)
    s = json.loads((out/'q'/'results'/'summary.json').read_text())
    r['fit_quick'] = {st['stage']: dict(best=round(st['best'], 2), seconds=st['seconds'], nan_stopped=st['nan_stopped']) for st in s['stages']}
    r['fit_quick_mpjpe'] = round(s['results']['finetune']['MPJPE'], 2)
    t = time.perf_counter()
    p = sh(HPE + ['fit', '--resume', 'run.name=q', f'run.out_dir={out}', 'stages=[finetune]', 'finetune.epochs=4'])
    r['resume'] = 'resuming at epoch 3 of 4' in p.stdout; r['resume_s'] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    p = sh(HPE + ['eval', '--checkpoint', str(out/'q'), '--data', s['cache']])   # the cache the run used (a file per data setting)
    m = re.search(r'MPJPE\D*([\d.]+)', p.stdout); r['eval_mpjpe'] = float(m.group(1)) if m else p.stdout[-300:]
    r['eval_s'] = round(time.perf_counter() - t, 1)
    from hpe_pretrain.data.keypoint_tracks import KeypointTrack
    from hpe_pretrain.data.keypoint_files import write_coco_results
    rng = np.random.default_rng(0)
    kp = write_coco_results([KeypointTrack(1, np.arange(300), rng.uniform(600, 1300, (300, 17, 2)), np.ones((300, 17)), 'coco17')],
                            c.work/'people.json')
    poses = {}
    for dev in (DEV, 'cpu'):
        t = time.perf_counter()
        sh(HPE + ['infer', '--checkpoint', str(out/'q'), '--keypoints', str(kp), '--image-size', '1920', '1080',
                  '--out', str(c.work/f'infer_{dev}'), '--device', dev])
        r[f'infer_{dev}_s'] = round(time.perf_counter() - t, 1)
        with np.load(c.work/f'infer_{dev}'/'poses_3d.npz') as z: poses[dev] = z['poses_3d']
    r['infer_max_abs_diff_m'] = float(np.abs(poses[DEV] - poses['cpu']).max())
    return r


def step_speed(name: str, bs: int, precision: str, optimizer: str, compile: bool, steps: int = 10) -> dict:
    "Training clips/s and peak memory of the lifting model `name` at T=243 on random data (no loader)."
    import torch
    from fastai.optimizer import Adam
    from hpe_pretrain.models.factory import create_model, finetune_model_config, model_config
    from hpe_pretrain.train.learner import LiftTask, LiftLoss, adamw, decay_groups
    cuda = DEV == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    task = LiftTask(create_model(finetune_model_config(model_config(name)))).to(DEV).train()
    loss_fn = LiftLoss({'mpjpe': 1., 'n_mpjpe': .5, 'velocity': 1.})
    opt = adamw(DEV)(decay_groups(task), lr=1e-4) if optimizer == 'adamw' else Adam(list(task.parameters()), lr=1e-4)
    if compile: task.compile()
    b = {'x': torch.randn(bs, T, 17, 3, device=DEV), 'y3d': torch.randn(bs, T, 17, 3, device=DEV) * .1}
    ac = torch.autocast(DEV, dtype=torch.bfloat16, enabled=precision == 'bf16')
    def step():
        with ac: loss = loss_fn(task(b).float(), b)
        loss.backward(); opt.step(); opt.zero_grad()
    try:
        t = time.perf_counter(); step(); sync(); first = time.perf_counter() - t
        for _ in range(2): step()
        sync(); t = time.perf_counter()
        for _ in range(steps): step()
        sync(); dt = (time.perf_counter() - t) / steps
    except torch.cuda.OutOfMemoryError:
        return dict(model=name, bs=bs, precision=precision, optimizer=optimizer, compile=compile, error='out of memory')
    finally: opt = None   # frees the optimizer state before the next configuration
    return dict(model=name, bs=bs, precision=precision, optimizer=optimizer, compile=compile, step_ms=round(dt * 1e3, 1),
                clips_per_s=round(bs / dt, 1), peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
                first_step_s=round(first, 1))


SPEED = [('stmo-small', 64), ('dstformer-lite', 32)]

def speed(c: Check) -> dict:
    rows = [step_speed(m, bs, p, o, False) for m, bs in SPEED for p, o in (('fp32', 'adamw'), ('bf16', 'adamw'), ('bf16', 'fastai'))]
    return {'rows': rows}

def speed_compile(c: Check) -> dict:
    import torch._dynamo
    rows = []
    for m, bs in SPEED:
        torch._dynamo.reset(); rows.append(step_speed(m, bs, 'bf16', 'adamw', True))
    return {'rows': rows}


def sdpa(c: Check) -> dict:
    "Which attention kernels run for our layouts (profiler), and which SDPA backends accept them."
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.profiler import profile, ProfilerActivity
    from hpe_pretrain.models.layers import Attention
    r = {}
    for axis, C, H in (('joints', 256, 8), ('frames', 256, 8), ('joints', 128, 4)):
        att = Attention(C, H, axis).cuda()
        x = torch.randn(8, T, 17, C, device='cuda')
        for dt in ('fp32', 'bf16'):
            key = f'{axis} C={C} H={H} {dt}'
            with torch.autocast('cuda', dtype=torch.bfloat16, enabled=dt == 'bf16'):
                att(x); torch.cuda.synchronize()
                with profile(activities=[ProfilerActivity.CUDA]) as prof: att(x); torch.cuda.synchronize()
                names = sorted({e.key for e in prof.key_averages() if re.search(r'flash|fmha|efficient|attention|softmax|cudnn', e.key, re.I)})
                ok = {}
                for be in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
                    try:
                        with sdpa_kernel([be]): att(x)
                        ok[be.name] = True
                    except RuntimeError: ok[be.name] = False
            r[key] = dict(kernels=[n[:90] for n in names][:4], backends=ok)
    return r


def transforms(c: Check) -> dict:
    "The pretraining / finetuning batch transforms of the default config on a (256, 243, 17) batch: GPU vs CPU."
    import torch
    from hpe_pretrain.testing import synth_pose_batch
    from hpe_pretrain.train.config import load_config
    from hpe_pretrain.train.pipeline import stage_transforms
    from hpe_pretrain.transforms.normalize import NormalizePose
    b = synth_pose_batch(B=256, T=T)
    r = {}
    cfg = load_config(['augment.rotate_deg=10', 'augment.scale=0.1', 'augment.jitter_px=2'])
    for stage in ('pretrain', 'finetune'):
        tf = stage_transforms(cfg, stage)[:-1]
        for dev in ('cpu', 'cuda'):
            bd = {k: v.to(dev) for k, v in b.items()}
            times = []
            for _ in range(6):
                t = time.perf_counter(); out = dict(bd)
                for f in tf: out = f(out, split_idx=0)
                if dev == 'cuda': torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            r[f'{stage} {dev} ms'] = round(sorted(times[1:])[len(times[1:]) // 2] * 1e3, 2)
        r[f'{stage} speed-up'] = round(r[f'{stage} cpu ms'] / r[f'{stage} cuda ms'], 1)
        if DEV == 'cuda':   # waits of the host for the GPU inside the transforms (each a synchronising call)
            import warnings
            out = {k: v.cuda() for k, v in b.items()}
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter('always'); torch.cuda.set_sync_debug_mode('warn')
                try:
                    for f in tf: out = f(out, split_idx=0)
                finally: torch.cuda.set_sync_debug_mode(0)
            r[f'{stage} host syncs per batch'] = sum('synchroniz' in str(x.message) for x in w)
            r[f'{stage} sync sites'] = sorted({f'{Path(x.filename).name}:{x.lineno}' for x in w if 'synchroniz' in str(x.message)})[:8]
    cpu, gpu = NormalizePose('h36m17')(dict(b)), NormalizePose('h36m17')({k: v.cuda() for k, v in b.items()})
    r['normalize max |d|'] = max(float((cpu[k] - gpu[k].cpu()).abs().max()) for k in ('x', 'y3d', 'x2d'))
    return r


def cuda_tests(c: Check) -> dict:
    p = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-m', 'cuda', '-p', 'no:cacheprovider', str(ROOT/'tests'/'test_cuda.py')],
                       capture_output=True, text=True, timeout=max(60, int(c.left()) - 30), cwd=ROOT)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    return dict(returncode=p.returncode, summary=lines[-1] if lines else '', failures=[l for l in lines if l.startswith('FAILED')],
                tail=p.stdout[-2500:] if p.returncode else '')


def markdown(res: dict) -> str:
    "The results as Markdown: the environment, then one table or list per section."
    e = res.get('environment', {})
    out = ['# GPU check (issue #27)', '']
    if 'gpu' in e:
        out += [f"{e['gpu']} ({e['memory_gib']} GiB, sm {e['capability']}), torch {e['torch']}, CUDA {e['cuda']}, Python {e['python']}", '']
    for name, r in res.items():
        if name == 'environment': continue
        out += [f'## {name}', '']
        if 'rows' in r:
            keys = ['model', 'bs', 'precision', 'optimizer', 'compile', 'clips_per_s', 'step_ms', 'peak_gib', 'first_step_s', 'error']
            keys = [k for k in keys if any(k in x for x in r['rows'])]
            out += ['| ' + ' | '.join(keys) + ' |', '|' + '---|' * len(keys)]
            out += ['| ' + ' | '.join(str(x.get(k, '')) for k in keys) + ' |' for x in r['rows']]
            out += ['', f"{r.get('seconds', '')} s", '']
        else:
            out += [f'- {k}: {v}' for k, v in r.items() if k != 'trace'] + ['']
    return '\n'.join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True, help='folder for gpu_check.json and gpu_check.md')
    ap.add_argument('--budget', type=float, default=450, help='seconds for the whole check (sections that would not fit are skipped)')
    ap.add_argument('--cpu-smoke', action='store_true', help='check this script on a CPU: the command line and a tiny speed grid, T=27')
    a = ap.parse_args()
    import torch
    global T, DEV, SPEED
    if a.cpu_smoke: T, DEV, SPEED = 27, 'cpu', [('stmo-tiny', 8)]
    elif not torch.cuda.is_available(): print('no GPU: torch.cuda.is_available() is false here; nothing to check'); return
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    c = Check(out, a.budget)
    if not a.cpu_smoke: c.section('environment', env, 5)
    c.section('command line on CUDA (fit --quick bf16, resume, eval, infer)', cli, 90)
    c.section(f'training speed and peak memory at T={T}', speed, 60)
    if not a.cpu_smoke:
        c.section('attention backend (SDPA)', sdpa, 20)
        c.section('batch transforms, GPU vs CPU', transforms, 20)
        c.section('cuda tests (pytest -m cuda)', cuda_tests, 120)
        c.section('training speed, bf16 + torch.compile', speed_compile, 150)
    print(markdown(c.res))


if __name__ == '__main__': main()
