"""Out-of-core loading (`in_memory=False` / 'auto'): the same clips with the same values as in memory, reproducible,
bounded memory, checksums kept, unused rows never read, source-by-source decisions in mixtures.

Order: out of core an epoch visits blocks in a shuffled order and shuffles clips within windows of blocks, so its
order differs from the in-memory permutation; the clips and their values are the same, each exactly once."""
import pickle

import h5py
import numpy as np
import pytest
import torch

from hpe_pretrain.data import loaders
from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.sequence import PoseSequence
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.data.loaders import PoseClipDataset, pose_dataloaders
from hpe_pretrain.data.mixture import MixtureDataLoader, MixtureDataset, mixture_dataloaders

T = 12
LENGTHS = (70, 5, 40, 33, 9, 120, 12, 61, 3, 80)               # some shorter than T (resampled), some spanning blocks
SPLITS = ('train', 'train', 'test', 'train', 'test', 'train', 'train', 'test', 'train', 'train')


def _cache(path, lengths=LENGTHS, splits=SPLITS, chunk=16, seed=0):
    "A cache of random poses with 3DHP-style `valid` on test sequences and small HDF5 chunks."
    rng, seqs = np.random.default_rng(seed), []
    for i, (n, sp) in enumerate(zip(lengths, splits)):
        s = PoseSequence(f'S{i}', 'Walking 1', str(i % 3), sp, joints_3d=rng.normal(size=(n, 17, 3)).astype(np.float32),
                         joints_2d=rng.uniform(0, 1000, (n, 17, 2)).astype(np.float32), fps=50., width=1000 + i, height=1002,
                         confidence=rng.uniform(0, 1, (n, 17)).astype(np.float32))
        if sp == 'test': s.valid = (rng.uniform(size=n) > .3).astype(np.uint8)
        seqs.append(s)
    return write_cache(path, seqs, 'mpi_inf_3dhp', 'mpi17', chunk_frames=chunk)


def _key(b):
    return (b['seq'] * 10_000 + b['frame'][:, 0]).tolist()


def _by_clip(batches):
    "clip key -> {field: value} over an epoch; asserts no clip appears twice."
    out = {}
    for b in batches:
        for j, k in enumerate(_key(b)):
            assert k not in out, f'clip {k} twice in one epoch'
            out[k] = {f: v[j] for f, v in b.items()}
    return out


OOC = dict(in_memory=False, block_frames=32, window=2)


@pytest.mark.parametrize('fraction', [1.0, 0.6])
def test_epoch_same_clips_as_in_memory(tmp_path, fraction):
    p = _cache(tmp_path / 'c.h5')
    mem = pose_dataloaders(p, T, 4, bs=7, fraction=fraction, seed=3)
    ooc = pose_dataloaders(p, T, 4, bs=7, fraction=fraction, seed=3, **OOC)
    assert not ooc.train_ds.in_memory and mem.train_ds.in_memory
    a, b = list(mem.train), list(ooc.train)
    assert [len(x['seq']) for x in a] == [len(x['seq']) for x in b]
    ma = _by_clip(a)
    for epoch in (b, list(ooc.train)):                                        # checked reads, then raw re-reads
        mb = _by_clip(epoch)
        assert sorted(ma) == sorted(mb) and len(ma) == len(mem.train_ds)      # the same clips, each exactly once
        for k, v in ma.items():
            for f in v:
                assert v[f].dtype == mb[k][f].dtype and v[f].shape == mb[k][f].shape
                torch.testing.assert_close(mb[k][f], v[f], rtol=0, atol=0)    # the same values, bit for bit
    bc = ooc.train_ds.blocks
    assert bc.checked == len(bc._verified) < bc.reads                         # verified once, then copied raw
    assert _key(a[0]) != _key(b[0])                                           # but another order
    for x, y in zip(mem.valid, ooc.valid):                                    # validation: same batches, same order
        assert x.keys() == y.keys()
        for f in x: assert torch.equal(x[f], y[f])


def test_same_seed_same_batches_and_reseed(tmp_path):
    p = _cache(tmp_path / 'c.h5')
    def run(seed, reseed=None):
        dl = pose_dataloaders(p, T, 4, bs=5, seed=seed, **OOC).train
        if reseed is not None: dl.reseed(reseed)                             # per-epoch seeding / exact resume
        return [_key(b) for b in dl], [b['j3d'] for b in dl]
    k1, v1 = run(0); k2, v2 = run(0)
    assert k1 == k2 and all(torch.equal(x, y) for x, y in zip(v1, v2))
    assert run(1)[0] != k1
    assert run(0, reseed=11)[0] == run(5, reseed=11)[0] != k1
    dl = pose_dataloaders(p, T, 4, bs=5, seed=0, **OOC).train                 # consecutive epochs differ
    assert [_key(b) for b in dl] != [_key(b) for b in dl]


def test_in_memory_auto_keeps_fit_batches(tmp_path):
    "'auto' on a cache that fits is the in-memory path: the same batches in the same order (the main job unchanged)."
    p = _cache(tmp_path / 'c.h5')
    a, b = pose_dataloaders(p, T, 4, bs=6, seed=2), pose_dataloaders(p, T, 4, bs=6, seed=2, in_memory='auto')
    assert b.train_ds.in_memory
    for x, y in zip(a.train, b.train):
        for f in x: assert torch.equal(x[f], y[f])


