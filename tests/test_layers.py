"""The package is layered: data (0) -> transforms (1) -> models (2) -> train (3) -> viz (4) -> the edge, `cli` and
`infer` (5) -> `testing` (6). A module may import from its own layer and the layers below, never from above — every
import counts: absolute and relative, at the top of the module or inside a function (a lazy import is still a
dependency), and the `'module:function'` targets the command line imports by name. The notebooks follow the same
order: every prefix is unique, and a notebook sorts after the notebooks of every module it imports."""
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG, NBS = ROOT/'hpe_pretrain', ROOT/'nbs'
LAYERS = {'data': 0, 'transforms': 1, 'models': 2, 'train': 3, 'viz': 4, 'cli': 5, 'infer': 5, 'testing': 6}
# (importer, imported) pairs that may go up a layer, each with its reason. Keep it short: an entry is a design debt.
ALLOW: dict[tuple[str, str], str] = {}


def _name(p: Path) -> str:
    parts = p.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

MODULES = {_name(p): p for p in PKG.rglob('*.py') if p.name != '_modidx.py'}


def layer(mod: str) -> int:
    "The layer of a module of the package: its first part under `hpe_pretrain` (the package itself: 0, version only)."
    parts = mod.split('.')
    if len(parts) == 1: return 0
    if parts[1] not in LAYERS: raise KeyError(f"{mod}: no layer for '{parts[1]}'; add it to LAYERS")
    return LAYERS[parts[1]]


def _module_of(dotted: str) -> str | None:
    "The package module `dotted` names or is inside of (`hpe_pretrain.a.b.name` -> `hpe_pretrain.a.b`)."
    while dotted and dotted not in MODULES: dotted = dotted.rpartition('.')[0]
    return dotted or None


def imports(mod: str) -> set[str]:
    "Every package module that `mod` imports: import statements anywhere in it, and 'module:name' string targets."
    path, out = MODULES[mod], set()
    pkg = mod if path.name == '__init__.py' else mod.rpartition('.')[0]
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Import): names = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ''
            if n.level: base = '.'.join(pkg.split('.')[:len(pkg.split('.')) - n.level + 1] + ([n.module] if n.module else []))
            names = [f'{base}.{a.name}' for a in n.names]   # `from a import b`: b may be a module of a
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and re.fullmatch(r'hpe_pretrain(\.\w+)+(:\w+)?', n.value):
            names = [n.value.split(':')[0]]
        else: continue
        out |= {m for x in names if x.startswith('hpe_pretrain') and (m := _module_of(x)) and m != mod}
    return out


def test_the_layers_are_known():
    assert len(MODULES) > 40 and {layer(m) for m in MODULES} == set(range(7)), sorted(MODULES)
    assert imports('hpe_pretrain.cli') >= {'hpe_pretrain.train.pipeline', 'hpe_pretrain.infer', 'hpe_pretrain.viz.report'}
    assert 'hpe_pretrain.data.cache' in imports('hpe_pretrain.data.loaders')        # relative imports are resolved


def test_no_module_imports_from_a_higher_layer():
    up = {(m, i): f'{m} (layer {layer(m)}) imports {i} (layer {layer(i)})'
          for m in MODULES for i in imports(m) if layer(i) > layer(m)}
    stale = sorted(set(ALLOW) - set(up))
    assert not stale, f"ALLOW lists pairs that no longer import upwards: {stale}"
    bad = [msg for k, msg in sorted(up.items()) if k not in ALLOW]
    assert not bad, 'imports from a higher layer:\n' + '\n'.join(bad)


def test_the_check_finds_an_upward_import(tmp_path, monkeypatch):
    "A data module importing the training code (inside a function) is found."
    p = tmp_path/'hpe_pretrain'/'data'/'toy.py'; p.parent.mkdir(parents=True)
    p.write_text('def f():\n    from ..train.pipeline import fit_from_config\n    return fit_from_config\n')
    monkeypatch.setitem(MODULES, 'hpe_pretrain.data.toy', p)
    assert imports('hpe_pretrain.data.toy') == {'hpe_pretrain.train.pipeline'}
    assert layer('hpe_pretrain.train.pipeline') > layer('hpe_pretrain.data.toy')


def _notebooks() -> dict[str, str]:
    "notebook file name -> the module it exports (`#| default_exp`)."
    out = {}
    for p in sorted(NBS.glob('[0-9]*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
            if m: out[p.name] = f'hpe_pretrain.{m[1]}'; break
    return out


def test_notebook_prefixes_are_unique():
    prefixes = [n.split('_', 1)[0] for n in sorted(p.name for p in NBS.glob('[0-9]*.ipynb'))]
    assert len(prefixes) > 40
    dup = sorted({x for x in prefixes if prefixes.count(x) > 1})
    assert not dup, f"notebook prefixes used more than once: {dup}"


def test_notebooks_sort_after_what_they_import():
    nbs = _notebooks()
    by_module = {m: n for n, m in nbs.items()}
    assert len(by_module) == len(nbs) and set(by_module) == {m for m, p in MODULES.items() if p.name != '__init__.py'}, \
        'every module has exactly one notebook'
    late = [f"{n} imports {i}, whose notebook {by_module[i]} sorts after it"
            for n, m in nbs.items() for i in imports(m) if i in by_module and by_module[i] > n]
    assert not late, '\n'.join(late)
