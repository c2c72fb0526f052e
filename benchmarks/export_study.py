"""The export-setting study of the lifting models on the CPU at B=1, T=243: where the time goes, and whether any export,
graph optimisation, thread count or precision beats eager PyTorch — with the accuracy each setting costs.

    python benchmarks/export_study.py              # dstformer-lite (and stmo-small) in depth: ~10 min on 2 idle cores
    python benchmarks/export_study.py --rounds 1   # its smoke run (random-init dstformer-lite, 1 clip): ~5 min

The default grid (every model x runtime x threads x B x T) is `benchmarks/inference.py`; results of both are in
`benchmarks/inference.md`.

The models are trained briefly on the embedded synthetic data (so that the weights
are not random; `--train-clips`), exported to ONNX and `.pt2` at T=243, and then
- every setting (eager fp32 / F.linear / .pt2 at each thread count, onnxruntime at its 4 graph optimisation levels
  and with more threads, onnxruntime with fp16 weights and dynamic int8 quantisation, eager bf16 and dynamic int8)
  runs on `--clips` synthetic test clips encoded as in training: distance to eager fp32 and MPJPE vs ground truth, mm;
- the settings are timed interleaved (median latency per clip, ratio to eager fp32 at the same thread count);
- for the first model: where the time goes, from torch.profiler (by op kind), forward hooks (by module kind) and
  onnxruntime's own profiler (by op type).
"""
from __future__ import annotations
import argparse, os, sys, tempfile, time
from pathlib import Path
from inference import run_folder   # benchmarks/inference.py: a run folder holding a model


STUDY_MODELS = ('dstformer-lite', 'stmo-small')   # the first is profiled; both get the settings table
STUDY_TRAIN = 'dstformer-lite=96,stmo-small=2048'  # brief training (T=27 clips): ~1 min on 2 idle cores; MPJPE 259 / 119 mm
STUDY_SMOKE_TRAIN = 'dstformer-lite=0,stmo-small=256'


def _md(head: tuple, rows: list) -> str:
    "A markdown pipe table (first column left-aligned, the others right-aligned)."
    rows = [tuple(str(c) for c in r) for r in rows]
    w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: '| ' + ' | '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) + ' |'
    return '\n'.join([line(head), '|' + '|'.join('-' * (x + 2) if i == 0 else '-' * (x + 1) + ':' for i, x in enumerate(w)) + '|']
                     + [line(r) for r in rows])


def _study_config(out: Path, model: str, clip_len: int, epochs: int, fraction: float, bs: int, threads: int, frames_per_seq: int):
    "The training config of one study model: the embedded synthetic data, stage 'scratch' only, on the CPU."
    from hpe_pretrain.train.config import load_config
    return load_config(['stages=[scratch]', f'model={model}', f'data.clip_len={clip_len}', f'data.stride={clip_len}',
                        f'data.synthetic.frames_per_seq={frames_per_seq}', f'scratch.epochs={max(epochs, 1)}',
                        f'scratch.fraction={fraction}', f'train.bs={bs}', 'train.tensorboard=false', 'run.device=cpu',
                        f'run.num_threads={threads}', f'run.out_dir={out}', f'run.name={model}'])


