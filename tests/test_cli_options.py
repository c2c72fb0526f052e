"""`hpe-pretrain` subcommand parsers are built from the command functions' docments: every option users had before
(name, default, kind, choices, metavar) is still there, ranges refuse with one line, and the parsed options reach the
function unchanged."""
import argparse
import functools

import pytest

import hpe_pretrain.cli as cli
from hpe_pretrain.cli import COMMANDS, build_parser, main

S, T, F, B = 'store', 'store_true', 'flag', 'bool'   # kinds: value, store_true flag, (unused), --x/--no-x
# the options before the parsers were built from docments (hand-written argparse, issue 26): option -> (default, kind, nargs,
# required, choices, metavar)
TODAY = {
    'prepare': {'--dataset': (None, S, None, True, ('h36m', 'mpi_inf_3dhp', 'synthetic'), None), '--src': (None, S, None, False, None, None),
                '--format': (None, S, None, False, None, None), '--out': (None, S, None, False, None, None),
                '--joints': (None, S, None, False, None, None), '--split': (None, S, None, False, ('train', 'test'), None),
                '--force': (False, T, 0, False, None, None), '--trust-pickle': (False, T, 0, False, None, None),
                '--data-root': (None, S, None, False, None, 'DATA_ROOT'), '--subjects': (None, S, None, False, None, 'S9,S11'),
                '--metadata': (None, S, None, False, None, 'PATH'), '--path-2d': (None, S, None, False, None, 'FILE'),
                '--calibration': (None, S, None, False, None, 'PATH'), '--calib-camera': (None, S, None, False, None, 'ts1-4=8,ts5-6=0'),
                '--image-size': (None, S, None, False, ('standard', 'metadata'), None), '--seed': (None, S, None, False, None, None),
                '--frames': (None, S, None, False, None, None), '--quiet': (False, T, 0, False, None, None), '--debug': (False, T, 0, False, None, None)},
    'fit': {'overrides': (None, S, '*', None, None, 'key=value'), '--quick': (False, T, 0, False, None, None),
            '--config': (None, S, None, False, None, 'YAML'), '--resume': (False, S, '?', False, None, 'RUN'),
            '--list': (False, T, 0, False, None, None), '--overwrite': (False, T, 0, False, None, None), '--debug': (False, T, 0, False, None, None)},
    'eval': {'--checkpoint': (None, S, None, True, None, 'RUN_OR_FILE'), '--data': (None, S, None, True, None, 'CACHE.h5'),
             '--protocol': (None, S, None, False, ('package', 'motionbert'), None),
             '--aggregation': ('action-wise', S, None, False, ('action-wise', 'frame-wise'), None),
             '--flip-tta': (None, B, 0, False, None, None), '--skip-list': (None, B, 0, False, None, None),
             '--pck-joints': (14, S, None, False, (14, 17), None), '--stride': (None, S, None, False, None, None),
             '--out': (None, S, None, False, None, None), '--device': (None, S, None, False, None, None),
             '--motionbert-config': (None, S, None, False, None, 'NAME'), '--trust-pickle': (False, T, 0, False, None, None),
             '--debug': (False, T, 0, False, None, None)},
    'export': {'--checkpoint': (None, S, None, True, None, 'RUN_OR_FILE'), '--format': ('onnx', S, None, False, ('onnx', 'pt2'), None),
               '--out': (None, S, None, False, None, 'FILE'), '--clip-len': (None, S, None, False, None, 'T'),
               '--motionbert-config': (None, S, None, False, None, 'NAME'), '--debug': (False, T, 0, False, None, None)},
    'infer': {'--checkpoint': (None, S, None, True, None, 'RUN_OR_FILE'), '--keypoints': (None, S, None, True, None, 'FILE_OR_DIR'),
              '--out': (None, S, None, True, None, 'DIR'), '--format': (None, S, None, False, None, None),
              '--joints': (None, S, None, False, None, None), '--image-size': (None, S, 2, False, None, ('W', 'H')),
              '--video': (None, S, None, False, None, 'PREFIX'), '--track': (None, S, None, False, None, None),
              '--max-gap': (10, S, None, False, None, None), '--min-score': (0.0, S, None, False, None, None),
              '--flip-tta': (None, B, 0, False, None, None), '--fps': (None, S, None, False, None, None),
              '--device': (None, S, None, False, None, None), '--motionbert-config': (None, S, None, False, None, 'NAME'),
              '--trust-pickle': (False, T, 0, False, None, None), '--pixel': (False, T, 0, False, None, None),
              '--debug': (False, T, 0, False, None, None)}}
