"Fast checks of the model package as installed: shipped configs, the common interface, encoder transfer."
import pytest
import torch

from hpe_pretrain.data.files import list_configs
from hpe_pretrain.models.factory import ARCHITECTURES, check_model_config, create_model, load_encoder, model_config
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