def _n_train_clips(cache: Path, clip_len: int) -> int:
    "Training clips of `clip_len` frames at stride `clip_len` in the cache's train split (as the loader cuts them)."
    from hpe_pretrain.data.cache import PoseCache
    with PoseCache(cache) as c:
        L = c.seqs.length[c.select(split='train')]
    return int(sum((n - clip_len) // clip_len + 1 for n in L if n >= clip_len))


def _study_run(out: Path, model: str, train: dict, cache: Path, threads: int, frames_per_seq: int) -> tuple[Path, str]:
    "A run folder of `model`, briefly trained from scratch on the synthetic data (no validation), or random-init (0 clips)."
    import torch
    from fastai.callback.core import Callback, CancelValidException
    from fastai.callback.progress import ProgressCallback
    from hpe_pretrain.data.loaders import pose_dataloaders
    from hpe_pretrain.data.skeleton import get_skeleton
    from hpe_pretrain.train.callbacks import fit_scheduled
    from hpe_pretrain.train.learner import pose_learner
    from hpe_pretrain.train.pipeline import stage_model, stage_transforms
    T, bs, clips, epochs = train.get('clip_len', 27), train.get('bs', 16), train.get('clips', 0), train.get('epochs', 1)
    if not clips or not epochs:
        return run_folder(out/'random', model)[0].path, 'random-init weights (not trained)'
    class NoValidation(Callback):   # the study measures accuracy on its own T=243 test clips afterwards
        def before_validate(self): raise CancelValidException()
    cfg = _study_config(out, model, T, epochs, 1.0, bs, threads, frames_per_seq)
    torch.set_num_threads(threads)
    dls = pose_dataloaders(cache, clip_len=T, stride=T, bs=bs, fraction=min(1.0, clips / _n_train_clips(cache, T)), seed=0,
                           device='cpu', after_batch=stage_transforms(cfg, 'scratch'))
    torch.manual_seed(0)
    learn = pose_learner(dls, stage_model(cfg, 'scratch'), 'lift', loss_weights=dict(cfg.loss),
                         bones=get_skeleton(cfg.data.joints).bones, clip_grad=cfg.train.clip_grad, wd=cfg.train.wd)
    learn.remove_cb(ProgressCallback); learn.logger = lambda *a: None
    t0 = time.perf_counter()
    fit_scheduled(learn, epochs, cfg.scratch.lr, cfg.train.schedule, pct_start=cfg.train.pct_start, cbs=[NoValidation()])
    n = len(dls.train.dataset)
    run, _ = run_folder(out, model, learn.model.model, T)
    return run.path, (f"trained from scratch on the synthetic data: {n} clips of T={T}, bs {bs}, {epochs} epoch(s) "
                      f"({epochs * -(-n // bs)} steps, one-cycle lr {cfg.scratch.lr:g}), final training loss "
                      f"{float(learn.recorder.losses[-1]):.3f}, {time.perf_counter() - t0:.0f} s")


def _eval_clips(cache: Path, n: int, T: int):
    "`n` test clips (first `T` frames of evenly spread test sequences): model input as in training, ground truth in mm."
    import numpy as np
    from hpe_pretrain.data.cache import PoseCache
    from hpe_pretrain.data.skeleton import get_skeleton
    from hpe_pretrain.train.evaluate import screen_input
    from hpe_pretrain.transforms.normalize import root_relative
    with PoseCache(cache) as c:
        idx = [int(i) for i in c.select(split='test') if c.seqs.length[i] >= T]
        if len(idx) < n: raise ValueError(f"{cache}: {len(idx)} test sequences of >= {T} frames, {n} wanted (--frames-per-seq)")
        root = get_skeleton(c.joints).root
        xs, gts = [], []
        for i in [idx[k] for k in np.linspace(0, len(idx) - 1, n).round().astype(int)]:
            s = c.sequence(i)
            xs.append(screen_input(s)[:T]); gts.append(root_relative(np.asarray(s.joints_3d[:T], np.float64), root) * 1000)
    return np.stack(xs).astype(np.float32), np.stack(gts), root


def _plain_linears(m):
    "A copy of `m` whose `Linear` subclasses (hpe_pretrain's oneDNN `Linear`) are plain `nn.Linear` with the same weights."
    import copy, torch.nn as nn
    m = copy.deepcopy(m)
    for mod in list(m.modules()):
        for cn, ch in list(mod.named_children()):
            if isinstance(ch, nn.Linear) and type(ch) is not nn.Linear:   # quantize_dynamic swaps exact nn.Linear only
                new = nn.Linear(ch.in_features, ch.out_features, bias=ch.bias is not None)
                new.load_state_dict(ch.state_dict()); setattr(mod, cn, new)
    return m


def _state_mb(m) -> float:
    "Size of `m`'s state dict as torch.save writes it, MiB."
    import io, torch
    b = io.BytesIO(); torch.save(m.state_dict(), b); return len(b.getvalue()) / 2**20


def _eager_settings(m, threads: list[int], pt2: Path | None = None) -> list[dict]:
    "Eager PyTorch settings: fp32 (every thread count, also with F.linear and as a .pt2 program), bf16, dynamic int8 Linear."
    import contextlib, copy, torch, torch.nn as nn
    from hpe_pretrain.models.export import load_pt2
    def runner(model, cast=None, autocast=False, onednn=True):
        def f(x):
            t = torch.from_numpy(x)
            with torch.inference_mode(), (contextlib.nullcontext() if onednn else torch.backends.mkldnn.flags(enabled=False)):
                if autocast:
                    with torch.autocast('cpu', dtype=torch.bfloat16): y = model(t)
                else: y = model(t if cast is None else t.to(cast))
            return y.float().numpy()
        return f
    n0, fp32 = threads[0], _state_mb(m)
    rows = [dict(setting='eager fp32', runtime='eager', threads=n, fn=runner(m), mb=fp32, ref=True) for n in threads]
    rows += [dict(setting='eager fp32, Linear as F.linear (oneDNN off)', runtime='eager', threads=n, fn=runner(m, onednn=False), mb=fp32)
             for n in threads]
    if pt2 is not None:
        prog, _ = load_pt2(pt2)
        rows += [dict(setting='torch.export program (.pt2) fp32', runtime='pt2', threads=n, fn=runner(prog), mb=pt2.stat().st_size / 2**20)
                 for n in threads]
    rows.append(dict(setting='eager bf16 autocast (fp32 weights)', runtime='eager', threads=n0, fn=runner(m, autocast=True), mb=fp32, lowp=True))
    bf = copy.deepcopy(m).to(torch.bfloat16)
    rows.append(dict(setting='eager bf16 weights + input', runtime='eager', threads=n0, fn=runner(bf, torch.bfloat16), mb=_state_mb(bf), lowp=True))
    try:
        from torch.ao.quantization import quantize_dynamic
        q = quantize_dynamic(_plain_linears(m), {nn.Linear}, dtype=torch.qint8)
        rows.append(dict(setting='eager dynamic int8 Linear (quantize_dynamic qint8)', runtime='eager', threads=n0, fn=runner(q), mb=_state_mb(q), lowp=True))
    except Exception as e:
        rows.append(dict(setting='eager dynamic int8 Linear (quantize_dynamic qint8)', runtime='eager', threads=n0, fn=None, lowp=True,
                         note=f'unavailable: {type(e).__name__}: {str(e)[:120]}'))
    return rows


def _ort_session(path: Path, threads: int, level: str = 'ORT_ENABLE_ALL', profile: Path | None = None, optimized: Path | None = None):
    "A CPU onnxruntime session with `threads` intra-op threads and graph optimisation `level`."
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1; so.log_severity_level = 3
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    if profile is not None: so.enable_profiling = True; so.profile_file_prefix = str(profile)
    if optimized is not None: so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])


