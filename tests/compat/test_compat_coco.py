"""Compatibility: a script shaped like Matterport's samples/coco/coco.py.

coco.py imports imgaug first (numpy 2: the start-up hook of setup.py), then
pycocotools; its CocoDataset subclasses utils.Dataset directly (add_image
with width / height / annotations, map_source_class_id, crowds as negative
ids, the parent's empty load_mask), trains with an imgaug augmenter, and
evaluates with build_coco_results + COCOeval on detect()'s output. Run as a
script in a fresh interpreter on ../shared/data/coco_tiny (also linked as
"val2017", as `coco.py evaluate --year 2017` reads it).
"""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import shared_path

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("imgaug") is None,
    reason="imgaug is not installed (pip install --no-deps imgaug==0.4.0)")

SCRIPT = '''\
import os, sys, time
import numpy as np
import imgaug
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from pycocotools import mask as maskUtils
from mrcnn.config import Config
from mrcnn import model as modellib, utils

class CocoConfig(Config):
    NAME = "coco"; IMAGES_PER_GPU = 2; NUM_CLASSES = 1 + 80
    BACKBONE = "resnet50"; IMAGE_MIN_DIM = 128; IMAGE_MAX_DIM = 128; STEPS_PER_EPOCH = 1; VALIDATION_STEPS = 1

class CocoDataset(utils.Dataset):
    def load_coco(self, dataset_dir, subset, year="2017", class_ids=None, class_map=None, return_coco=False, auto_download=False):
        coco = COCO("{}/annotations/instances_{}{}.json".format(dataset_dir, subset, year))
        image_dir = "{}/{}{}".format(dataset_dir, subset, year)
        if not class_ids:
            class_ids = sorted(coco.getCatIds())
        if class_ids:
            image_ids = []
            for id in class_ids:
                image_ids.extend(list(coco.getImgIds(catIds=[id])))
            image_ids = list(set(image_ids))
        for i in class_ids:
            self.add_class("coco", i, coco.loadCats(i)[0]["name"])
        for i in image_ids:
            self.add_image("coco", image_id=i, path=os.path.join(image_dir, coco.imgs[i]['file_name']),
                width=coco.imgs[i]["width"], height=coco.imgs[i]["height"],
                annotations=coco.loadAnns(coco.getAnnIds(imgIds=[i], catIds=class_ids, iscrowd=None)))
        if return_coco:
            return coco
    def load_mask(self, image_id):
        image_info = self.image_info[image_id]
        if image_info["source"] != "coco":
            return super(CocoDataset, self).load_mask(image_id)
        instance_masks = []; class_ids = []
        for annotation in self.image_info[image_id]["annotations"]:
            class_id = self.map_source_class_id("coco.{}".format(annotation['category_id']))
            if class_id:
                m = self.annToMask(annotation, image_info["height"], image_info["width"])
                if m.max() < 1:
                    continue
                if annotation['iscrowd']:
                    class_id *= -1
                    if m.shape[0] != image_info["height"] or m.shape[1] != image_info["width"]:
                        m = np.ones([image_info["height"], image_info["width"]], dtype=bool)
                instance_masks.append(m); class_ids.append(class_id)
        if class_ids:
            return np.stack(instance_masks, axis=2).astype(np.bool), np.array(class_ids, dtype=np.int32)
        return super(CocoDataset, self).load_mask(image_id)
    def annToRLE(self, ann, height, width):
        segm = ann['segmentation']
        if isinstance(segm, list):
            rle = maskUtils.merge(maskUtils.frPyObjects(segm, height, width))
        elif isinstance(segm['counts'], list):
            rle = maskUtils.frPyObjects(segm, height, width)
        else:
            rle = ann['segmentation']
        return rle
    def annToMask(self, ann, height, width):
        return maskUtils.decode(self.annToRLE(ann, height, width))

def build_coco_results(dataset, image_ids, rois, class_ids, scores, masks):
    if rois is None:
        return []
    results = []
    for image_id in image_ids:
        for i in range(rois.shape[0]):
            bbox = np.around(rois[i], 1)
            results.append({"image_id": image_id, "category_id": dataset.get_source_class_id(class_ids[i], "coco"),
                "bbox": [bbox[1], bbox[0], bbox[3] - bbox[1], bbox[2] - bbox[0]], "score": scores[i],
                "segmentation": maskUtils.encode(np.asfortranarray(masks[:, :, i]))})
    return results

def evaluate_coco(model, dataset, coco, eval_type="bbox", limit=0, image_ids=None):
    image_ids = image_ids or dataset.image_ids
    if limit:
        image_ids = image_ids[:limit]
    coco_image_ids = [dataset.image_info[id]["id"] for id in image_ids]
    results = []
    for i, image_id in enumerate(image_ids):
        image = dataset.load_image(image_id)
        r = model.detect([image], verbose=0)[0]
        results.extend(build_coco_results(dataset, coco_image_ids[i:i + 1], r["rois"], r["class_ids"], r["scores"], r["masks"].astype(np.uint8)))
    coco_results = coco.loadRes(results)
    cocoEval = COCOeval(coco, coco_results, eval_type)
    cocoEval.params.imgIds = coco_image_ids
    cocoEval.evaluate(); cocoEval.accumulate(); cocoEval.summarize()

if __name__ == "__main__":
    DS, LOGS = sys.argv[1:3]
    config = CocoConfig()
    model = modellib.MaskRCNN(mode="training", config=config, model_dir=LOGS)
    dataset_train = CocoDataset()
    dataset_train.load_coco(DS, "train", year="2017")
    dataset_train.prepare()
    dataset_val = CocoDataset()
    val_type = "val"
    dataset_val.load_coco(DS, val_type, year="2017")
    dataset_val.prepare()
    augmentation = imgaug.augmenters.Fliplr(0.5)
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE,
                epochs=1, layers='heads', augmentation=augmentation)

    class InferenceConfig(CocoConfig):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        DETECTION_MIN_CONFIDENCE = 0
    config = InferenceConfig()
    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=LOGS)
    model.load_weights(model.find_last(), by_name=True)
    dataset_val = CocoDataset()
    coco = dataset_val.load_coco(DS, val_type, year="2017", return_coco=True)
    dataset_val.prepare()
    print("classes", dataset_val.num_classes, "images", dataset_val.num_images)
    evaluate_coco(model, dataset_val, coco, "segm", limit=2)
    print("EVALUATED")
'''


def test_coco_style_script_trains_and_runs_cocoeval(tmp_path):
    coco_tiny = shared_path("coco_tiny")
    dataset = tmp_path / "coco"
    (dataset / "annotations").mkdir(parents=True)
    annotations = os.path.join(coco_tiny, "annotations",
                               "instances_train2017.json")
    for subset in ("train", "val"):
        os.symlink(annotations, str(dataset / "annotations" /
                                    "instances_{}2017.json".format(subset)))
        os.symlink(os.path.join(coco_tiny, "train2017"),
                   str(dataset / "{}2017".format(subset)))
    script = tmp_path / "coco.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)          # the installed package, as a user has
    out = subprocess.run([sys.executable, str(script), str(dataset),
                          str(tmp_path / "logs")], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "classes 81 images 80" in out.stdout, out.stdout[-2000:]
    # COCOeval ran on the detections and printed its 12 summary lines.
    assert out.stdout.count("Average Precision") == 6, out.stdout[-3000:]
    assert out.stdout.count("Average Recall") == 6
    assert out.stdout.rstrip().endswith("EVALUATED")
