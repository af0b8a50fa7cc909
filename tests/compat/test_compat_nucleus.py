"""Compatibility: a script shaped like Matterport's samples/nucleus/nucleus.py.

nucleus.py imports imgaug *before* mrcnn (numpy 2: the start-up hook of
setup.py must let it import), trains on random 2x-upscaled crops
(IMAGE_RESIZE_MODE "crop", IMAGE_MIN_SCALE 2.0: a crop often misses every
nucleus), augments with imgaug's SomeOf, reads DSB2018-style folders
(RGBA PNG images, one PNG per nucleus mask, `.astype(np.bool)`), then
detects in "pad64" mode and writes the run-length-encoded submission.
Run as a script in a fresh interpreter, on nuclei-like discs the test draws.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("imgaug") is None,
    reason="imgaug is not installed (pip install --no-deps imgaug==0.4.0)")

SCRIPT = '''
if __name__ == '__main__':
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

import os
import sys
import datetime
import numpy as np
import skimage.io
from imgaug import augmenters as iaa

from mrcnn.config import Config
from mrcnn import utils
from mrcnn import model as modellib
from mrcnn import visualize

DATASET, LOGS, RESULTS_DIR = sys.argv[1:4]


class NucleusConfig(Config):
    NAME = "nucleus"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 1  # Background + nucleus
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1
    DETECTION_MIN_CONFIDENCE = 0
    BACKBONE = "resnet50"
    IMAGE_RESIZE_MODE = "crop"
    IMAGE_MIN_DIM = 128          # nucleus.py: 512
    IMAGE_MAX_DIM = 128
    IMAGE_MIN_SCALE = 2.0
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    POST_NMS_ROIS_TRAINING = 1000
    POST_NMS_ROIS_INFERENCE = 2000
    RPN_NMS_THRESHOLD = 0.9
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    MEAN_PIXEL = np.array([43.53, 39.56, 48.22])
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)
    TRAIN_ROIS_PER_IMAGE = 128
    MAX_GT_INSTANCES = 200
    DETECTION_MAX_INSTANCES = 400


class NucleusInferenceConfig(NucleusConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    IMAGE_RESIZE_MODE = "pad64"
    RPN_NMS_THRESHOLD = 0.7


class NucleusDataset(utils.Dataset):

    def load_nucleus(self, dataset_dir, subset):
        self.add_class("nucleus", 1, "nucleus")
        subset_dir = "stage1_train" if subset in ["train", "val"] else subset
        dataset_dir = os.path.join(dataset_dir, subset_dir)
        image_ids = sorted(next(os.walk(dataset_dir))[1])
        if subset == "val":
            image_ids = image_ids[:1]
        elif subset == "train":
            image_ids = image_ids[1:]
        for image_id in image_ids:
            self.add_image(
                "nucleus", image_id=image_id,
                path=os.path.join(dataset_dir, image_id,
                                  "images/{}.png".format(image_id)))

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        mask_dir = os.path.join(os.path.dirname(os.path.dirname(info['path'])),
                                "masks")
        mask = []
        for f in next(os.walk(mask_dir))[2]:
            if f.endswith(".png"):
                m = skimage.io.imread(os.path.join(mask_dir, f)).astype(np.bool)
                mask.append(m)
        mask = np.stack(mask, axis=-1)
        return mask, np.ones([mask.shape[-1]], dtype=np.int32)

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "nucleus":
            return info["id"]
        else:
            super(self.__class__, self).image_reference(image_id)


def rle_encode(mask):
    m = mask.T.flatten()
    g = np.diff(np.concatenate([[0], m, [0]]), n=1)
    rle = np.where(g != 0)[0].reshape([-1, 2]) + 1
    rle[:, 1] = rle[:, 1] - rle[:, 0]
    return " ".join(map(str, rle.flatten()))


def mask_to_rle(image_id, mask, scores):
    if mask.shape[-1] == 0:
        return "{},".format(image_id)
    order = np.argsort(scores)[::-1] + 1
    mask = np.max(mask * np.reshape(order, [1, 1, -1]), -1)
    lines = []
    for o in order:
        m = np.where(mask == o, 1, 0)
        if m.sum() == 0.0:
            continue
        lines.append("{}, {}".format(image_id, rle_encode(m)))
    return "\\n".join(lines)


def train(model, dataset_dir, subset):
    dataset_train = NucleusDataset()
    dataset_train.load_nucleus(dataset_dir, subset)
    dataset_train.prepare()
    dataset_val = NucleusDataset()
    dataset_val.load_nucleus(dataset_dir, "val")
    dataset_val.prepare()
    augmentation = iaa.SomeOf((0, 2), [
        iaa.Fliplr(0.5),
        iaa.Flipud(0.5),
        iaa.OneOf([iaa.Affine(rotate=90),
                   iaa.Affine(rotate=180),
                   iaa.Affine(rotate=270)]),
        iaa.Multiply((0.8, 1.5)),
        iaa.GaussianBlur(sigma=(0.0, 5.0))
    ])
    model.train(dataset_train, dataset_val,
                learning_rate=config.LEARNING_RATE,
                epochs=1,
                augmentation=augmentation,
                layers='heads')


def detect(model, dataset_dir, subset):
    submit_dir = "submit_{:%Y%m%dT%H%M%S}".format(datetime.datetime.now())
    submit_dir = os.path.join(RESULTS_DIR, submit_dir)
    os.makedirs(submit_dir)
    dataset = NucleusDataset()
    dataset.load_nucleus(dataset_dir, subset)
    dataset.prepare()
    submission = []
    for image_id in dataset.image_ids:
        image = dataset.load_image(image_id)
        r = model.detect([image], verbose=0)[0]
        assert r["masks"].shape[:2] == image.shape[:2], r["masks"].shape
        source_id = dataset.image_info[image_id]["id"]
        submission.append(mask_to_rle(source_id, r["masks"], r["scores"]))
        visualize.display_instances(
            image, r['rois'], r['masks'], r['class_ids'],
            dataset.class_names, r['scores'],
            show_bbox=False, show_mask=False,
            title="Predictions")
        plt.savefig("{}/{}.png".format(submit_dir, source_id))
    submission = "ImageId,EncodedPixels\\n" + "\\n".join(submission)
    with open(os.path.join(submit_dir, "submit.csv"), "w") as f:
        f.write(submission)
    print("Saved to ", submit_dir)


if __name__ == '__main__':
    config = NucleusConfig()
    model = modellib.MaskRCNN(mode="training", config=config, model_dir=LOGS)
    train(model, DATASET, "train")
    config = NucleusInferenceConfig()
    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=LOGS)
    weights_path = model.find_last()
    model.load_weights(weights_path, by_name=True)
    detect(model, DATASET, "stage1_test")
'''


def _write_dsb_style(root, subset, count, rng):
    """DSB2018 layout: <subset>/<id>/images/<id>.png (RGBA) and
    <subset>/<id>/masks/*.png, one 0/255 PNG per nucleus (a disc)."""
    h, w = 160, 208                     # pad64 pads to 192 x 256
    yy, xx = np.mgrid[:h, :w]
    for k in range(count):
        image_id = "{}{:02d}".format(subset[-4:], k)
        folder = os.path.join(root, subset, image_id)
        os.makedirs(os.path.join(folder, "images"))
        os.makedirs(os.path.join(folder, "masks"))
        image = np.zeros((h, w, 4), np.uint8)
        image[..., :3] = 25
        image[..., 3] = 255
        for j in range(4):
            cy, cx = rng.integers(12, h - 12), rng.integers(12, w - 12)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(5, 11) ** 2
            image[disc, :3] = (190, 170, 210)
            Image.fromarray(disc.astype(np.uint8) * 255).save(
                os.path.join(folder, "masks", "n{}.png".format(j)))
        Image.fromarray(image).save(
            os.path.join(folder, "images", image_id + ".png"))


def test_nucleus_style_script_trains_on_crops_and_writes_submission(tmp_path):
    rng = np.random.default_rng(3)
    dataset = tmp_path / "dsb"
    _write_dsb_style(str(dataset), "stage1_train", 3, rng)
    _write_dsb_style(str(dataset), "stage1_test", 2, rng)
    script = tmp_path / "nucleus.py"
    script.write_text(textwrap.dedent(SCRIPT))
    results = tmp_path / "results"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)          # the installed package, as a user has
    out = subprocess.run(
        [sys.executable, str(script), str(dataset), str(tmp_path / "logs"),
         str(results)], cwd=str(tmp_path), env=env, capture_output=True,
        text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    submit_dir, = [results / d for d in os.listdir(results)]
    lines = (submit_dir / "submit.csv").read_text().splitlines()
    assert lines[0] == "ImageId,EncodedPixels"
    ids = {line.split(",")[0] for line in lines[1:]}
    assert ids == {"test00", "test01"}, lines[:5]
    for line in lines[1:]:
        runs = line.split(",")[1].split()
        assert len(runs) % 2 == 0
        starts = np.array(runs[0::2], int)
        assert (starts >= 1).all() and (starts <= 160 * 208).all()
    assert sorted(p.name for p in submit_dir.glob("*.png")) == [
        "test00.png", "test01.png"]