def _fp16_onnx(src: Path, dst: Path) -> str:
    "Write an fp16-weight copy of `src` (inputs and outputs stay float32); what converted it."
    import onnx
    try: from onnxruntime.transformers.float16 import convert_float_to_float16; how = 'onnxruntime.transformers.float16'
    except ImportError:
        from onnxconverter_common.float16 import convert_float_to_float16; how = 'onnxconverter_common.float16'
    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))
    return how


def _ort_settings(onnx_path: Path, d: Path, threads: list[int]) -> list[dict]:
    "onnxruntime settings: 4 graph optimisation levels, more threads, fp16 weights, dynamic int8 quantisation (QInt8, QUInt8)."
    import logging
    n0 = threads[0]
    def add(rows, setting, path, n=n0, level='ORT_ENABLE_ALL'):
        lowp = path != onnx_path
        try:
            s = _ort_session(path, n, level)
            rows.append(dict(setting=setting, runtime='onnxruntime', threads=n, mb=Path(path).stat().st_size / 2**20, lowp=lowp,
                             fn=lambda x, s=s: s.run(None, {'x': x})[0]))
        except Exception as e:
            rows.append(dict(setting=setting, runtime='onnxruntime', threads=n, fn=None, lowp=lowp, note=f'unavailable: {type(e).__name__}: {str(e).splitlines()[0][:160]}'))
    rows = []
    for lvl in ('ORT_DISABLE_ALL', 'ORT_ENABLE_BASIC', 'ORT_ENABLE_EXTENDED', 'ORT_ENABLE_ALL'):
        add(rows, f'onnxruntime fp32, {lvl[4:].lower().replace("_", " ")}', onnx_path, level=lvl)
    for n in threads[1:]: add(rows, 'onnxruntime fp32, enable all', onnx_path, n=n)
    try: how = _fp16_onnx(onnx_path, d/'fp16.onnx'); add(rows, f'onnxruntime fp16 weights ({how}, fp32 I/O)', d/'fp16.onnx')
    except Exception as e:
        rows.append(dict(setting='onnxruntime fp16 weights', runtime='onnxruntime', threads=n0, fn=None, lowp=True,
                         note=f'unavailable: {type(e).__name__}: {str(e).splitlines()[0][:160]}'))
    try:
        from onnxruntime.quantization import quantize_dynamic, QuantType
        logging.getLogger().setLevel(logging.ERROR)   # its advice to pre-process the model first
        for qt, rr in (('QInt8', False), ('QInt8', True), ('QUInt8', False)):   # reduce_range: 7-bit weights (no u8s8
            q = d/f'dyn_{qt}{"_rr" * rr}.onnx'                                   # saturation on AVX2 without VNNI)
            quantize_dynamic(str(onnx_path), str(q), weight_type=getattr(QuantType, qt), reduce_range=rr)
            add(rows, f'onnxruntime dynamic int8 quantisation ({qt} weights{", reduce_range" * rr})', q)
    except Exception as e:
        rows.append(dict(setting='onnxruntime dynamic int8 quantisation', runtime='onnxruntime', threads=n0, fn=None, lowp=True,
                         note=f'unavailable: {type(e).__name__}: {str(e).splitlines()[0][:160]}'))
    return rows


