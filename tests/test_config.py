"""The typed config schema (`hpe_pretrain.train.config`): wrong types are rejected with the key's name, the model
group is checked against its architecture (its schema built from the model class's constructor), saved configs
round-trip, the schema agrees with the shipped YAML, and `describe_config` lists types and help."""
import dataclasses, inspect, subprocess, sys
import pytest
from omegaconf import OmegaConf
from hpe_pretrain.data.paths import config_dir, list_configs
from hpe_pretrain.train.config import (load_config, load_saved_config, save_config, describe_config, ConfigError,
                                       list_experiments)
from hpe_pretrain.train.schema import Config, model_schema

@pytest.mark.parametrize('override, msg', [
    ('train.bs=abc', "Bad value for train.bs: 'abc' (expected int, like 64)"),
    ('train.bs=1.5', "Bad value for train.bs: '1.5' (expected int"),
    ('train.wd=fast', "Bad value for train.wd: 'fast' (expected float, like 0.01)"),
    ('train.compile=3', "Bad value for train.compile: '3' (expected bool, like False)"),
    ('run.seed=true', "Bad value for run.seed: 'true' (expected int, like 0)"),
    ('run.num_threads=two', "Bad value for run.num_threads: 'two' (expected int or null"),
    ('eval.stride=x', "Bad value for eval.stride: 'x' (expected int or null"),
    ('data.clip_len=long', "Bad value for data.clip_len: 'long' (expected int, like 27)"),
    ('data.synthetic.seed=[1]', "Bad value for data.synthetic.seed: '[1]' (expected int"),
    ('corrupt.mpm.mask_joints=0.5', "Bad value for corrupt.mpm.mask_joints: '0.5' (expected int, like 2)"),
    ('loss.mpjpe=yes', "Bad value for loss.mpjpe: 'yes' (expected float, like 1.0)"),
    ('stages=[pretrain,3]', "Bad value for stages: '[pretrain,3]' (expected list of str"),
    ('train.clip_grad=off', "Bad value for train.clip_grad: 'off' (expected float or null, like 1.0)"),
    ('augment=5', "Bad value for augment: '5' (expected a mapping with keys flip, rotate_deg"),
])
def test_wrong_types_name_the_key(override, msg):
    with pytest.raises(ConfigError) as e: load_config([override])
    assert msg in str(e.value)

def test_values_keep_their_types():
    cfg = load_config(['train.wd=1', 'train.clip_grad=null', 'pretrain.lr=1e-4', 'augment.rotate_deg=5'])
    assert type(cfg.train.wd) is float and cfg.train.clip_grad is None and cfg.pretrain.lr == 1e-4
    assert type(cfg.augment.rotate_deg) is float and type(cfg.train.bs) is int and cfg.eval.stride is None
    assert type(cfg.model.dim) is int and type(cfg.model.mlp_ratio) is float and cfg.stages == ['pretrain', 'finetune', 'eval']
    assert OmegaConf.to_container(cfg.model)['dec_depth'] == 1 and cfg.model.get('arch') == 'stmo'
    assert cfg['finetune'].epochs == 12

def test_model_group_checked_against_its_arch():
    with pytest.raises(ConfigError, match=r"Bad value for model.depth: 'x' \(expected int, like 3\)"): load_config(['model.depth=x'])
    with pytest.raises(ConfigError, match=r"Bad value for model.qkv_bias: '2' \(expected bool"):
        load_config(['model=dstformer-tiny', 'model.qkv_bias=2'])
    with pytest.raises(ConfigError) as e: load_config(['model=dstformer-tiny', 'model.dec_depth=0'])   # an STMO key
    assert "Unknown config key 'model.dec_depth'" in str(e.value) and 'Valid keys under model: arch, attn_drop_rate' in str(e.value)
    with pytest.raises(ConfigError, match=r"model.arch: 'resnet' \(allowed: dstformer, stmo\)"): load_config(['model.arch=resnet'])
    assert load_config(['model=dstformer-tiny', 'model.depth=2']).model.depth == 2

