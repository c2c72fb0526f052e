"""Pretraining and fine-tuning 3D human pose estimation models on Human3.6M and MPI-INF-3DHP

Modules:

- `hpe_pretrain.data.blocks`: Clips cut from large chunk-aligned blocks of a pose cache's rows, read whole and held decoded (bounded, least recently used), and the shuffled order of an epoch that keeps to the blocks held.
- `hpe_pretrain.data.cache`: `PoseCache`: a pose cache opened and checked, its sequence table, checked slice reads, and many runs of rows in one read.
- `hpe_pretrain.data.cache_writer`: One compact HDF5 file per prepared dataset, written by streaming the `PoseSequence`s every reader yields, atomically.
- `hpe_pretrain.data.camera`: A `Camera` (world->camera extrinsics in metres, H36M-style lens distortion) and its projection.
- `hpe_pretrain.data.camera_files`: Read and write the camera files of the datasets: Human3.6M's `metadata.xml` (all 11 subjects x 4 cameras in one `w0` vector), and MPI-INF-3DHP's training `camera.calibration` (Skeletool V1.0), as `Camera`s (the test set's `.calib` files: `data.mpi_test_cameras`).
- `hpe_pretrain.data.files`: Atomic writes that never leave a half-written file, one clear error on a full disk, stale temporary files of killed processes cleaned up, and OS file locks that die with their process.
- `hpe_pretrain.data.h36m`: Read the original Human3.6M pose files (`D3_Positions`, `D3_Positions_mono`, `D2_Positions` CDFs) with the dataset's own sequence names and cameras, and yield one `PoseSequence` per (subject, sequence, camera).
- `hpe_pretrain.data.h36m_formats`: Read MotionBERT's `h36m_sh_conf_cam_source_final.pkl` (only when trusted), and any Human3.6M source with the reader its format needs: `detect_h36m_format`, `iter_h36m`.
- `hpe_pretrain.data.keypoint_tracks`: One person's 2D keypoints over time: what counts as detected, undetected joints filled from their neighbours in time, joint sets from detected parts only, detections linked into tracks, gaps filled, and the account of it all.
- `hpe_pretrain.data.loaders`: Fixed-length clips over a pose cache — never crossing a sequence, short sequences resampled as MotionBERT does — gathered a whole batch at a time into fastai `DataLoaders`.
- `hpe_pretrain.data.mixture`: Pretrain on several sources at once — prepared caches of any dataset and 2D-only keypoint files — each drawn with its own weight and converted to the model's joint set.
- `hpe_pretrain.data.motion`: Plausible human motion with no dataset: a 32-joint H36M-proportioned skeleton with per-subject bone lengths, driven by smooth joint-angle trajectories of several motion families, in world millimetres.
- `hpe_pretrain.data.mpi_inf_3dhp`: Read the official MPI-INF-3DHP files (training `annot.mat` + `camera.calibration`, test `annot_data.mat`) into `PoseSequence`s; write the same formats for tests and synthetic data.
- `hpe_pretrain.data.mpi_inf_3dhp_files`: Read P-STMO's preprocessed `data_train_3dhp.npz` / `data_test_3dhp.npz` into `PoseSequence`s, and read any MPI-INF-3DHP source (official files or npz) with `detect_3dhp_format` / `iter_3dhp`.
- `hpe_pretrain.data.mpi_test_cameras`: The cameras of the MPI-INF-3DHP test sequences: the test set's `.calib` files (tc camera calibration v0.3), and which camera each sequence gets.
- `hpe_pretrain.data.other_keypoint_files`: Readers and writers of OpenPose folders, mmpose predictions and plain keypoint arrays, and how each keypoint format is recognised.
- `hpe_pretrain.data.paths`: Where a training run keeps its files (`RunDir`) and where the package keeps its YAML configs.
- `hpe_pretrain.data.prepare`: One entry point from any H36M / MPI-INF-3DHP source (or synthetic data) to the pose cache: format detection, source fingerprints for cache reuse, atomic writes, a summary table, and the `hpe-pretrain prepare` arguments.
- `hpe_pretrain.data.sequence`: `PoseSequence`, the unit every reader yields and the pose cache stores; its per-frame fields and their validation.
- `hpe_pretrain.data.skeleton`: Immutable joint sets (names, kinematic tree, left/right pairs, flip permutation) and the maps between them.
- `hpe_pretrain.data.synthetic`: Synthetic motion rendered through made-up cameras and written in the real raw formats: an H36M `D3_Positions` CDF tree with its `metadata.xml`, and an MPI-INF-3DHP `annot.mat` / `annot_data.mat` tree with `camera.calibration`.
- `hpe_pretrain.models.dstformer`: MotionBERT's dual-stream spatio-temporal transformer, written from the paper's description, with fused attention.
- `hpe_pretrain.models.factory`: The registry of architectures: create models by name from the shipped YAML configs, and transfer pretrained weights by name.
- `hpe_pretrain.models.joints`: Carry weights across joint sets: which tensors hold one slice per joint, and a state dict re-ordered from one joint set to another.
- `hpe_pretrain.models.layers`: Reusable transformer parts for pose sequences: fast linear layers, attention over joints or frames, embeddings, blocks and heads.
- `hpe_pretrain.models.losses`: Training objectives for pose sequences: MPJPE, scale-aligned N-MPJPE, velocity, bone lengths, confidence-weighted 2D, masked positions — and their weighted combination.
- `hpe_pretrain.models.stmo`: A lighter lifting transformer of the P-STMO / MixSTE family, with a masked-pose-modelling mode whose encoder sees only the visible frames.
- `hpe_pretrain.testing`: Synthetic batches, a tiny pose cache and a tiny learner for tests, demos and benchmarks (as fastai's `test_utils`): nothing in the package depends on them.
- `hpe_pretrain.train.callbacks`: Small fastai callbacks for what fastai lacks: exact resume, per-epoch seeding, atomic checkpoints, NaN guard, CPU bf16 autocast, throughput — plus the learning-rate schedules, all on top of fastai's own loop.
- `hpe_pretrain.train.distributed`: The process's rank under `torchrun`, fastai's DDP trainer made safe for CPU (gloo), and a digest of a model's weights to compare ranks and runs.
- `hpe_pretrain.train.evaluate`: Whole-sequence inference with sliding windows and flip TTA, and a model (or any `predict_fn`) evaluated on a pose cache with the Human3.6M and MPI-INF-3DHP protocols of `train.eval_protocols`, results written per run.
- `hpe_pretrain.train.resume`: Resume a run with its own saved config: the keys a resumed run may change, and what it changed.
- `hpe_pretrain.transforms.augment`: Horizontal flip (and flip test-time augmentation), rotation about the vertical axis with scale, 2D jitter.
- `hpe_pretrain.transforms.codecs`: The input encodings and output conventions of every model the package runs.
- `hpe_pretrain.transforms.corrupt`: The 2D-input corruptions of the pretraining objectives as batch transforms that report their masks.
- `hpe_pretrain.transforms.normalize`: `PoseCodec`, the one encoding between the loader's pixels and metres and the model's inputs and targets.
- `hpe_pretrain.viz.explorer`: An ipywidgets browser over a pose cache and optional predictions: pick subject, action, camera and frame; see the 2D keypoints, the 3D ground truth and prediction side by side, and the per-joint errors.
- `hpe_pretrain.viz.report`: Bar charts of per-joint and per-action errors, error over time, the worst sequences, training curves from fastai CSV and TensorBoard logs, and a self-contained HTML report of a training run.
- `hpe_pretrain.viz.screenshot`: PNG images of HTML pages and plotly figures, drawn by headless Chromium: for the docs' images and render checks.
- `hpe_pretrain.viz.skeleton`: Plotly figures of poses: 3D skeletons (one, or ground truth and prediction overlaid) with an optional camera frustum, 2D skeletons on an image-sized canvas, and animations with a frame slider and a play button."""

__version__ = "0.0.1"
