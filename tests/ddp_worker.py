"""Run by `tests/test_ddp.py` under `torchrun --nproc_per_node 2` (gloo, CPU): one rank's view of the DDP decisions.

Writes `<out>/rank<R>.json`: the recorded validation values of a DDP fit with learning rate 0 and the same values
computed by this process alone on the whole validation set; the NaN stop when only rank 1 sees a NaN loss; whether
the per-epoch seed reached the loader inside fastai's `DistributedDL`."""
import json, sys
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist
from fastai.basics import Callback
from hpe_pretrain.testing import toy_cache
from hpe_pretrain.data.loaders import pose_dataloaders
from hpe_pretrain.models.factory import create_model
from hpe_pretrain.transforms.normalize import NormalizePose
from hpe_pretrain.train.learner import pose_learner, ToXY, feed_device
from hpe_pretrain.train.callbacks import epoch_seed
from hpe_pretrain.train.distributed import world, init_distributed, ddp_callback

class SeedProbe(Callback):
    "After the seeding callback: is the training loader's shuffle generator the one of (seed, epoch)?"
    order = -19
    def before_fit(self): self.ok = []
    def before_epoch(self):
        dl = getattr(self.dls.train, 'dl', self.dls.train)
        self.ok.append(dl._gen.bit_generator.state == np.random.default_rng(epoch_seed(0, self.epoch)).bit_generator.state)

class NaNOnRank1(Callback):
    "Poison the loss of rank 1 only, at epoch 1, batch 1."
    order = -10
    def after_loss(self):
        if world()[0] == 1 and self.training and (self.epoch, self.iter) == (1, 1):
            self.learn.loss_grad = self.learn.loss_grad * float('nan'); self.learn.loss = self.learn.loss_grad.clone()

def learner(cache, cbs=(), ddp=True):
    dls = pose_dataloaders(cache, clip_len=9, stride=3, bs=8, after_batch=[NormalizePose(0), ToXY()], drop_last=ddp)
    feed_device(dls, 'cpu')
    torch.manual_seed(0)
    extra = ddp_callback(torch.device('cpu')) if ddp else []
    return pose_learner(dls, create_model('stmo-tiny', maxlen=9, dec_depth=0), 'lift', cbs=list(cbs) + extra)

def main(out: Path):
    rank, _ = world(); init_distributed(torch.device('cpu')); torch.set_num_threads(1)
    cache = toy_cache(out/f'toy{rank}.h5', n_seq=8, n_frames=41)   # 4 test sequences of 41 frames: 20 clips (not even)
    res = {}
    learn = learner(cache)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.)   # lr 0: the weights stay those of the alone run
    res['ddp_values'] = [float(v) for v in learn.recorder.values[-1][1:4]]         # valid_loss, mpjpe_mm, p_mpjpe_mm
    alone = learner(cache, ddp=False)
    with alone.no_bar(), alone.no_logging(): res['alone_values'] = [float(v) for v in alone.validate()[:3]]
    res['n_valid'] = len(alone.dls.valid.dataset)
    probe = SeedProbe()
    learn = learner(cache, [NaNOnRank1(), probe])
    with learn.no_bar(), learn.no_logging(): learn.fit(3, 1e-3)
    res['nan_stopped'], res['seed_ok'] = learn.nan_stopped, probe.ok
    (out/f'rank{rank}.json').write_text(json.dumps(res))
    dist.barrier(); dist.destroy_process_group()

if __name__ == '__main__': main(Path(sys.argv[1]))
