"""Models in and out: MotionBERT checkpoints into `create_model` / `fit`, and `hpe-pretrain export` (ONNX, pt2)."""
import json
from pathlib import Path
import pytest
import torch

from hpe_pretrain.data.files import RunDir, list_configs
from hpe_pretrain.models.factory import create_model, finetune_model_config, model_config
from hpe_pretrain.models.export import export_model, sha256_file
from hpe_pretrain.train.cli import main
from hpe_pretrain.train.config import load_config, save_config


def motionbert_layout(dim_feat=32, mlp_ratio=2, depth=1, dim_rep=32, J=17, maxlen=27, out=3, seed=0):
    "A random state dict with MotionBERT's DSTformer names and shapes (written out, not derived from the package's mapping)."
    g = torch.Generator().manual_seed(seed); r = lambda *s: torch.randn(*s, generator=g) * 0.05
    C, h = dim_feat, int(dim_feat * mlp_ratio)
    sd = {'joints_embed.weight': r(C, 3), 'joints_embed.bias': r(C), 'pos_embed': r(1, J, C), 'temp_embed': r(1, maxlen, 1, C)}
    for stream in ('blocks_st', 'blocks_ts'):
        for i in range(depth):
            for a in 'st':
                b = f'{stream}.{i}.'
                sd |= {b+f'norm1_{a}.weight': 1 + r(C), b+f'norm1_{a}.bias': r(C), b+f'attn_{a}.qkv.weight': r(3*C, C),
                       b+f'attn_{a}.qkv.bias': r(3*C), b+f'attn_{a}.proj.weight': r(C, C), b+f'attn_{a}.proj.bias': r(C),
                       b+f'norm2_{a}.weight': 1 + r(C), b+f'norm2_{a}.bias': r(C), b+f'mlp_{a}.fc1.weight': r(h, C),
                       b+f'mlp_{a}.fc1.bias': r(h), b+f'mlp_{a}.fc2.weight': r(C, h), b+f'mlp_{a}.fc2.bias': r(C)}
    for i in range(depth): sd |= {f'ts_attn.{i}.weight': r(2, 2*C), f'ts_attn.{i}.bias': r(2)}
    sd |= {'norm.weight': 1 + r(C), 'norm.bias': r(C), 'pre_logits.fc.weight': r(dim_rep, C), 'pre_logits.fc.bias': r(dim_rep),
           'head.weight': r(out, dim_rep), 'head.bias': r(out)}
    return sd


def save_motionbert(path, sd):
    "As MotionBERT's train.py saves: `model_pos` with `module.` prefixes, optimizer state, epoch, lr, min_loss."
    p = torch.nn.Parameter(torch.zeros(4)); opt = torch.optim.AdamW([p], lr=1e-3); p.grad = torch.ones(4); opt.step()
    torch.save({'epoch': 3, 'lr': 1e-3, 'optimizer': opt.state_dict(),
                'model_pos': {f'module.{k}': v for k, v in sd.items()}, 'min_loss': 41.5}, path)


def make_run(d, model, seed=0):
    "A run folder like `fit` leaves (config.yaml, models/finetune_best.pth) holding a freshly created model."
    run = RunDir(Path(d)/model); cfg = load_config([f'model={model}', 'data.clip_len=27'])
    save_config(cfg, run.config)
    torch.manual_seed(seed); m = create_model(finetune_model_config(dict(cfg.model))).eval()
    run.models.mkdir(parents=True, exist_ok=True)
    torch.save({'model': {f'model.{k}': v for k, v in m.state_dict().items()}, 'epoch': 0}, run.checkpoint('finetune', 'best'))
    return run, m


@pytest.mark.parametrize('model', ['dstformer-tiny', 'stmo-tiny'])
def test_export_both_formats_match_eager(tmp_path, model):
    ort = pytest.importorskip('onnxruntime')
    run, m = make_run(tmp_path, model)
    p = export_model(run.path, 'onnx', verbose=False)
    q = export_model(run.path, 'pt2', verbose=False)
    sess = ort.InferenceSession(str(p), providers=['CPUExecutionProvider'])
    prog = torch.export.load(q).module()
    for shape in [(1, 27), (6, 27), (2, 5)]:
        x = torch.randn(*shape, 17, 3)
        with torch.no_grad(): ref = m(x)
        assert abs(sess.run(None, {'x': x.numpy()})[0] - ref.numpy()).max() <= 1e-4
        assert (prog(x) - ref).abs().max().item() <= 1e-4
    for f in (p, q):
        side = json.loads(f.with_name(f.name + '.json').read_text())
        assert side['sha256'] == sha256_file(f) and side['model'] == model and side['joints'] == 'h36m17'
        assert side['input']['convention']['input_channels'] == ['x', 'y', 'confidence'] and side['output']['units'] == 'metres'
        assert side['check']['max_abs_diff'] <= 1e-4 and side['source']['sha256'] == sha256_file(run.checkpoint('finetune', 'best'))


def test_export_cli_errors(tmp_path, capsys):
    (tmp_path/'run').mkdir()
    assert main(['export', '--checkpoint', str(tmp_path/'run')]) == 2
    assert 'no finetune/scratch checkpoint' in capsys.readouterr().err
    run, _ = make_run(tmp_path, 'dstformer-tiny')
    assert main(['export', '--checkpoint', str(run.path), '--format', 'onnx', '--out', str(tmp_path/'m.onnx'), '--clip-len', '9']) == 0
    assert json.loads((tmp_path/'m.onnx.json').read_text())['input']['frames'] == 'dynamic, 1..27'


def test_motionbert_file_exports(tmp_path):
    "A MotionBERT checkpoint (not in a run) exports too: config from the shapes, its head, its output space stated."
    save_motionbert(tmp_path/'best_epoch.bin', motionbert_layout())
    p = export_model(tmp_path/'best_epoch.bin', 'pt2', verbose=False)
    side = json.loads(p.with_name(p.name + '.json').read_text())
    assert p == tmp_path/'best_epoch.pt2' and side['model'] == 'dstformer-tiny' and 'not metres' in side['output']['units']


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
    save_motionbert(tmp_path/'latest_epoch.bin', motionbert_layout())
    rc = main(['fit', '--quick', 'model=dstformer-tiny', f'model.weights={tmp_path}/latest_epoch.bin', 'stages=[finetune,eval]',
               'finetune.epochs=1', 'data.synthetic.frames_per_seq=40', 'train.tensorboard=false', f'run.out_dir={tmp_path}'])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert 'MotionBERT, backbone only' in out and 'head kept as initialised' in out