def _accuracy(rows: list[dict], xs, gts, root: int) -> None:
    "Run every setting on every clip (B=1; also the warm-up): distance to eager fp32 and MPJPE vs ground truth, mm."
    import numpy as np
    ref = None
    for r in rows:
        if r['fn'] is None: continue
        y = np.concatenate([r['fn'](x[None]) for x in xs]).astype(np.float64) * 1000      # (N, T, J, 3) mm
        if ref is None: ref = y                                                            # rows[0]: eager fp32
        dist = np.linalg.norm(y - ref, axis=-1)
        err = np.linalg.norm(y - y[..., root:root + 1, :] - gts, axis=-1)
        r.update(d_max=dist.max(), d_mean=dist.mean(), abs_max=np.abs(y - ref).max(), mpjpe=err.mean())
        print(f"  accuracy: {r['setting']} ({r['threads']} thr) done", file=sys.stderr, flush=True)


def _time_settings(rows: list[dict], x, rounds: int, calls: int) -> None:
    "Interleaved timing: each round calls every setting `calls` times on `x`; median seconds per call into r['ms']."
    import statistics, torch
    live = [r for r in rows if r['fn'] is not None]
    times = {id(r): [] for r in live}
    for k in range(rounds):
        for r in live:
            torch.set_num_threads(r['threads'])
            for _ in range(calls):
                t0 = time.perf_counter(); r['fn'](x); times[id(r)].append(time.perf_counter() - t0)
        print(f"  timing round {k + 1}/{rounds} done", file=sys.stderr, flush=True)
    for r in live: r['ms'] = statistics.median(times[id(r)]) * 1e3; r['n'] = len(times[id(r)])


def _settings_table(rows: list[dict]) -> str:
    "The settings table: median latency, speed vs eager fp32 at the same threads, size, accuracy in mm."
    ref = {r['threads']: r['ms'] for r in rows if r.get('ref') and 'ms' in r}
    out = []
    for r in rows:
        if r['fn'] is None: out.append((r['setting'], r['runtime'], r['threads'], r['note'], '', '', '', '', '', '')); continue
        fp = next(q for q in rows if q.get('ref'))
        sp = ref.get(r['threads'])
        out.append((r['setting'], r['runtime'], r['threads'], f"{r['ms']:.1f}", f"{sp / r['ms']:.2f}x" if sp else '-',
                    f"{r['mb']:.1f}", f"{r['d_mean']:.3f}", f"{r['d_max']:.3f}", f"{r['mpjpe']:.2f}", f"{r['mpjpe'] - fp['mpjpe']:+.3f}"))
    return _md(('setting', 'runtime', 'thr', 'ms/clip (median)', 'vs eager fp32 (same thr)', 'weights MiB',
                'mean dist to fp32 mm', 'max dist to fp32 mm', 'MPJPE mm', 'ΔMPJPE mm'), out)


