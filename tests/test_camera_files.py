"""Camera file parsers exercised from outside the notebooks: H36M metadata.xml and 3DHP camera.calibration.

All files are generated here with made-up numbers, in the real layouts."""
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from hpe_pretrain.data.camera import (
    H36M_CAMERA_IDS, H36M_RESOLUTION, H36M_SUBJECTS, Camera, h36m_like_cameras, look_at, project)
from hpe_pretrain.data.camera_files import (
    read_3dhp_calibration, read_h36m_metadata, write_3dhp_calibration, write_h36m_metadata)


@pytest.fixture(scope="module")
def h36m_cams():
    return h36m_like_cameras(seed=3)


@pytest.fixture
def metadata(tmp_path, h36m_cams):
    return write_h36m_metadata(tmp_path / "metadata.xml", h36m_cams, {("S1", 15, 1): "WalkingDog 1"})


def _hp_cams(n=14):
    out = {}
    for i in range(n):
        a = 2 * math.pi * i / n
        R, t = look_at((3.5 * math.cos(a), 3.5 * math.sin(a), 0.8 + 0.05 * i), (0, 0, 0.9))
        out[i] = Camera(str(i), R, t, (1490 + i, 1495 + i), (1020 - i, 1040 + i), (0, 0, 0), (0, 0), 2048, 2048)
    return out


def test_h36m_round_trip(metadata, h36m_cams):
    back = read_h36m_metadata(metadata)
    assert set(back) == {(s, c) for s in H36M_SUBJECTS for c in H36M_CAMERA_IDS}
    for key, cam in h36m_cams.items():
        got = back[key]
        for name in "R t f c k p".split():
            np.testing.assert_allclose(getattr(got, name), getattr(cam, name), atol=1e-6, rtol=0)
        assert (got.width, got.height) == H36M_RESOLUTION[key[1]]


def test_h36m_layout(metadata):
    root = ET.parse(metadata).getroot()
    rows = list(root.find("mapping"))
    assert len(rows) == 1 + 32 + 2 and [td.text for td in rows[0]][2:] == list(H36M_SUBJECTS)   # the real layout:
    assert [td.text for td in rows[-2]][:2] == ["Action", "subaction"]                         # a header of first names,
    assert [td.text for td in rows[-1]][:2] == [None, None] and rows[-1][2].text.startswith("[")  # then the image sizes
    assert len(root.find("toffiles")) == 1 + 32
    walkdog = [r for r in rows[1:] if [td.text for td in r][:2] == ["15", "1"]][0]
    assert walkdog[2].text == "WalkingDog 1"
    assert [e.text for e in root.find("dbcameras/index2id")] == list(H36M_CAMERA_IDS)
    assert len(root.find("actionnames")) == 16
    assert len(root.find("w0").text.strip("[]").split()) == 300
    assert not [p for p in metadata.parent.iterdir() if p.suffix == ".tmp"]  # atomic writer leaves no temp file


def test_h36m_projection_consistent(metadata, h36m_cams):
    cam = read_h36m_metadata(metadata)[("S11", "60457274")]
    X = np.random.default_rng(0).normal(size=(10, 17, 3)) * 0.3 + [0, 0, 0.9]
    np.testing.assert_allclose(cam.project_world(X), h36m_cams[("S11", "60457274")].project_world(X), atol=1e-4)
    Xt = torch.tensor(X, dtype=torch.float64)
    np.testing.assert_allclose(cam.project_world(Xt).numpy(), cam.project_world(X), atol=1e-9)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("<w0>", "<w_0>").replace("</w0>", "</w_0>"), "missing field <w0>"),
    (lambda s: s.replace("<w0>[", "<w0>[0.5 "), "field <w0> has 301 numbers, expected 300"),
    (lambda s: s.replace("<w0>[", "<w0>[1.0.0 "), "non-numeric value '1.0.0'"),
    (lambda s: s.replace("</metadata>", ""), "malformed XML"),
    (lambda s: s.replace("<item>60457274</item>", ""), "<dbcameras><index2id> has 3 camera ids"),
])
def test_h36m_errors(metadata, tmp_path, edit, message):
    bad = tmp_path / "bad_metadata.xml"
    bad.write_text(edit(metadata.read_text()))
    with pytest.raises(ValueError, match=None) as e:
        read_h36m_metadata(bad)
    assert message in str(e.value) and str(bad) in str(e.value)


def test_h36m_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_h36m_metadata(tmp_path / "metadata.xml")


def test_h36m_whitespace_tolerant(metadata):
    text = metadata.read_text().replace("<w0>[", "<w0>\n[ ").replace(" ", "\n  ").replace("\n  encoding", " encoding")
    metadata.write_text(text)
    assert len(read_h36m_metadata(metadata)) == 44


def test_3dhp_round_trip(tmp_path):
    cams = _hp_cams()
    path = write_3dhp_calibration(tmp_path / "camera.calibration", cams)
    lines = path.read_text().splitlines()
    assert lines[0] == "Skeletool Camera Calibration File V1.0" and len(lines) == 1 + 14 * 7
    back = read_3dhp_calibration(path)
    assert sorted(back) == list(range(14))
    for i, cam in cams.items():
        assert back[i].allclose(cam, atol=1e-9)
        X = np.array([0.1, -0.2, 1.0])
        np.testing.assert_allclose(back[i].project_world(X), cam.project_world(X), atol=1e-6)


def test_3dhp_tolerant_tokens(tmp_path):
    path = write_3dhp_calibration(tmp_path / "camera.calibration", _hp_cams(3))
    path.write_text("\n\n".join(l.replace(" ", "\t") if not l.startswith("Skeletool") else l
                                for l in path.read_text().splitlines()) + "\n\n")
    assert len(read_3dhp_calibration(path)) == 3


@pytest.mark.parametrize("drop_or_edit, message", [
    ("intrinsic", "camera block 'name 1': missing field 'intrinsic'"),
    ("size", "camera block 'name 1': missing field 'size'"),
    (("animated    0", "animated    1"), "field 'animated' is 1"),
    (("radial      0.0", "radial      0.0 0.1"), "field 'radial' has 2 values, expected 1"),
    (("Skeletool Camera Calibration File V1.0", "camera file"), "missing header line"),
])
def test_3dhp_errors(tmp_path, drop_or_edit, message):
    path = write_3dhp_calibration(tmp_path / "camera.calibration", _hp_cams(3))
    lines = path.read_text().splitlines()
    if isinstance(drop_or_edit, str):  # drop that field from the second block (name 1)
        i = next(j for j in range(8, 15) if lines[j].split()[0] == drop_or_edit)
        lines = lines[:i] + lines[i + 1:]
        text = "\n".join(lines)
    else:
        text = "\n".join(lines).replace(*drop_or_edit)
    path.write_text(text + "\n")
    with pytest.raises(ValueError) as e:
        read_3dhp_calibration(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_zero_distortion_is_pinhole():
    X = np.random.default_rng(1).normal(size=(4, 3)) + [0, 0, 5]
    f, c = np.array([1000.0, 990.0]), np.array([500.0, 480.0])
    np.testing.assert_allclose(project(X, f, c, np.zeros(3), np.zeros(2)), X[:, :2] / X[:, 2:] * f + c, atol=1e-9)
