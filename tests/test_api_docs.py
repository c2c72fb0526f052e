"""Every public function and method of the package has type hints on all parameters and the return value, and a
docment (the comment after each parameter) — what the project promises its users. Public = listed in a module's
`__all__`; for classes, `__init__` and the methods not starting with `_`. fastai callback events (`before_fit`, ...)
are called by fastai, not by users, and are left out; dataclass fields are documented on the class."""
import dataclasses, importlib, inspect, pkgutil
from fastai.callback.core import _events
from fastcore.docments import docments
import hpe_pretrain

EVENTS = set(_events)

def _public_callables():
    for m in pkgutil.walk_packages(hpe_pretrain.__path__, 'hpe_pretrain.'):
        if m.name.endswith('_modidx'): continue
        mod = importlib.import_module(m.name)
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj) and obj.__module__.startswith('hpe_pretrain'): yield f'{m.name}.{name}', obj
            elif inspect.isclass(obj) and obj.__module__ == m.name:
                if '__init__' in obj.__dict__ and not dataclasses.is_dataclass(obj): yield f'{m.name}.{name}.__init__', obj.__init__
                for k, v in obj.__dict__.items():
                    if inspect.isfunction(v) and not k.startswith('_') and k not in EVENTS: yield f'{m.name}.{name}.{k}', v

def _problems(f) -> list[str]:
    sig = inspect.signature(f)
    params = [p for p in sig.parameters.values()
              if p.name not in ('self', 'cls') and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    out = [f'{p.name}: no type hint' for p in params if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty and f.__name__ != '__init__': out.append('no return type')
    docs = docments(f) if params else {}
    out += [f'{p.name}: no docment' for p in params if not docs.get(p.name)]
    return out

def test_public_api_has_type_hints_and_docments():
    bad = {name: pr for name, f in _public_callables() if (pr := _problems(f))}
    assert not bad, f"{len(bad)} public callables lack type hints or docments:\n" + '\n'.join(f'{k}: {", ".join(v)}' for k, v in sorted(bad.items()))

def test_the_check_sees_the_api():
    names = [n for n, _ in _public_callables()]
    assert len(names) > 150 and 'hpe_pretrain.data.camera_files.read_h36m_metadata' in names and 'hpe_pretrain.train.pipeline.fit_from_config' in names