TYPES = {('prepare', '--seed'): int, ('prepare', '--frames'): int, ('eval', '--pck-joints'): int, ('eval', '--stride'): int,
         ('export', '--clip-len'): int, ('infer', '--image-size'): int, ('infer', '--track'): int, ('infer', '--max-gap'): int,
         ('infer', '--min-score'): float, ('infer', '--fps'): float}   # what each typed option parses to


def _sub(name: str) -> argparse.ArgumentParser:
    p = build_parser()
    sp = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    sp.format_help()   # options are added on first use
    return sp


def _kind(a) -> str:
    return T if isinstance(a, argparse._StoreTrueAction) else B if isinstance(a, argparse.BooleanOptionalAction) else S


@pytest.mark.parametrize('name', list(TODAY))
def test_every_option_of_today_is_there(name, capsys):
    sp = _sub(name)
    got = {(a.option_strings[0] if a.option_strings else a.dest if a.dest != 'overrides' else 'overrides'):
           (a.default, _kind(a), a.nargs, a.required if a.option_strings else None, tuple(a.choices) if a.choices else None, a.metavar)
           for a in sp._actions if not isinstance(a, argparse._HelpAction)}
    assert got == TODAY[name]
    for (cmd, opt), t in TYPES.items():
        if cmd == name:
            a = next(a for a in sp._actions if opt in a.option_strings)
            assert a.type.__name__ == t.__name__, (opt, a.type)
    assert main([name, '--help']) == 0
    out = capsys.readouterr().out
    for opt in TODAY[name]: assert (opt if opt != 'overrides' else 'key=value') in out, opt


def test_subcommands_in_order_and_required(capsys):
    assert list(COMMANDS) == ['prepare', 'fit', 'eval', 'export', 'infer']
    assert main(['--help']) == 0 and 'main job' in capsys.readouterr().out
    assert main([]) == 2 and 'required' in capsys.readouterr().err


