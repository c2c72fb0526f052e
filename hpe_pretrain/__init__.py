"""Pretraining and fine-tuning 3D human pose estimation models on Human3.6M and MPI-INF-3DHP

Modules:

- `hpe_pretrain.data.camera`: A `Camera` (world->camera extrinsics in metres, H36M-style lens distortion), projection and screen normalisation; the camera files (H36M `metadata.xml`, 3DHP `camera.calibration`) are in `data.camera_files`.
- `hpe_pretrain.data.camera_files`: Read and write the camera files of the datasets: Human3.6M's `metadata.xml` (all 11 subjects x 4 cameras in one `w0` vector), MPI-INF-3DHP's `camera.calibration` (Skeletool V1.0) and its test set's `.calib` files (tc camera calibration v0.3), as `Camera`s.
- `hpe_pretrain.data.files`: Atomic writes that never leave a half-written file, one clear error on a full disk, stale temporary files of killed processes cleaned up, and OS file locks that die with their process.
- `hpe_pretrain.data.keypoints`: Read the 2D detections of common pose estimators (COCO, AlphaPose, OpenPose, mmpose, plain arrays) into person tracks, link detections into tracks, fill short gaps — the input of lifting a video of your own.
- `hpe_pretrain.testing`: Synthetic batches, a tiny pose cache and a tiny learner for tests, demos and benchmarks (as fastai's `test_utils`): nothing in the package depends on them.
- `hpe_pretrain.train.callbacks`: Small fastai callbacks for what fastai lacks: exact resume, per-epoch seeding, atomic checkpoints, NaN guard, CPU bf16 autocast, throughput — plus the learning-rate schedules, all on top of fastai's own loop.
- `hpe_pretrain.train.cli`: One console script for the whole pipeline: `prepare` datasets into the pose cache, `fit` (pretrain → finetune → evaluate) from YAML configs, `eval` a checkpoint with the published protocols.
- `hpe_pretrain.train.distributed`: The process's rank under `torchrun`, fastai's DDP trainer made safe for CPU (gloo), and a digest of a model's weights to compare ranks and runs.
- `hpe_pretrain.train.infer`: `Predictor`: a trained lifting model applied to anyone's 2D keypoints with exactly the input encoding, windows and flip test-time augmentation that `hpe-pretrain eval` uses.
- `hpe_pretrain.train.learner`: The tasks (2D→3D lifting, masked 2D→2D reconstruction), their losses and metrics, and one function that builds a fastai `Learner` for any stage: pretrain, finetune or scratch.
- `hpe_pretrain.train.pipeline`: `fit_from_config`: data → pretrain → finetune (and scratch) → evaluation, from one composed config — the only place besides the CLI that reads configuration.
- `hpe_pretrain.transforms.augment`: Horizontal flip (and flip test-time augmentation), rotation about the vertical axis with scale, 2D jitter: batch transforms in torch, on whatever device the batch lives on.
- `hpe_pretrain.transforms.corrupt`: The 2D-input corruptions of the pretraining objectives (MotionBERT's noisy, masked 2D; P-STMO's masked pose modelling) as configurable batch transforms that report their masks.
- `hpe_pretrain.viz.report`: Bar charts of per-joint and per-action errors, error over time, the worst sequences, training curves from fastai CSV and TensorBoard logs, and a self-contained HTML report of a training run."""

__version__ = "0.0.1"
