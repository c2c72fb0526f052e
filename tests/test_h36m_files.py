"""H36M readers end to end: files written in the real layouts (made-up numbers) -> `iter_h36m` -> pose cache.

Each test writes a tiny source, reads it through the public entry point `iter_h36m` (format auto-detected, as the
`prepare` command does), and checks every value and name."""
import numpy as np
import pytest

from hpe_pretrain.data.cache import PoseCache
from hpe_pretrain.data.cache_writer import write_cache
from hpe_pretrain.data.camera import H36M_CAMERA_IDS, h36m_like_cameras
from hpe_pretrain.data.camera_files import write_h36m_metadata
from hpe_pretrain.data.h36m import (canonical_action, h36m_sequences, read_h36m_mapping, write_h36m_raw)
from hpe_pretrain.data.h36m_files import write_vp3d_npz_2d, write_vp3d_npz_3d
from hpe_pretrain.data.h36m_formats import detect_h36m_format, iter_h36m, write_motionbert_pkl
from hpe_pretrain.data.skeleton import convert_joints

CAMS = h36m_like_cameras(seed=5)
MAPPING = {("S1", 9, 1): "Sitting 1", ("S1", 9, 2): "Sitting", ("S1", 10, 1): "SittingDown", ("S1", 10, 2): "SittingDown 2",
           ("S1", 12, 1): "TakingPhoto 1", ("S1", 15, 2): "WalkingDog", ("S11", 2, 1): "Directions 1", ("S11", 2, 2): "Directions"}


def _raw_tree(root, subjects=("S1", "S11"), n=3, seed=0):
    rng = np.random.default_rng(seed)
    meta = write_h36m_metadata(root / "metadata.xml", CAMS, MAPPING)
    names = [(s, b) for s, _, _, b in h36m_sequences(read_h36m_mapping(meta), subjects)] + [("S11", "Directions")]
    poses = {k: rng.normal(0, 300, (n, 32, 3)) + [0, 0, 900] for k in names}
    write_h36m_raw(root, poses, CAMS, MAPPING)
    return poses


def test_raw_cdf_tree_to_cache(tmp_path):
    poses = _raw_tree(tmp_path / "h36m")
    assert detect_h36m_format(tmp_path / "h36m") == "cdf"
    out = write_cache(tmp_path / "h36m.h5", iter_h36m(tmp_path / "h36m", subjects=("S1", "S11"), cameras=H36M_CAMERA_IDS[:2]),
                      dataset="h36m", joints="h36m17")
    with PoseCache(out) as cache:
        seqs = list(cache)
        assert len(seqs) == (30 + 29) * 2
        names = {s.name for s in seqs}
        assert {"S1/Photo 1/54138969", "S1/WalkDog/55011271", "S1/Sitting 1/54138969", "S1/SittingDown/54138969"} <= names
        assert "S11/Directions/54138969" not in names and "S11/Directions 1/54138969" in names
        base = {(s, canonical_action(b)): b for s, b in poses}
        for s in seqs:
            cam = CAMS[(s.subject, s.camera)]
            X = convert_joints(cam.world_to_camera(poses[(s.subject, base[(s.subject, s.action)])] / 1000), "h36m32", "h36m17")
            np.testing.assert_allclose(s.joints_3d, X, atol=1e-5)
            np.testing.assert_allclose(s.joints_2d, cam.project(X), atol=1e-3)
            assert s.split == ("train" if s.subject == "S1" else "test") and s.fps == 50


