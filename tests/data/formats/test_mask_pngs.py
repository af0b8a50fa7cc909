"""Instance-mask PNGs: the one-PNG-per-instance (nucleus) layout and the
instance-id PNG + class map layout (JSON or CSV): exact round trips, the
overlap rule of the writer, bad files reported."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from formats_helpers import (first_records, reasons, reference,
                             synthetic_records, write_image)
from mrcnn.data.formats import (InstancePngDataset, MaskFolderDataset,
                                write_instance_pngs)


def _save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def test_one_png_per_instance_layout(tmp_path):
    masks = []
    for name in ("n1", "n2"):
        write_image(str(tmp_path / name / "images" / (name + ".png")), 30, 40)
        for k in range(2):
            m = np.zeros((30, 40), np.uint8)
            m[5 + 10 * k:12 + 10 * k, 4:20 + k] = 255
            _save(str(tmp_path / name / "masks" / "m{}.png".format(k)), m)
            masks.append(m > 0)
    _save(str(tmp_path / "n2" / "masks" / "small.png"),
          np.zeros((10, 10), np.uint8))
    dataset = MaskFolderDataset()
    with pytest.warns(UserWarning, match="small.png"):
        dataset.load_mask_folders(str(tmp_path), class_name="nucleus")
    dataset.prepare()
    assert dataset.class_names == ["BG", "nucleus"]
    got = [dataset.load_mask(i) for i in dataset.image_ids]
    np.testing.assert_array_equal(
        np.concatenate([m for m, _ in got], axis=2),
        np.stack(masks, axis=2))
    assert reasons(dataset) == ["image n2, mask small.png: mask is 10x10 "
                                "px, the image 40x30"]


def _load(folder):
    dataset = InstancePngDataset()
    dataset.load_instance_pngs(str(folder))
    dataset.prepare()
    return dataset


def test_exact_round_trip_without_overlaps(tmp_path):
    records = synthetic_records(tmp_path, n=3)
    summary = write_instance_pngs(iter(records), str(tmp_path / "out"),
                                  ["BG", "a", "b"])
    assert summary == {"images": 3, "instances": 6, "notes": []}
    got = _load(tmp_path / "out")
    assert got.class_names == ["BG", "a", "b"]
    for j, record in zip(got.image_ids, records):
        masks, class_ids = got.load_mask(j)
        assert list(class_ids) == [1, 2]
        np.testing.assert_array_equal(masks, np.stack(record["masks"], 2))


def test_coco_tiny_overlaps_are_noted(tmp_path):
    """A pixel holds one instance: the smaller of two overlapping ones
    keeps it and the writer names the instance that lost pixels; every
    other pixel, every class and crowd flag comes back exactly."""
    ref = reference("coco_tiny", "train")
    summary = write_instance_pngs(first_records(ref, 10), str(tmp_path),
                                  ref.class_names)
    got = _load(tmp_path)
    assert got.class_names == ref.class_names
    noted = {n.split(": instance ")[0] + "/" + n.split(": instance ")[1]
             .split(":")[0] for n in summary["notes"]}
    assert any("are under a smaller overlapping instance" in n
               for n in summary["notes"])
    for j in got.image_ids:
        name = os.path.basename(got.image_info[j]["path"])
        i = next(i for i in ref.image_ids
                 if os.path.basename(ref.image_info[i]["path"]) == name)
        m1, c1 = ref.load_mask(i)
        m2, c2 = got.load_mask(j)
        ids = np.asarray(Image.open(str(tmp_path / "instances" / (
            os.path.splitext(name)[0] + ".png"))))
        present = []
        for k in range(m1.shape[2]):
            written = ids == k + 1
            assert not (written & ~m1[:, :, k]).any()
            if "{}/{}".format(name, k + 1) not in noted:
                np.testing.assert_array_equal(written, m1[:, :, k])
            if written.any():
                present.append(k)
        assert list(c2) == [c1[k] for k in present]
        for n, k in enumerate(present):
            np.testing.assert_array_equal(m2[:, :, n], ids == k + 1)


def _instance_folder(tmp_path, class_map, csv_text=None):
    write_image(str(tmp_path / "images" / "a.png"), 20, 30)
    ids = np.zeros((20, 30), np.uint8)
    ids[2:8, 2:8] = 1
    ids[10:15, 10:25] = 2
    ids[16:19, 1:4] = 3
    _save(str(tmp_path / "instances" / "a.png"), ids)
    if csv_text is not None:
        (tmp_path / "classes.csv").write_text(csv_text)
    else:
        (tmp_path / "classes.json").write_text(json.dumps(class_map))
    return ids


def test_class_map_json_default_and_csv(tmp_path):
    ids = _instance_folder(tmp_path / "j", {
        "instances": {"a": {"1": "cat", "2": {"class": "dog",
                                              "iscrowd": True}}},
        "default": {"3": "cat"}})
    got = _load(tmp_path / "j")
    masks, class_ids = got.load_mask(0)
    assert got.class_names == ["BG", "cat", "dog"]
    assert list(class_ids) == [1, -2, 1]
    expected = np.stack([ids == k for k in (1, 2, 3)], axis=2)
    np.testing.assert_array_equal(masks, expected)
    _instance_folder(tmp_path / "c", None, "image,instance,class,iscrowd\n"
                     "a,1,cat,\na,2,dog,1\n*,3,cat,\n")
    got = _load(tmp_path / "c")
    assert list(got.load_mask(0)[1]) == [1, -2, 1]


def test_bad_class_maps_are_reported(tmp_path):
    _instance_folder(tmp_path, {
        "class_names": ["cat"],
        "instances": {"a": {"1": "cat", "2": "dog", "7": "cat"}}})
    write_image(str(tmp_path / "images" / "b.png"), 20, 30)  # no PNG
    with pytest.warns(UserWarning):
        got = _load(tmp_path)
    said = reasons(got)
    assert said[0].startswith("image a, instance 7: the class map names it")
    assert said[1] == "image a, instance 2: class 'dog' is not in the class " \
        "list (cat)"
    assert said[2] == "image a, instance 3: no class for instance id 3 in " \
        "classes.json"
    assert said[3].startswith("image b: no instance PNG")
    assert len(said) == 4 and list(got.load_mask(0)[1]) == [1]
