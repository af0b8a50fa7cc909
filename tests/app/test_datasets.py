"""Dataset discovery in a folder (mrcnn.app.datasets): COCO's layout and
CVAT's COCO 1.0 export."""
import os

from mrcnn.app.datasets import find_coco_files


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def test_coco_layout_finds_the_year(tmp_path):
    _touch(str(tmp_path / "annotations" / "instances_val2017.json"))
    assert find_coco_files(str(tmp_path), "val") == (
        str(tmp_path / "annotations" / "instances_val2017.json"),
        str(tmp_path / "val2017"))
    assert find_coco_files(str(tmp_path), "train") is None


def test_cvat_coco_export_is_the_train_subset(tmp_path):
    _touch(str(tmp_path / "annotations" / "instances_default.json"))
    assert find_coco_files(str(tmp_path), "train") == (
        str(tmp_path / "annotations" / "instances_default.json"),
        str(tmp_path / "images"))
    assert find_coco_files(str(tmp_path), "val") is None
    assert find_coco_files(str(tmp_path), "train", "pics")[1] == "pics"