def test_vp3d_npz_and_motionbert_pkl(tmp_path):
    rng = np.random.default_rng(1)
    pos3 = {"S9": {"Photo 1": rng.normal(0, .3, (4, 32, 3)) + [0, 0, .9], "WalkDog": rng.normal(0, .3, (4, 32, 3)) + [0, 0, .9]}}
    pos2 = {"S9": {a: [rng.uniform(0, 1000, (6, 17, 2)) for _ in range(4)] for a in pos3["S9"]}}
    p3 = write_vp3d_npz_3d(tmp_path / "data_3d_h36m.npz", pos3)
    p2 = write_vp3d_npz_2d(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", pos2)
    write_h36m_metadata(tmp_path / "metadata.xml", CAMS)
    seqs = list(iter_h36m(p3, path_2d=p2, cameras=("60457274",)))
    assert [s.name for s in seqs] == ["S9/Photo 1/60457274", "S9/WalkDog/60457274"]
    for s in seqs:
        cam = CAMS[("S9", "60457274")]
        np.testing.assert_allclose(s.joints_3d, convert_joints(cam.world_to_camera(pos3["S9"][s.action]), "h36m32", "h36m17"), atol=1e-5)
        np.testing.assert_array_equal(s.joints_2d, pos2["S9"][s.action][3][:4].astype(np.float32))
        assert (s.width, s.height, s.split) == (1000, 1002, "test")

    N = 5
    j3 = rng.uniform(0, 1000, (N, 17, 3))
    mb = {"train": {"joint_2d": rng.uniform(0, 1000, (N, 17, 2)), "confidence": rng.uniform(0, 1, (N, 17, 1)),
                    "joint3d_image": j3, "camera_name": np.array(["54138969"] * N),
                    "source": np.array(["s_05_act_10_subact_01_ca_01"] * 2 + ["s_05_act_09_subact_01_ca_01"] * 3)}}
    pk = write_motionbert_pkl(tmp_path / "h36m_sh_conf_cam_source_final.pkl", mb)
    with pytest.raises(ValueError, match="pickle can execute arbitrary code"):
        list(iter_h36m(pk))
    seqs = list(iter_h36m(pk, trust_pickle=True, splits=("train",)))
    assert [s.name for s in seqs] == ["S5/SittingDown 1/54138969", "S5/Sitting 1/54138969"]
    np.testing.assert_allclose(seqs[1].joints_3d, (j3[2:] - j3[2:, :1]) * 4.5 / 1000, atol=1e-5)
    np.testing.assert_allclose(seqs[1].confidence, mb["train"]["confidence"][2:, :, 0], atol=1e-7)


@pytest.mark.parametrize("case, match", [
    ("empty", "no H36M data found"),
    ("truncated_cdf", "Walking 1.cdf: cannot read an H36M CDF (truncated"),
    ("npz_without_positions_3d", "no 'positions_3d' array"),
    ("wrong_joint_count", "has shape (2, 25, 3); expected (N, 32, 3) or (N, 17, 3)"),
])
def test_bad_sources_one_line_errors(tmp_path, case, match):
    src = tmp_path / "src"
    src.mkdir()
    if case == "truncated_cdf":
        m = {("S1", a, k): "Walking 1" if (a, k) == (14, 1) else "_ALL" for a in range(1, 17) for k in (1, 2)}
        write_h36m_raw(src, {("S1", "Walking 1"): np.zeros((50, 32, 3)) + [0, 0, 900]}, CAMS, m)
        f = src / "S1/MyPoseFeatures/D3_Positions/Walking 1.cdf"
        f.write_bytes(f.read_bytes()[:2000])
    if case == "npz_without_positions_3d":
        write_vp3d_npz_2d(src / "data_3d_h36m.npz", {"S1": {"Walking 1": [np.zeros((2, 17, 2))] * 4}})
    if case == "wrong_joint_count":
        write_vp3d_npz_3d(src / "data_3d_h36m.npz", {"S1": {"Walking 1": np.zeros((2, 25, 3))}})
        write_h36m_metadata(src / "metadata.xml", CAMS)
    with pytest.raises(ValueError) as e:
        list(iter_h36m(src, subjects=("S1",)))
    assert match in str(e.value) and "\n" not in str(e.value)
    assert str(src) in str(e.value)