def test_bad_group_file_is_named(tmp_path):
    (tmp_path/'config.yaml').write_text((config_dir()/'config.yaml').read_text().replace('bs: 64', 'bs: lots'))
    with pytest.raises(ConfigError, match=r"config.yaml: Bad value for train.bs: 'lots' \(expected int, like 64\)"):
        load_config(base=tmp_path/'config.yaml')
    (tmp_path/'config.yaml').write_text((config_dir()/'config.yaml').read_text().replace('  bs: 64', '  bs: 64\n  bsz: 1'))
    with pytest.raises(ConfigError, match="Unknown config key 'train.bsz'.*Valid keys under train: bs, checkpoint_activations, clip_grad"):
        load_config(base=tmp_path/'config.yaml')

def test_saved_config_round_trip(tmp_path):
    cfg = load_config(['model=dstformer-tiny', 'data=h36m', 'data.clip_len=27', 'data.subjects=S9,S11', 'train.bs=8', 'eval.stride=9'])
    p = save_config(cfg, tmp_path/'run'/'config.yaml')
    back = load_saved_config(p)
    assert OmegaConf.to_container(back) == OmegaConf.to_container(cfg)
    assert back.data.subjects == ['S9', 'S11'] and back.model.get('arch') == 'dstformer' and back.eval.stride == 9
    assert load_saved_config(p, ['train.bs=16']).train.bs == 16
    with pytest.raises(ConfigError, match="Bad value for train.bs: 'x'"): load_saved_config(p, ['train.bs=x'])

def test_old_saved_config_loads(tmp_path):
    "A config.yaml of a run made before the schema (no reader keys, int where a float is meant) loads with defaults."
    old = OmegaConf.load(config_dir()/'config.yaml')
    old.model, old.data = OmegaConf.load(config_dir()/'models'/'stmo-tiny.yaml'), OmegaConf.load(config_dir()/'data'/'synthetic.yaml')
    old.model.name = 'stmo-tiny'; old.train.wd = 1; del old.run['malloc_tuning']
    OmegaConf.save(old, tmp_path/'config.yaml')
    cfg = load_saved_config(tmp_path/'config.yaml')
    assert cfg.run.malloc_tuning is True and cfg.data.subjects is None and cfg.train.wd == 1.0 and type(cfg.train.wd) is float

def test_schema_defaults_equal_the_shipped_yaml():
    "configs/config.yaml and the schema's defaults agree (the YAML is what users read; the schema what is checked)."
    shipped = OmegaConf.to_container(OmegaConf.load(config_dir()/'config.yaml'))
    schema = OmegaConf.to_container(OmegaConf.structured(Config))
    for g in ('model', 'data'): shipped.pop(g); schema.pop(g)
    assert shipped == schema

def test_model_schemas_are_the_constructors():
    "Each architecture's schema: arch, name, the constructor's arguments (type hint, default, docment, range), the weights keys."
    from fastcore.docments import docments
    from hpe_pretrain.models.factory import ARCHITECTURES, _META_KEYS
    for arch, cls in ARCHITECTURES.items():
        ps = inspect.signature(cls, eval_str=True).parameters
        fs = {f.name: f for f in dataclasses.fields(model_schema(arch))}
        assert list(fs) == ['arch', 'name'] + list(ps) + ['weights', 'weights_head'], arch
        assert set(fs) - set(ps) == set(_META_KEYS) and fs['arch'].default == arch   # the factory's non-constructor keys
        for k, p in ps.items():
            assert (fs[k].type, fs[k].default, fs[k].metadata['help']) == (p.annotation, p.default, docments(cls)[k]), (arch, k)
            assert fs[k].metadata.get('range') == cls.config_ranges.get(k), (arch, k)