_TORCH_OPS = {   # torch.profiler op (without 'aten::') -> kind; self CPU time
    # the package's Linear is a 1x1 conv2d: oneDNN (mkldnn_convolution) with 2+ threads; with 1 thread and batch < 16
    # PyTorch picks its THNN path (_slow_conv2d_forward), a plain GEMM for 1x1 kernels
    'matmul / linear': {'addmm', 'mm', 'bmm', 'matmul', 'linear', 'baddbmm', 'mkldnn_convolution', 'convolution',
                        '_convolution', 'conv2d', '_slow_conv2d_forward', 'quantized::linear_dynamic'},
    'attention kernel (fused SDPA: QK^T, softmax, ·V)': {'_scaled_dot_product_flash_attention_for_cpu', 'scaled_dot_product_attention',
                                                          '_scaled_dot_product_attention_math', '_scaled_dot_product_flash_attention'},
    'softmax': {'softmax', '_softmax'},
    'layer norm': {'layer_norm', 'native_layer_norm'},
    'gelu': {'gelu'},
    'copies, reshapes, permutes': {'copy_', 'clone', 'contiguous', 'reshape', 'view', 'permute', 'transpose', 'as_strided',
                                   '_unsafe_view', 'cat', 'slice', 'select', 'expand', 'unbind', 'split', 'empty', 'empty_like',
                                   'empty_strided', 't', 'unsqueeze', 'squeeze', 'resize_', 'to', '_to_copy', 'detach', 'alias'},
    'elementwise (add, mul, tanh, ...)': {'add', 'mul', 'sub', 'div', 'tanh', 'add_', 'mul_', 'sum', 'mean'},
}
_ORT_MATMULS = ('MatMul', 'Gemm', 'FusedMatMul', 'FusedGemm', 'MatMulInteger', 'MatMulIntegerToFloat', 'DynamicQuantizeMatMul')
_ORT_OPS = {
    'matmul / linear': {'MatMul (x weights)', 'Gemm (x weights)', 'FusedMatMul (x weights)', 'FusedGemm (x weights)',
                        'MatMulInteger (x weights)', 'MatMulIntegerToFloat (x weights)', 'DynamicQuantizeMatMul (x weights)'},
    'attention matmuls (QK^T, ·V)': {'MatMul (attention: QK^T, ·V)', 'FusedMatMul (attention: QK^T, ·V)'},
    'softmax': {'Softmax'},
    'layer norm': {'LayerNormalization', 'SkipLayerNormalization', 'SimplifiedLayerNormalization'},
    'gelu': {'Gelu', 'BiasGelu', 'FastGelu', 'Erf'},
    'quantise activations': {'DynamicQuantizeLinear', 'QuantizeLinear', 'DequantizeLinear'},
    'copies, reshapes, transposes': {'Transpose', 'Reshape', 'Concat', 'Slice', 'Split', 'Squeeze', 'Unsqueeze', 'Gather',
                                     'Expand', 'Identity', 'Cast', 'Shape', 'ConstantOfShape', 'Flatten'},
    'elementwise (add, mul, tanh, ...)': {'Add', 'Mul', 'Sub', 'Div', 'Tanh', 'Sqrt', 'Pow', 'ReduceMean', 'ReduceSum'},
}


def _kind(op: str, kinds: dict) -> str:
    return next((k for k, ops in kinds.items() if op in ops), 'other')


