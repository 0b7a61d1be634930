#!/usr/bin/env python3
"""Runs the reference PSFR code (OpenCV) on synthetic frames and writes what it found, for the Rust PSFR tests.

    pip install numpy opencv-python-headless
    python3 tools/make_psfr_fixture.py /work/.mirror/markus0440+SceneGraphVLM/repo \
        crates/data/tests/fixtures/psfr/reference.json

The frames are not stored: they are a formula both sides compute exactly in integers (`frame(seed, shift)`,
mirrored by `crates/data/tests/psfr_reference.rs`): a 640×480 RGB image bilinearly interpolated (integer
arithmetic) from pseudo-random values on a 16-px grid, shifted right by `shift` pixels. The reference modules are
read from the bare git repository given (utils/PSFR/src/*.py, config utils/PSFR/config_pvsg.json); matplotlib and
tqdm, which they import for display only, are stubbed. CI does not run this script; its output is committed.
"""

import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np

W, H, STEP = 640, 480, 16
# (seed, shift) per frame: a slow pan, then a cut to another scene, then a pan there.
FRAMES = [(1, 0), (1, 2), (1, 4), (1, 6), (2, 0), (2, 1), (2, 2), (3, 0)]


def grid_value(i, j, seed):
    h = ((i * 73856093) ^ (j * 19349663) ^ (seed * 83492791)) & 0xFFFFFFFF
    return ((h * 2654435761) & 0xFFFFFFFF) >> 24


def frame(seed, shift):
    """RGB uint8 (H, W, 3)."""
    img = np.zeros((H, W, 3), np.uint8)
    gw, gh = W // STEP + 2, H // STEP + 2
    for c in range(3):
        g = np.array([[grid_value(i, j, seed * 3 + c) for i in range(gw + 1)] for j in range(gh + 1)], np.int64)
        xs = np.arange(W) - shift + STEP  # shifted right; +STEP keeps indices non-negative
        ys = np.arange(H)
        i0, fx = xs // STEP, xs % STEP
        j0, fy = ys // STEP, ys % STEP
        a = g[j0][:, i0]
        b = g[j0][:, i0 + 1]
        cc = g[j0 + 1][:, i0]
        d = g[j0 + 1][:, i0 + 1]
        fx, fy = fx[None, :], fy[:, None]
        v = ((STEP - fx) * (STEP - fy) * a + fx * (STEP - fy) * b + (STEP - fx) * fy * cc + fx * fy * d) // (STEP * STEP)
        img[:, :, c] = v.astype(np.uint8)
    return img


def main():
    repo, out = sys.argv[1], Path(sys.argv[2])
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "src"
    src.mkdir()
    for name in ["key_frame_selection", "shi_tomasi", "lucas_kanade", "utils", "constants"]:
        text = subprocess.run(["git", f"--git-dir={repo}", "show", f"HEAD:utils/PSFR/src/{name}.py"],
                              check=True, capture_output=True, text=True).stdout
        (src / f"{name}.py").write_text(text)
    cfg = json.loads(subprocess.run(["git", f"--git-dir={repo}", "show", "HEAD:utils/PSFR/config_pvsg.json"],
                                    check=True, capture_output=True, text=True).stdout)
    mpl = types.ModuleType("matplotlib")
    mpl.pyplot = types.ModuleType("matplotlib.pyplot")
    sys.modules.update({"matplotlib": mpl, "matplotlib.pyplot": mpl.pyplot})
    tq = types.ModuleType("tqdm")
    tq.tqdm = lambda it, *a, **k: it
    sys.modules["tqdm"] = tq
    sys.path.insert(0, str(src))
    import key_frame_selection as kfs
    import shi_tomasi as st

    paths = []
    for k, (seed, shift) in enumerate(FRAMES):
        p = tmp / f"{k:04d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(frame(seed, shift), cv2.COLOR_RGB2BGR))
        paths.append(p)
    shi, lk = cfg["shi_tomasi"], cfg["lucas_kanade"]
    report = kfs.select_keyframes_from_frames(
        frames_dir=Path("."), out_dir=Path("."), key_frames_dir=Path("."), patching=cfg["patching"], shi=shi, lk=lk,
        selection=cfg["selection"], preprocess=cfg.get("preprocess"), visualization={"enabled": False},
        frame_paths=paths)
    first = cv2.resize(cv2.imread(str(paths[0])), (640, 360), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(first, cv2.COLOR_BGR2GRAY)
    corners = st.shi_tomasi_with_patching_and_sorting(
        grey, nw=3, nh=3, centroidal=True, need_grey=False, max_corners_patch=int(shi["max_corners_patch"]),
        maxCorners=int(shi["CORNERS_LIMIT_PER_IMAGE"]), dedup_radius=float(shi["dedup_radius"]),
        qualityLevel=float(shi["qualityLevel"]), minDistance=float(shi["minDistance"]),
        useHarrisDetector=bool(shi["useHarrisDetector"]), blockSize=int(shi["blockSize"]),
        gradientSize=int(shi["gradientSize"]), k=float(shi["k"]), custom_sort=st.custom_sorting_by_quality)
    doc = {
        "opencv": cv2.__version__,
        "frames": [list(f) for f in FRAMES],
        "keyframes": [int(Path(n).stem) for n in report["keyframes"]],
        "corners_frame0": [[float(x), float(y)] for x, y in corners],
        "grey_frame0_sum": int(grey.astype(np.int64).sum()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, separators=(",", ":")).replace("],[", "],\n[") + "\n")
    print(f"wrote {out}: keyframes {doc['keyframes']}, {len(corners)} corners")


if __name__ == "__main__":
    main()
