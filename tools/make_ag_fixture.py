#!/usr/bin/env python3
"""Writes the tiny Action Genome fixture in the exact shapes of the official files (run once; output committed).

crates/data/tests/fixtures/ag/annotations/{object_bbox_and_relationship.pkl, person_bbox.pkl, frame_list.txt}
Shapes follow shared/reference/datasets_and_peers.md §3: object boxes are (x, y, w, h) float tuples or None,
person boxes float32 (N, 4) xyxy numpy arrays (N may be 0), bbox_size a (w, h) tuple. Values are made up.
Usage: python3 tools/make_ag_fixture.py  (needs numpy)
"""
import os
import pickle

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "data", "tests", "fixtures", "ag", "annotations")


def item(cls, bbox, att, spa, con, visible, tag, split):
    return {
        "class": cls,
        "bbox": bbox,
        "attention_relationship": att,
        "spatial_relationship": spa,
        "contacting_relationship": con,
        "visible": visible,
        "metadata": {"tag": tag, "set": split},
    }


def person(rows):
    arr = np.array(rows, dtype=np.float32).reshape(-1, 4)
    n = arr.shape[0]
    return {
        "bbox": arr,
        "bbox_score": np.full((n,), 0.99, dtype=np.float32),
        "bbox_size": (480, 270),
        "bbox_mode": "xyxy",
        "keypoints": np.zeros((n, 17, 3), dtype=np.float32),
        "keypoints_logits": np.zeros((n, 17), dtype=np.float32),
    }


def main():
    objs = {
        "ABCDE.mp4/000012.png": [
            item("table", (222.0, 143.0, 257.0, 101.0), ["unsure"], ["in_front_of"], ["not_contacting"], True,
                 "ABCDE.mp4/table/000012", "test"),
            item("light", None, None, None, None, False, "ABCDE.mp4/light/000012", "test"),
            item("cup/glass/bottle", (10.5, 20.5, 30.0, 40.0), ["looking_at"], ["beneath", "behind", "beneath"],
                 ["holding"], True, "ABCDE.mp4/cup_glass_bottle/000012", "test"),
        ],
        "ABCDE.mp4/000007.png": [
            item("chair", (56.0, 179.0, 193.0, 90.0), ["not_looking_at"], [], ["sitting_on"], True,
                 "ABCDE.mp4/chair/000007", "test"),
        ],
        "FGHIJ.mp4/000003.png": [
            item("book", (0.0, 0.0, 479.0, 269.0), [], [], [], True, "FGHIJ.mp4/book/000003", "val"),
        ],
        "KLMNO.mp4/000001.png": [
            item("bed", (1.0, 2.0, 3.0, 4.0), ["unsure"], ["on_the_side_of"], ["lying_on"], True,
                 "KLMNO.mp4/bed/000001", "train"),
        ],
    }
    persons = {
        "ABCDE.mp4/000012.png": person([[24.0, 71.0, 259.0, 268.0], [1.0, 1.0, 2.0, 2.0]]),
        "ABCDE.mp4/000007.png": person([[24.5, 70.5, 258.5, 267.5]]),
        "FGHIJ.mp4/000003.png": person([[5.0, 5.0, 100.0, 200.0]]),
        "KLMNO.mp4/000001.png": person([]),
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "object_bbox_and_relationship.pkl"), "wb") as f:
        pickle.dump(objs, f, protocol=4)
    with open(os.path.join(OUT, "person_bbox.pkl"), "wb") as f:
        pickle.dump(persons, f, protocol=2)
    with open(os.path.join(OUT, "frame_list.txt"), "w") as f:
        f.write("".join(k + "\n" for k in objs))


if __name__ == "__main__":
    main()