@pytest.mark.parametrize('argv, msg', [
    (['eval', '--stride', '0'], "argument --stride: '0': expected an integer from 1 to 100000"),
    (['export', '--clip-len', '-3'], "argument --clip-len: '-3': expected an integer from 1 to 100000"),
    (['infer', '--image-size', '1920', '0'], "argument --image-size: '0': expected an integer from 1 to 100000"),
    (['infer', '--min-score', '1.5'], "argument --min-score: '1.5': expected a number from 0 to 1"),
    (['infer', '--max-gap', 'nan'], "argument --max-gap: 'nan': expected an integer from 0 to 100000"),
    (['infer', '--fps', 'inf'], "argument --fps: 'inf': expected a number from 1 to 1000"),
    (['infer', '--track', '99999999999999999999'], "argument --track: '99999999999999999999': expected an integer from"),
    (['eval', '--pck-joints', '15'], "argument --pck-joints: invalid choice: 15"),
    (['prepare', '--dataset', 'coco'], "argument --dataset: invalid choice: 'coco'"),
    (['eval', '--checkpoint', 'x', '--data', 'y', '--bogus'], "unrecognized arguments: --bogus"),
])
def test_bad_values_are_one_line(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1 and err.startswith('hpe-pretrain') and ': error: ' in err, err


def _spy(monkeypatch, mod, name: str, got: dict, raise_=None):
    "Replace `mod.name` by a function with its signature and docments that records its keyword arguments."
    @functools.wraps(getattr(mod, name))
    def fake(**kw):
        got.clear(); got.update(kw)
        if raise_ is not None: raise raise_
    monkeypatch.setattr(mod, name, fake)


def test_options_reach_the_function(monkeypatch):
    "Parsed options are the function's keyword arguments: `fit` overrides anywhere, `--resume [RUN]`, flags, pairs."
    got = {}
    _spy(monkeypatch, cli, 'fit_command', got)
    assert main(['fit', 'a=1', '--quick', 'b=2', '--resume']) == 0
    assert got == dict(overrides=['a=1', 'b=2'], quick=True, config=None, resume=True, list_config=False, overwrite=False)
    assert main(['fit', '--resume', 'run.name=x', 'c=3', '--list']) == 0
    assert got == dict(overrides=['run.name=x', 'c=3'], quick=False, config=None, resume=True, list_config=True, overwrite=False)
    assert main(['fit', '--resume', 'outputs/somewhere']) == 0 and got['resume'] == 'outputs/somewhere'
    _spy(monkeypatch, cli, 'eval_command', got)
    assert main(['eval', '--checkpoint', 'r', '--data', 'c.h5', '--no-flip-tta', '--stride', '9', '--pck-joints', '17']) == 0
    assert got == dict(checkpoint='r', data='c.h5', aggregation='action-wise', flip_tta=False, skip_list=None, stride=9, out=None,
                       pck_joints=17, protocol=None, device=None, trust_pickle=False, motionbert_config=None)
    _spy(monkeypatch, cli, 'export_command', got)
    assert main(['export', '--checkpoint', 'r', '--format', 'pt2', '--clip-len', '27']) == 0
    assert got == dict(checkpoint='r', fmt='pt2', out=None, clip_len=27, motionbert_config=None)
    import hpe_pretrain.infer as infer
    _spy(monkeypatch, infer, 'infer_command', got)
    assert main(['infer', '--checkpoint', 'r', '--keypoints', 'k.json', '--out', 'o', '--image-size', '1920', '1080', '--flip-tta']) == 0
    assert (got['image_size'], got['flip_tta'], got['fmt'], got['max_gap'], got['min_score']) == ([1920, 1080], True, None, 10, 0.0)
    assert 'max_frames' not in got and 'progress' not in got      # not options: the function's defaults
    import hpe_pretrain.data.prepare as prep
    _spy(monkeypatch, prep, 'prepare_command', got)
    assert main(['prepare', '--dataset', 'synthetic', '--format', 'mpi_inf_3dhp', '--data-root', 'd', '--frames', '30', '--quiet']) == 0
    assert (got['dataset'], got['fmt'], got['root'], got['frames'], got['quiet'], got['trust_pickle']) == ('synthetic', 'mpi_inf_3dhp', 'd', 30, True, False)


def test_errors_of_commands_are_one_line(monkeypatch, capsys):
    _spy(monkeypatch, cli, 'eval_command', {}, ValueError('x.h5: something\nbad'))
    assert main(['eval', '--checkpoint', 'r', '--data', 'c.h5']) == 2
    assert capsys.readouterr().err == 'hpe-pretrain eval: error: x.h5: something bad\n'
    with pytest.raises(ValueError): main(['eval', '--checkpoint', 'r', '--data', 'c.h5', '--debug'])


def test_help_is_the_docment():
    "One source of help text: each option's help is its parameter's comment."
    from fastcore.docments import docments
    for name, c in COMMANDS.items():
        sp, docs = _sub(name), docments(c.function(), full=True, returns=False)
        for a in sp._actions:
            if a.dest in docs: assert a.help.startswith(docs[a.dest].docment.replace('None: ', 'default: ')[:30]), (name, a.dest)