def _share_tables(by_op: dict, kinds: dict, total: float, what: str, top: int = 12) -> str:
    "Time share by kind and the `top` ops (microseconds in, percent of `total` out)."
    by_kind = {}
    for op, t in by_op.items(): by_kind[_kind(op, kinds)] = by_kind.get(_kind(op, kinds), 0) + t
    gap = total - sum(by_op.values())
    if gap > 0: by_kind['(outside kernels: framework, idle)'] = gap
    a = _md((f'{what}: kind', 'ms per call', 'share'),
            [(k, f'{t / 1e3:.1f}', f'{100 * t / total:.1f} %') for k, t in sorted(by_kind.items(), key=lambda kv: -kv[1])])
    b = _md((f'{what}: op', 'kind', 'ms per call', 'share'),
            [(o, _kind(o, kinds), f'{t / 1e3:.1f}', f'{100 * t / total:.1f} %') for o, t in sorted(by_op.items(), key=lambda kv: -kv[1])[:top]])
    return a + '\n\n' + b


def _torch_profile(m, x, threads: int, calls: int, flops: dict | None = None) -> str:
    "torch.profiler of eager calls: self CPU time by op kind and op (per call)."
    import contextlib, io, torch
    from torch.profiler import profile, ProfilerActivity
    torch.set_num_threads(threads); t = torch.from_numpy(x)
    with torch.inference_mode():
        m(t)
        with contextlib.redirect_stdout(io.StringIO()), profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for _ in range(calls): m(t)
            wall = (time.perf_counter() - t0) / calls * 1e6
    by_op = {}
    for e in prof.key_averages():
        k = e.key.split('::', 1)[1] if e.key.startswith('aten::') else e.key
        by_op[k] = by_op.get(k, 0) + e.self_cpu_time_total / calls
    lin = sum(t for o, t in by_op.items() if _kind(o, _TORCH_OPS) == 'matmul / linear')
    att = sum(t for o, t in by_op.items() if _kind(o, _TORCH_OPS).startswith('attention'))
    rate = (f"; per call {flops['linear'] / 1e9:.0f} GFLOP in Linear layers, run at {flops['linear'] / lin / 1e3:.0f} GFLOP/s, "
            f"{flops['attention'] / 1e9:.1f} GFLOP in attention, at {flops['attention'] / att / 1e3:.0f} GFLOP/s") if flops and lin and att else ''
    return f"eager fp32, {threads} thread(s), {calls} profiled call(s): {wall / 1e3:.0f} ms per call under the profiler{rate}\n\n" + \
           _share_tables(by_op, _TORCH_OPS, max(wall, sum(by_op.values())), 'eager (torch.profiler, self CPU time)')


def _module_kind(name: str, mod) -> str | None:
    "The kind a DSTformer/STMO submodule's time is counted under (None: not timed on its own)."
    from hpe_pretrain.models.layers import Attention, MLP, StreamFusion
    import torch.nn as nn
    if isinstance(mod, Attention): return 'spatial attention (qkv, SDPA, proj)' if mod.axis == 'joints' else 'temporal attention (qkv, SDPA, proj)'
    if isinstance(mod, MLP): return 'MLP (fc1, GELU, fc2)'
    if isinstance(mod, StreamFusion): return 'stream fusion'
    if isinstance(mod, nn.LayerNorm) and '.' in name: return 'block LayerNorms'
    if '.' not in name and name: return 'embedding / head (incl. final norm)' if not isinstance(mod, nn.ModuleList) else None
    return None


def _module_times(m, x, threads: int, calls: int) -> str:
    "Wall time by module kind from forward hooks (no profiler), per call; the rest is residual adds and glue."
    import torch
    kinds, hooked = {}, []
    for name, mod in m.named_modules():
        k = _module_kind(name, mod)
        if k is None or any(name.startswith(h + '.') for h in hooked): continue
        hooked.append(name); kinds[mod] = k
    acc, t0s, hs = {}, {}, []
    for mod, k in kinds.items():
        hs.append(mod.register_forward_pre_hook(lambda mo, a: t0s.__setitem__(mo, time.perf_counter())))
        hs.append(mod.register_forward_hook(lambda mo, a, y, k=k: acc.__setitem__(k, acc.get(k, 0) + time.perf_counter() - t0s[mo])))
    torch.set_num_threads(threads); t = torch.from_numpy(x)
    try:
        with torch.inference_mode():
            m(t); acc.clear(); t0 = time.perf_counter()
            for _ in range(calls): m(t)
            total = (time.perf_counter() - t0) / calls
    finally:
        for h in hs: h.remove()
    acc = {k: v / calls for k, v in acc.items()}
    acc['residual adds, glue (not in a timed module)'] = max(total - sum(acc.values()), 0)
    return _md(('eager fp32 by module kind (forward hooks)', 'ms per call', 'share'),
               [(k, f'{v * 1e3:.1f}', f'{100 * v / total:.1f} %') for k, v in sorted(acc.items(), key=lambda kv: -kv[1])])


