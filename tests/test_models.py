"""Fast checks of the model package as installed: shipped configs, the common interface, encoder transfer, and adding
an architecture (one module, one registry entry, one YAML file)."""
import shutil
from types import MappingProxyType

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

import hpe_pretrain.data.paths as paths
import hpe_pretrain.models.factory as factory
import hpe_pretrain.train.config as config
from hpe_pretrain.data.paths import RunDir, list_configs
from hpe_pretrain.data.skeleton import get_skeleton
from hpe_pretrain.models.factory import ARCHITECTURES, check_model_config, create_model, load_encoder, model_config
from hpe_pretrain.models.joints import joint_indexed_params, joint_permutation
from hpe_pretrain.models.losses import CombinedLoss


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    "Tiny models: one thread is fastest, and robust on a shared, busy machine."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_shipped_configs_are_valid():
    names = list_configs("model")
    assert {'dstformer-lite', 'dstformer-base', 'stmo-small', 'stmo-base', 'dstformer-tiny', 'stmo-tiny'} <= set(names)
    for name in names:
        cls, kwargs = check_model_config(model_config(name), name)
        assert cls in ARCHITECTURES.values() and kwargs


@pytest.mark.parametrize('name', ['dstformer-tiny', 'stmo-tiny'])
def test_interface(name):
    torch.manual_seed(0)
    m = create_model(name)
    for T in (1, 5, 27):
        x = torch.randn(2, T, 17, 3)
        assert m(x).shape == (2, T, 17, 3)
        assert m(x, return_rep=True).shape == (2, T, 17, m.dim_rep)
    with pytest.raises(ValueError, match='maxlen=27'): m(torch.randn(1, 28, 17, 3))


def test_mpm_and_transfer():
    torch.manual_seed(0)
    pre = create_model('stmo-tiny')
    x, mask = torch.randn(2, 8, 17, 3), torch.zeros(2, 8, dtype=torch.bool)
    mask[:, :4] = True
    assert pre.forward_mpm(x, mask).shape == (2, 8, 17, 2)
    ft = create_model('stmo-tiny', dec_depth=0)
    rep = load_encoder(ft, pre, verbose=False)
    assert not rep.missing and not rep.mismatched and rep.unexpected
    assert torch.equal(ft(x), pre(x))


def test_unknown_names():
    with pytest.raises(ValueError, match='valid models'): create_model('nope')
    with pytest.raises(ValueError, match='valid keys'): create_model('stmo-tiny', widht=3)
    with pytest.raises(ValueError, match='valid terms'): CombinedLoss({'mpjpe': 1, 'l1': 1})


def test_mixed_precision_forward_and_backward():
    "Both tasks of both architectures under bf16 autocast (a GPU's default precision): finite losses and fp32 gradients."
    from hpe_pretrain.models.layers import Attention
    x, mask = torch.randn(2, 9, 17, 3), torch.zeros(2, 9, dtype=torch.bool)
    mask[:, ::2] = True
    for name in ('stmo-tiny', 'dstformer-tiny'):
        torch.manual_seed(0); m = create_model(name)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = m.forward_mpm(x, mask, n_visible=4) if name.startswith('stmo') else m(x)
            loss = out.float().square().mean() + m(x).float().abs().mean()
        loss.backward()
        assert torch.isfinite(loss) and all(p.grad is None or p.grad.dtype == torch.float32 for p in m.parameters())
    att = Attention(16, 4, 'joints'); xa = torch.randn(3, 7, 5, 16)
    full = att(xa); att.max_batch = 4                       # 21 joint sequences in chunks of 4: the same numbers
    assert torch.equal(att(xa), full)


# --- adding an architecture ---------------------------------------------------------------------------------------------