def test_model_group_keeps_the_hand_written_schemas_keys(tmp_path):
    "The model keys, in the order the hand-written DSTformerConfig / STMOConfig had (saved run configs are unchanged), round-trip."
    old = {'dstformer-tiny': 'in_ch out_ch dim_feat dim_rep depth num_heads mlp_ratio num_joints maxlen qkv_bias drop_rate '
                             'attn_drop_rate drop_path_rate',
           'stmo-tiny': 'in_ch out_ch num_joints maxlen dim_joint spatial_depth spatial_heads dim depth num_heads mlp_ratio dim_rep '
                        'dec_dim dec_depth dec_heads drop_rate attn_drop_rate drop_path_rate'}
    for m, keys in old.items():
        cfg = load_config([f'model={m}', 'data.clip_len=27'])
        assert list(OmegaConf.to_container(cfg.model)) == ['arch', 'name', *keys.split(), 'weights', 'weights_head'], m
        back = load_saved_config(save_config(cfg, tmp_path/m/'config.yaml'))
        assert OmegaConf.to_yaml(back) == OmegaConf.to_yaml(cfg) and OmegaConf.get_type(back.model) is model_schema(cfg.model.arch)

def test_every_shipped_config_loads():
    "Every model with every dataset loads, except a clip longer than the model's maxlen: refused, naming both keys."
    for m in list_configs('model'):
        for d in list_configs('data'):
            mc, dc = OmegaConf.load(config_dir()/'models'/f'{m}.yaml'), OmegaConf.load(config_dir()/'data'/f'{d}.yaml')
            if dc.clip_len > mc.maxlen:
                with pytest.raises(ConfigError, match=f'data.clip_len={dc.clip_len} is longer than model.maxlen={mc.maxlen}'):
                    load_config([f'model={m}', f'data={d}'])
                assert load_config([f'model={m}', f'data={d}', f'data.clip_len={mc.maxlen}']).data.stride == max(1, mc.maxlen // 3)
            else: load_config([f'model={m}', f'data={d}'])
    for e in list_experiments(): assert load_config([f'experiment={e}']).experiment == e

def test_describe_config_lists_types_and_help():
    text = describe_config(load_config(['train.bs=8']))
    rows = {l.split()[0]: l for l in text.splitlines()}
    assert rows['train.bs'].split()[:3] == ['train.bs', 'int', '8'] and 'batch size' in rows['train.bs']
    assert rows['train.clip_grad'].split()[1:5] == ['float', 'or', 'null', '1.0'] and 'max gradient norm' in rows['train.clip_grad']
    assert rows['augment.flip'].split()[1:3] == ['bool', 'true'] and 'horizontal flip' in rows['augment.flip']
    assert 'masked pose modelling' in rows['corrupt.mpm'] and 'MotionBERT' in rows['corrupt.motionbert']
    assert rows['model.dec_depth'].split()[1:3] == ['int', '1'] and rows['data.subjects'].split()[1:6] == ['list', 'of', 'str', 'or', 'null']
    keys = [l.split()[0] for l in text.splitlines()[1:]]
    no_help = [l.split()[0] for l in text.splitlines()[1:] if len(l.split(None, 3)) < 4 and l.split()[1] != 'group']
    assert not no_help, no_help   # every key explains itself
    assert len(keys) == len(set(keys)) and 'model.dim_joint' in keys and 'data.synthetic.seed' in keys
    dst = describe_config(load_config(['model=dstformer-lite']))
    assert 'model.qkv_bias' in dst and 'model.dim_joint' not in dst

def test_config_import_is_light():
    "Importing the config module imports neither torch nor the models; checking a model config imports the registry."
    code = ("import sys; from hpe_pretrain.train.config import load_config, describe_config; "
            "print(any(m == 'torch' or m.startswith('hpe_pretrain.models') for m in sys.modules)); describe_config(load_config()); "
            "print('hpe_pretrain.models.factory' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ['False', 'True']

def test_help_is_what_docments_reads():
    "describe_config's help is the field comment fastcore's docments reads, for every schema class."
    from dataclasses import is_dataclass
    from fastcore.docments import docments
    import hpe_pretrain.train.config as C, hpe_pretrain.train.schema as S
    classes = [v for v in vars(S).values() if isinstance(v, type) and is_dataclass(v) and v.__module__ == S.__name__]
    assert len(classes) >= 14
    for cls in classes: assert C._docs(cls) == {k: v for k, v in docments(cls).items() if k != 'return' and v}, cls