def _ort_profile(onnx_path: Path, x, threads: int, calls: int, d: Path, flops: dict | None = None) -> str:
    "onnxruntime's own profiling (SessionOptions.enable_profiling): kernel time by op type, per call (after one warm-up)."
    import json, onnx
    opt = d/'ort_optimized.onnx'   # the graph as optimised: which MatMul nodes multiply by a weight (an initializer)
    s = _ort_session(onnx_path, threads, profile=d/'ort_profile', optimized=opt)
    for _ in range(calls + 1): s.run(None, {'x': x})
    ev = json.loads(Path(s.end_profiling()).read_text())
    g = onnx.load(str(opt), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    weighted = {n.name for n in g.node if any(i in inits for i in n.input)}
    runs = sorted((e for e in ev if e.get('name') == 'model_run'), key=lambda e: e['ts'])
    if len(runs) < calls + 1: return f'(onnxruntime profile: {len(runs)} model_run events, expected {calls + 1})'
    start = runs[1]['ts']
    by_op = {}
    for e in ev:
        if e.get('cat') == 'Node' and e.get('name', '').endswith('_kernel_time') and e['ts'] >= start:
            op = e.get('args', {}).get('op_name', '?')
            if op in _ORT_MATMULS: op += ' (x weights)' if e['name'][:-len('_kernel_time')] in weighted else ' (attention: QK^T, ·V)'
            by_op[op] = by_op.get(op, 0) + e['dur'] / calls
    total = sum(e['dur'] for e in runs[1:]) / calls
    lin = sum(t for o, t in by_op.items() if o.endswith('(x weights)'))
    rate = f"; the weight MatMuls run at {flops['linear'] / lin / 1e3:.0f} GFLOP/s" if flops and lin else ''
    return f"onnxruntime fp32 (enable all), {threads} thread(s), {calls} profiled call(s): {total / 1e3:.0f} ms per model_run{rate}\n\n" + \
           _share_tables(by_op, _ORT_OPS, total, 'onnxruntime (its profiler, kernel time)')


def _flops(m, x) -> dict:
    "FLOPs of one forward call (2 per multiply-add) in the Linear layers and in attention (QK^T and ·V)."
    import torch, torch.nn as nn
    from hpe_pretrain.models.layers import Attention
    out, hs = dict(linear=0, attention=0), []
    def lin(mod, a, y): out['linear'] += 2 * a[0].numel() // mod.in_features * mod.in_features * mod.out_features
    def att(mod, a, y):
        B, T, J, C = a[0].shape; n, L = (B * T, J) if mod.axis == 'joints' else (B * J, T)
        out['attention'] += 2 * 2 * n * L * L * C
    for mod in m.modules():
        if isinstance(mod, nn.Linear): hs.append(mod.register_forward_hook(lin))
        elif isinstance(mod, Attention): hs.append(mod.register_forward_hook(att))
    try:
        with torch.inference_mode(): m(torch.from_numpy(x))
    finally:
        for h in hs: h.remove()
    return out


def study(threads: list[int], rounds: int = 5, calls: int = 1, n_clips: int = 8, T: int = 243, profile_calls: int = 2,
          train: dict | None = None, frames_per_seq: int = 250, models: tuple = STUDY_MODELS) -> int:
    "The --study: where eager/onnxruntime time goes (first model) and every export/precision setting vs eager fp32."
    import warnings, torch
    warnings.filterwarnings('ignore')   # export, quantisation and fp16 conversion warn a lot; errors still raise
    from hpe_pretrain.train.lifting import export_lifting_model, load_lifting_model
    from hpe_pretrain.train.pipeline import ensure_cache
    train = train or {}
    t_all = time.perf_counter()
    print(f"# study: B=1, T={T}; torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {rounds} rounds x {calls} call(s)")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        cache = ensure_cache(_study_config(d, models[0], 27, 1, 1.0, 8, threads[0], frames_per_seq).data, d, progress=False)
        xs, gts, root = _eval_clips(cache, n_clips, T)
        for mi, name in enumerate(models):
            t0 = time.perf_counter()
            run, how = _study_run(d, name, train.get(name, {}), cache, max(threads), frames_per_seq)
            m = load_lifting_model(run, device='cpu').model.eval()
            with _quiet_stdout():
                onnx_path = export_lifting_model(run, 'onnx', out=d/f'{name}.onnx', clip_len=T, verbose=False)
                pt2_path = export_lifting_model(run, 'pt2', out=d/f'{name}.pt2', clip_len=T, verbose=False)
            print(f"\n## {name}: {how}; exported to ONNX ({onnx_path.stat().st_size / 2**20:.1f} MiB); "
                  f"accuracy on {n_clips} synthetic test clips of T={T} (screen-normalised 2D + confidence, as in training)",
                  flush=True)
            rows = _eager_settings(m, threads, pt2_path) + _ort_settings(onnx_path, d, threads)
            rows = [r for r in rows if not r.get('lowp')] + [r for r in rows if r.get('lowp') and r['runtime'] != 'eager'] + \
                   [r for r in rows if r.get('lowp') and r['runtime'] == 'eager']   # eager fp32 first: the reference
            _accuracy(rows, xs, gts, root)
            _time_settings(rows, xs[:1], rounds, calls)
            print('\n' + _settings_table(rows), flush=True)
            if mi == 0:
                print('\n### where the time goes\n')
                fl = _flops(m, xs[:1])
                print(_torch_profile(m, xs[:1], threads[0], profile_calls, fl), end='\n\n')
                print(_module_times(m, xs[:1], threads[0], profile_calls), end='\n\n')
                print(_ort_profile(onnx_path, xs[:1], threads[0], profile_calls, d, fl), flush=True)
            print(f"\n({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n# study done in {time.perf_counter() - t_all:.0f} s")
    return 0


def _quiet_stdout():
    "Silence stdout (the exporters print progress)."
    import contextlib, io
    return contextlib.redirect_stdout(io.StringIO())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', default=','.join(STUDY_MODELS), help='comma-separated shipped model names (the first is profiled)')
    p.add_argument('--threads', default='1,2', help='comma-separated CPU thread counts: fp32 settings at each, the others at the first')
    p.add_argument('--frames', type=int, default=243, help='clip length T')
    p.add_argument('--rounds', type=int, default=5, help='timed rounds over all settings (after one warm-up round); 1: the smoke run')
    p.add_argument('--calls', type=int, default=1, help='calls per setting per round')
    p.add_argument('--clips', type=int, default=None, help='synthetic test clips for the accuracy check (default 4; --rounds 1: 1)')
    p.add_argument('--train-clips', default=None, help="training clips (T=27) per model, 0: random-init weights (default "
                   f"'{STUDY_TRAIN}'; --rounds 1: '{STUDY_SMOKE_TRAIN}')")
    p.add_argument('--train-epochs', default='dstformer-lite=1,stmo-small=3', help='training epochs per model')
    p.add_argument('--frames-per-seq', type=int, default=250, help='frames per synthetic sequence (>= T)')
    a = p.parse_args(argv)
    ints = lambda s: [int(v) for v in s.split(',')]
    os.environ.setdefault('OMP_NUM_THREADS', str(max(ints(a.threads))))
    kv = lambda s: {k: int(v) for k, v in (x.split('=') for x in s.split(',') if x)}
    smoke = a.rounds <= 1
    clips, epochs = kv(a.train_clips or (STUDY_SMOKE_TRAIN if smoke else STUDY_TRAIN)), kv(a.train_epochs)
    models = tuple(a.models.split(','))
    train = {m: dict(clip_len=27, bs=8 if m.startswith('dstformer') else 64, clips=clips.get(m, 0),
                     epochs=1 if smoke else epochs.get(m, 1)) for m in models}
    return study(ints(a.threads), a.rounds, a.calls, a.clips or (1 if smoke else 4), a.frames, train=train,
                 frames_per_seq=a.frames_per_seq, models=models)


if __name__ == '__main__':
    sys.exit(main())
