"""Pretraining and fine-tuning 3D human pose estimation models on Human3.6M and MPI-INF-3DHP

Modules:

- `hpe_pretrain.train.callbacks`: Small fastai callbacks for what fastai lacks: exact resume, per-epoch seeding, atomic checkpoints, NaN guard, CPU bf16 autocast, throughput — plus the learning-rate schedules, all on top of fastai's own loop."""

__version__ = "0.0.1"