def test_block_cache_bounded_and_each_block_read_once_per_epoch(tmp_path):
    p = _cache(tmp_path / 'c.h5', lengths=(400, 300, 250, 500, 20), splits=('train',) * 4 + ('test',))
    dls = pose_dataloaders(p, T, 3, bs=8, in_memory=False, block_frames=32, window=3)
    ds, seen = dls.train_ds, []
    n_blocks = len(np.unique(ds.first_row // ds.blocks.block_frames))
    for epoch in range(2):
        r0 = ds.blocks.reads
        for b in dls.train: seen.append(len(ds.blocks._slots))
        assert ds.blocks.reads - r0 == n_blocks if epoch == 0 else ds.blocks.reads - r0 <= n_blocks  # once (or still held)
    assert max(seen) <= ds.blocks.max_blocks == 6
    assert ds.blocks.checked == n_blocks                                      # checksums verified once per block
    always = pose_dataloaders(p, T, 3, bs=8, in_memory=False, block_frames=32, window=3, verify='always')
    for epoch in range(2):
        for b in always.train: pass
    assert always.train_ds.blocks.checked == always.train_ds.blocks.reads > 2 * n_blocks - 6
    assert ds.blocks._arena['j3d'].nbytes == (6 * (32 + 16 + 4) + T) * 17 * 3 * 4    # 6 slots of 32 + 16 + 4 rows, + T


def _flip_chunk(path, field, chunk_index, out):
    info = h5py.File(path)[field].id.get_chunk_info(chunk_index)
    blob = bytearray(path.read_bytes())
    for i in range(info.byte_offset + 8, info.byte_offset + 16): blob[i] ^= 0xFF
    out.write_bytes(bytes(blob))
    return out


def test_checksums_verified_and_unused_rows_skipped(tmp_path):
    p = _cache(tmp_path / 'c.h5')                                             # sequence 2 (test) is rows 75..114
    with PoseCache(p) as c: assert (c.seqs.start[2], c.seqs.length[2]) == (75, 40)
    test_only = _flip_chunk(p, 'joints_3d', 5, tmp_path / 'test_only.h5')     # rows 80..95: inside the test sequence
    for b in pose_dataloaders(test_only, T, 4, bs=7, valid_split='train', train_split='train', **OOC).train: pass
    with pytest.raises(ValueError, match='corrupted at dataset joints_3d'): PoseCache(test_only, in_memory=True)
    train = _flip_chunk(p, 'joints_2d', 1, tmp_path / 'train.h5')             # rows 16..31: training sequence 0
    with pytest.raises(ValueError, match=r'train\.h5: corrupted at dataset joints_2d \(checksum\)'):
        for b in pose_dataloaders(train, T, 4, bs=7, **OOC).train: pass


def test_random_access_and_pickling(tmp_path):
    p = _cache(tmp_path / 'c.h5')
    ooc = PoseClipDataset(p, T, 2, in_memory=False, block_frames=32, window=1)
    mem = PoseClipDataset(p, T, 2)
    idx = np.random.default_rng(0).permutation(len(ooc))[:40]                # many blocks: rows read clip by clip
    for f, v in mem.get_batch(idx).items(): assert torch.equal(ooc.get_batch(idx)[f], v)
    clone = pickle.loads(pickle.dumps(ooc))                                   # DataLoader workers: no arena carried
    assert clone.blocks._arena is None and len(pickle.dumps(ooc)) < 100_000
    for f, v in mem.get_batch(idx[:3]).items(): assert torch.equal(clone.get_batch(idx[:3])[f], v)
    for f, v in mem[len(mem) - 1].items(): assert torch.equal(ooc[len(ooc) - 1][f], v)


def test_auto_source_by_source(tmp_path, monkeypatch):
    small = _cache(tmp_path / 'small.h5', lengths=(40, 40), splits=('train', 'test'))
    big = _cache(tmp_path / 'big.h5', lengths=(400, 400), splits=('train', 'test'), seed=1)
    with PoseCache(small) as s, PoseCache(big) as b:
        need_small, need_big = s.nbytes(), b.nbytes()
    budget = {'free': 2 * (need_small + need_big) - 1}                       # half of it: one of the two fits
    def available():
        return budget['free']
    monkeypatch.setattr(loaders, 'memory_available', available)
    mix = MixtureDataset([str(small), str(big)], 'mpi17', T, 4, in_memory='auto')
    assert [p.in_memory for p in mix.parts] == [True, True]
    budget['free'] = 2 * need_small + 1                                       # the small source fits, the big one not
    mix = MixtureDataset([str(small), str(big)], 'mpi17', T, 4, in_memory='auto', block_frames=64)
    assert [p.in_memory for p in mix.parts] == [True, False]
    mem = MixtureDataset([str(small), str(big)], 'mpi17', T, 4)
    idx = np.arange(len(mem))
    for f, v in mem.get_batch(idx).items(): assert torch.equal(mix.get_batch(idx)[f], v)
    dl = MixtureDataLoader(mix, bs=8, n_draws=300, seed=0)
    s, local = mix.locate(dl.get_idxs())
    n1 = len(mix.parts[1])
    assert sorted(local[s == 1][:n1]) == list(range(n1))                      # out of core: a pass over its clips
    a, b = (MixtureDataLoader(mix, bs=8, n_draws=40, seed=4) for _ in range(2))
    for x, y in zip(a, b): assert torch.equal(x['j3d'], y['j3d'])
    dls = mixture_dataloaders([str(big)], 'mpi17', T, 4, bs=8, in_memory=False, block_frames=64)
    assert not dls.train.dataset.parts[0].in_memory and not dls.valid.dataset.in_memory
    assert dls.valid.dataset.cache is dls.train.dataset.parts[0].cache
    with pytest.raises(ValueError, match="in_memory='sometimes', expected true, false or 'auto'"):
        MixtureDataset([str(small)], 'mpi17', T, in_memory='sometimes')