class ToyLifter(nn.Module):
    "A toy lifting model: per-joint features, one token per frame, per-joint 3D out."
    joint_axes = MappingProxyType({'joint_embed': 1, 'mix.weight': 1, 'head.weight': 0, 'head.bias': 0})  # tensor -> joint axis
    config_ranges = MappingProxyType({'width': (2, 64), 'act': ['relu', 'tanh']})                          # argument -> rule
    def __init__(self, num_joints: int = 17, # joints J
                 width: int = 8,             # channels per joint
                 act: str = 'relu',          # activation: relu | tanh
                 maxlen: int = 243):         # longest clip T
        super().__init__()
        self.num_joints, self.maxlen, self.dim_rep = num_joints, maxlen, width
        self.proj = nn.Linear(3, width)
        self.joint_embed = nn.Parameter(torch.randn(1, num_joints, width))   # (1, J, width)
        self.act = nn.ReLU() if act == 'relu' else nn.Tanh()
        self.mix = nn.Linear(num_joints * width, width)                       # J blocks of `width` inputs
        self.head = nn.Linear(width, num_joints * 3)                          # J blocks of 3 outputs (x, y, z)

    def forward(self, x: torch.Tensor, # (B, T, J, 3)
                return_rep: bool = False, # unused: the toy has no representation of its own
               ) -> torch.Tensor: # (B, T, J, 3)
        B, T, J, _ = x.shape
        h = self.act(self.proj(x) + self.joint_embed)                          # (B, T, J, width)
        return self.head(self.act(self.mix(h.reshape(B, T, J * h.shape[-1])))).view(B, T, J, 3)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Register `ToyLifter` as arch 'toy' with a YAML `configs/models/toy.yaml`, for the test only.
    Every reader of the registry looks up `hpe_pretrain.models.factory.ARCHITECTURES` when called (the factory's functions
    as a module global, `train.schema.model_schema` by importing it in its body), so replacing that module attribute is
    exactly what one more line in the dict does. The YAML goes into a copy of the shipped configs, which the config
    functions are pointed at (`config_dir` of `data.paths`, and the name `train.config` imported from it)."""
    monkeypatch.setattr(factory, 'ARCHITECTURES', MappingProxyType({**ARCHITECTURES, 'toy': ToyLifter}))
    cdir = tmp_path/'configs'
    shutil.copytree(paths.config_dir(), cdir)
    (cdir/'models'/'toy.yaml').write_text("# a toy architecture\narch: toy\nnum_joints: 17\nwidth: 4\nact: tanh\nmaxlen: 27\n")
    for mod in (paths, config): monkeypatch.setattr(mod, 'config_dir', lambda: cdir)
    return tmp_path


def test_toy_architecture(toy, capsys):
    "One module (above), one registry entry and one YAML: the factory, the config system and the weight transfer take it."
    from hpe_pretrain.cli import main
    from hpe_pretrain.train.config import ConfigError, load_config, save_config
    from hpe_pretrain.train.runs import init_from
    # create_model builds it from its YAML, with overrides; unknown keys are refused with the constructor's keys
    m = create_model('toy', width=6)
    assert type(m) is ToyLifter and m.mix.in_features == 17 * 6 and m(torch.randn(2, 5, 17, 3)).shape == (2, 5, 17, 3)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['depth'\] for arch 'toy'; valid keys: num_joints, width, act, maxlen"):
        create_model('toy', depth=2)
    # the config system: types, defaults and help from the constructor, ranges from config_ranges
    cfg = load_config(['model=toy', 'model.width=16'])
    assert (cfg.model.arch, cfg.model.name, cfg.model.width, cfg.model.act, cfg.model.weights) == ('toy', 'toy', 16, 'tanh', None)
    for o, msg in (('model.width=1', "Bad value for model.width: 1 (allowed: between 2 and 64)"),
                   ('model.act=gelu', "Bad value for model.act: 'gelu' (allowed: relu, tanh)"),
                   ('model.width=wide', "Bad value for model.width: 'wide' (expected int, like 4)"),
                   ('model.widht=3', "Unknown config key 'model.widht' (override model.widht=3). Valid keys under model: "
                                     "act, arch, maxlen, name, num_joints, weights, weights_head, width"),
                   ('data.clip_len=81', "data.clip_len=81 is longer than model.maxlen=27")):
        with pytest.raises(ConfigError) as e: load_config(['model=toy', o])
        assert msg in str(e.value), (o, str(e.value))
    # fit --list shows its keys, with the constructor's comments as help
    assert main(['fit', '--list', 'model=toy']) == 0
    rows = {l.split()[0]: l for l in capsys.readouterr().out.splitlines() if l.startswith('model.')}
    assert list(rows) == ['model.arch', 'model.name', 'model.num_joints', 'model.width', 'model.act', 'model.maxlen',
                          'model.weights', 'model.weights_head']
    assert rows['model.width'].split(None, 3) == ['model.width', 'int', '4', 'channels per joint']
    assert rows['model.act'].split(None, 3)[3] == 'activation: relu | tanh'
    # init_from: an h36m17 run's weights start an mpi17 model; the joint-indexed tensors are re-ordered by joint_axes
    assert joint_indexed_params(m) == {'joint_embed': (1, 1), 'mix.weight': (1, 6), 'head.weight': (0, 3), 'head.bias': (0, 3)}
    run = RunDir(toy/'runs'/'h36m')
    saved = load_config(['model=toy', f'run.out_dir={run.path.parent}', 'run.name=h36m'])
    save_config(saved, run.config)
    torch.manual_seed(0); src = create_model(OmegaConf.to_container(saved.model)).eval()
    run.models.mkdir(parents=True)
    torch.save({'model': {f'model.{k}': v for k, v in src.state_dict().items()}}, run.checkpoint('pretrain', 'best'))
    dst = create_model(OmegaConf.to_container(saved.model)).eval()
    rep = init_from(dst, run.path, model_joints='mpi17', exclude=(), verbose=False)
    assert sorted(rep.permuted) == sorted(ToyLifter.joint_axes) and rep.joint_sets == ('h36m17', 'mpi17')
    H, M = get_skeleton('h36m17'), get_skeleton('mpi17')
    assert torch.equal(dst.joint_embed[0, M.index('l_wrist')], src.joint_embed[0, H.index('l_wrist')])
    x, to_mpi = torch.randn(2, 5, 17, 3), (lambda y: y[..., joint_permutation('h36m17', 'mpi17'), :])
    with torch.no_grad(): torch.testing.assert_close(dst(to_mpi(x)), to_mpi(src(x)))   # the same function, in mpi17 order
