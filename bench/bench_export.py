"""Benchmark the export paths against detect(): seconds per image, peak
memory and agreement, ResNet-101 at 1024 px by default.

Usage:
    python bench/bench_export.py                       # all paths, 6 images
    python bench/bench_export.py --backbone resnet50 --size 512 --images 3
    python bench/bench_export.py --paths detect_f32,saved_model --append
    python bench/bench_export.py --demo-weights W.h5 --images 50   # trained

Paths (each measured in its own process, so peak RSS is its own):
    detect_f32          MaskRCNN.detect(), float32
    detect_bf16         MaskRCNN.detect(), MIXED_PRECISION mixed_bfloat16
    saved_model_bn      the SavedModel, BatchNorm kept (tf.saved_model.load)
    saved_model         the SavedModel, BatchNorm folded (the default export)
    saved_model_vars    the same with freeze=False (`mrcnn export --no-freeze`):
                        weights as variables, not graph constants
    saved_model_dyn     the default export with static_crops=False: RoIAlign's
                        per-level crops of detect() (dynamic box counts)
    openvino_f32, openvino_bf16, openvino_int8
                        OpenVINO on the CPU ([openvino] extra;
                        mrcnn.export.openvino), skipped when not installed

The weights are random (no trained weights exist on these machines),
conditioned so that every image gets detections as with a trained model:
random BatchNorm statistics (folding them changes real numbers), zero box
deltas, class logits leaning to class 1 and sharp mask logits. Every path
runs the same --images photos of ../shared/data/images (1 warm-up call on
the first, then each image once, --repeat times); the table gives the
median seconds per image, the ratio to detect_f32 measured in the same
run, the peak RSS of the path's process and its agreement with
detect_f32: images whose class ids come in the same order, detections
matched (same class, the mask that overlaps most, IoU > 0.5: near-tied
scores may swap places), the largest |score difference| of a matched pair
and the share of matched masks with IoU >= 0.99 / >= 0.95. "batch 8" is the
images/s of 8 images in a row (one detect() call of 8 images for the
detect and OpenVINO paths, 8 signature calls for the SavedModels). Results
are appended to bench/RESULTS.md with --append.

With --demo-weights the model is a *trained* one instead: the weights
`mrcnn demo` writes (its DemoInferenceConfig: ResNet-50 FPN, 128 px,
shapes), run on --images held-out shapes images (the demo's evaluation
set, seed 1007) and int8-calibrated on --calibration of its training
images. Random weights, even conditioned, leave near-tied scores whose
order and NMS winners reduced precision flips; a trained model shows the
agreement a user gets, and the table adds each path's mAP@0.5 against the
held-out images' ground truth (--backbone and --size are then ignored).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "RESULTS.md")
IMAGES = os.path.join(os.path.dirname(REPO), "shared", "data", "images")
PATHS = ("detect_f32", "detect_bf16", "saved_model_bn", "saved_model",
         "saved_model_vars", "saved_model_dyn", "openvino_f32",
         "openvino_bf16", "openvino_int8")
#: (folder name, fold_bn, freeze, static_crops) of the SavedModel paths.
SAVED_MODELS = (("saved_model_bn", False, True, True),
                ("saved_model", True, True, True),
                ("saved_model_vars", True, False, True),
                ("saved_model_dyn", True, True, False))


def make_config(args, precision=None):
    """The benchmark's inference Config (the demo's with --demo-weights)."""
    from mrcnn.config import Config
    if args.demo_weights:
        from mrcnn.app.demo import DemoInferenceConfig

        from bench_demo import parse_overrides   # this script's folder
        fields = dict(parse_overrides(args.set), MIXED_PRECISION=precision)
        return type("DemoBenchConfig", (DemoInferenceConfig,), fields)()
    backbone, size = args.backbone, args.size

    class BenchConfig(Config):
        NAME = "bench_export"
        NUM_CLASSES = 81
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        BACKBONE = backbone
        IMAGE_MIN_DIM = min(800, size)
        IMAGE_MAX_DIM = size
        MIXED_PRECISION = precision
    return BenchConfig()


def randomize_batchnorm(keras_model, seed, gamma=(0.8, 1.2), var=(0.8, 1.25)):
    """Random BatchNorm statistics (uniform gamma and moving variance in
    the given ranges, normal beta and moving mean), so that folding them
    into the convolutions changes real numbers."""
    from mrcnn.nn.backbone import BatchNorm
    rng = np.random.default_rng(seed)
    for layer in keras_model.layers:
        bn = getattr(layer, "layer", layer)
        if isinstance(bn, BatchNorm):
            shape = bn.get_weights()[0].shape
            bn.set_weights([rng.uniform(*gamma, shape), rng.normal(0, 0.1, shape),
                            rng.normal(0, 0.1, shape), rng.uniform(*var, shape)])


def zero_box_deltas(keras_model):
    """Proposals = anchors and detections = proposals: random box
    regressors stretch most boxes to the whole image, where near-identical
    boxes make NMS pick by float noise."""
    for layer in (keras_model.get_layer("rpn_model").get_layer("rpn_bbox_pred"),
                  keras_model.get_layer("mrcnn_bbox_fc")):
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


def lean_class_logits(keras_model, class_id, bias):
    """Class logits biased to ``class_id`` (kernel kept, scaled down)."""
    layer = keras_model.get_layer("mrcnn_class_logits")
    kernel, old = layer.get_weights()
    new = np.zeros_like(old)
    new[class_id] = bias
    layer.set_weights([kernel * 0.1, new])


def sharpen_masks(keras_model):
    """Mask logits x 20: random mask heads give probabilities all near 0.5,
    where float noise flips pixels; trained ones are mostly near 0 or 1."""
    layer = keras_model.get_layer("mrcnn_mask")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 20, bias])


def condition(keras_model, seed=0, class_bias=8.0):
    """Random weights that detect like a trained model (module docstring).
    class_bias 8: softmax ~0.97 for class 1 of 81 classes."""
    randomize_batchnorm(keras_model, seed)
    zero_box_deltas(keras_model)
    lean_class_logits(keras_model, 1, class_bias)
    sharpen_masks(keras_model)


def load_images(args, count, split="test"):
    """``count`` RGB uint8 images: photos of ../shared/data/images, or
    with --demo-weights the demo's held-out ("test") or training
    ("calibration") shapes images."""
    if args.demo_weights:
        from mrcnn.data.shapes import ShapesDataset
        from mrcnn.app.demo import DemoConfig
        size = DemoConfig.IMAGE_MAX_DIM
        dataset = ShapesDataset()
        dataset.load_shapes(count, size, size,
                            seed=7 if split == "calibration" else 1007)
        dataset.prepare()
        return [dataset.load_image(i) for i in dataset.image_ids]
    from PIL import Image
    names = sorted(f for f in os.listdir(IMAGES) if f.lower().endswith(".jpg"))
    out = []
    for name in names[:count]:
        with Image.open(os.path.join(IMAGES, name)) as img:
            out.append(np.asarray(img.convert("RGB")))
    return out


def prepare(args, work):
    """Build, condition and save the weights; write the exports."""
    from mrcnn.export.saved_model import write_saved_model
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    import keras
    keras.utils.set_random_seed(0)
    config = make_config(args)
    model = MaskRCNN("inference", config, work)
    if args.demo_weights:
        from mrcnn.data.shapes import ShapesDataset
        model.load_weights(args.demo_weights, by_name=True)
        dataset = ShapesDataset()
        dataset.load_shapes(1, 128, 128, seed=0)
        dataset.prepare()
        names = list(dataset.class_names)
    else:
        condition(model.keras_model)
        names = ["BG"] + ["class {}".format(i)
                          for i in range(1, config.NUM_CLASSES)]
    model.keras_model.save_weights(os.path.join(work, "weights.h5"))
    times = {}
    for name, fold, freeze, static in SAVED_MODELS:
        if name not in args.paths:
            continue
        t = time.perf_counter()
        write_saved_model(model, os.path.join(work, name), names,
                          fold_bn=fold, freeze=freeze, static_crops=static)
        times[name] = time.perf_counter() - t
    try:
        from mrcnn.export import openvino as ov_export
    except ImportError as e:
        print("OpenVINO paths skipped: {}".format(e))
        ov_export = None
    if ov_export is not None:
        for precision in ("f32", "bf16", "int8"):
            if "openvino_" + precision not in args.paths:
                continue
            t = time.perf_counter()
            try:
                options = {}
                if precision == "int8":
                    options["calibration_images"] = load_images(
                        args, args.calibration, "calibration")
                ov_export.convert_to_openvino(
                    model, os.path.join(work, "openvino_" + precision),
                    class_names=names, precision=precision, **options)
                times["openvino_" + precision] = time.perf_counter() - t
            except Exception as e:  # noqa: BLE001 - reported in the table
                print("openvino {}: {}: {}".format(precision,
                                                   type(e).__name__, e))
    with open(os.path.join(work, "prepare.json"), "w") as f:
        json.dump(times, f)


def _detector(path, args, work):
    """A function [image, ...] -> [(class_ids, scores, masks [H, W, N]
    bool, boxes [N, 4]), ...], or None when the path's export is missing."""
    if path.startswith("detect"):
        from mrcnn.modeling.mask_rcnn import MaskRCNN
        precision = "mixed_bfloat16" if path == "detect_bf16" else None
        model = MaskRCNN("inference", make_config(args, precision), work)
        model.keras_model.load_weights(os.path.join(work, "weights.h5"))

        def run_many(images):
            return [(r["class_ids"], r["scores"], r["masks"], r["rois"])
                    for r in model.detect(images)]
        return run_many
    if path.startswith("saved_model"):
        import tensorflow as tf
        signature = tf.saved_model.load(os.path.join(work, path)).signatures[
            "serving_default"]

        def run_many(images):
            outs = [signature(image=tf.constant(image)) for image in images]
            return [(out["class_ids"].numpy(), out["scores"].numpy(),
                     out["masks"].numpy().astype(bool), out["boxes"].numpy())
                    for out in outs]
        return run_many
    from mrcnn.export.openvino import OpenVINODetector
    folder = os.path.join(work, path)
    if not os.path.isdir(folder):
        return None
    detector = OpenVINODetector.load(folder)

    def run_many(images):
        return [(r["class_ids"], r["scores"], r["masks"], r["rois"])
                for r in detector.detect(images)]
    return run_many


def measure(path, args, work):
    """Child process: time one path, save its outputs for the agreement."""
    images = load_images(args, args.images)
    run_many = _detector(path, args, work)
    if run_many is None:
        return
    run_many(images[:1])                             # warm-up (traces)
    times, outputs = [], {}
    for r in range(args.repeat):
        for i, image in enumerate(images):
            t = time.perf_counter()
            (ids, scores, masks, boxes), = run_many([image])
            times.append(time.perf_counter() - t)
            if r == 0:
                outputs.update({"ids{}".format(i): ids, "scores{}".format(i): scores,
                                "masks{}".format(i): masks, "boxes{}".format(i): boxes})
    eight = (images * 8)[:8]
    t = time.perf_counter()
    run_many(eight)
    batch = 8 / (time.perf_counter() - t)
    np.savez_compressed(os.path.join(work, path + ".npz"), **outputs)
    with open(os.path.join(work, path + ".json"), "w") as f:
        json.dump({"median_s": float(np.median(times)), "times": times,
                   "batch8_images_per_s": batch,
                   "peak_rss_mb": resource.getrusage(
                       resource.RUSAGE_SELF).ru_maxrss / 1024.0}, f)


def match_detections(ref_ids, ref_scores, ref_masks, ids, scores, masks):
    """Pair each reference detection with the detection of the same class
    whose mask overlaps it most (greedy, reference in score order; a pair
    needs mask IoU > 0.5). Near-tied scores may swap places between two
    runs, so pairs are made by overlap, not by position.

    Returns:
        list of (mask IoU, |score difference|) of the pairs.
    """
    if len(ref_ids) == 0 or len(ids) == 0:
        return []
    a = ref_masks.reshape(-1, len(ref_ids)).astype(np.float32)     # [P, N]
    b = masks.reshape(-1, len(ids)).astype(np.float32)             # [P, M]
    inter = a.T @ b                                                # [N, M]
    union = a.sum(0)[:, None] + b.sum(0)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    iou[ref_ids[:, None] != ids[None, :]] = -1
    pairs, used = [], set()
    for i in np.argsort(-ref_scores, kind="stable"):
        # Highest IoU first; among equal IoUs (duplicate masks), the
        # closest score.
        order = [j for j in np.lexsort((np.abs(scores - ref_scores[i]), -iou[i]))
                 if j not in used]
        if order and iou[i, order[0]] > 0.5:
            used.add(order[0])
            pairs.append((float(iou[i, order[0]]),
                          float(abs(ref_scores[i] - scores[order[0]]))))
    return pairs


def agreement(work, path, count):
    """``path``'s detections against detect_f32's, image by image."""
    ref = np.load(os.path.join(work, "detect_f32.npz"))
    got = np.load(os.path.join(work, path + ".npz"))
    same_order, pairs, total = 0, [], 0
    for i in range(count):
        key = lambda name: "{}{}".format(name, i)  # noqa: E731
        same_order += ref[key("ids")].tolist() == got[key("ids")].tolist()
        total += len(ref[key("ids")])
        pairs += match_detections(ref[key("ids")], ref[key("scores")],
                                  ref[key("masks")], got[key("ids")],
                                  got[key("scores")], got[key("masks")])
    ious = np.array([p[0] for p in pairs])
    return {"same_ids": "{}/{}".format(same_order, count),
            "matched": "{}/{}".format(len(pairs), total),
            "max_score_diff": max([p[1] for p in pairs], default=0.0),
            "iou99": float((ious >= 0.99).mean()) if ious.size else None,
            "iou95": float((ious >= 0.95).mean()) if ious.size else None,
            "detections": total}


def map_against_truth(work, path, count):
    """--demo-weights only: mAP@0.5 of ``path``'s detections against the
    held-out shapes' ground truth (the demo's own score, mrcnn.modeling.evaluation)."""
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.app.demo import DemoConfig
    from mrcnn.modeling.evaluation import evaluate_detections
    size = DemoConfig.IMAGE_MAX_DIM
    dataset = ShapesDataset()
    dataset.load_shapes(count, size, size, seed=1007)
    dataset.prepare()
    got = np.load(os.path.join(work, path + ".npz"))
    detections = [{"rois": got["boxes{}".format(i)],
                   "class_ids": got["ids{}".format(i)],
                   "scores": got["scores{}".format(i)],
                   "masks": got["masks{}".format(i)]} for i in range(count)]
    return evaluate_detections(dataset, list(dataset.image_ids), detections,
                               verbose=0, plot=False)["mAP"]


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--calibration", type=int, default=20,
                        help="images for int8 calibration")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--demo-weights", help="a trained `mrcnn demo` .h5 "
                        "(module docstring)")
    parser.add_argument("--set", action="append", default=[],
                        metavar="KEY=VALUE", help="with --demo-weights: a "
                        "DemoConfig field the weights were trained with "
                        "(bench_demo.py --set)")
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.paths = args.paths.split(",")
    if args.child == "prepare":
        return prepare(args, args.work)
    if args.child:
        return measure(args.child, args, args.work)

    work = tempfile.mkdtemp(prefix="bench_export_")
    base = [sys.executable, os.path.abspath(__file__), "--backbone",
            args.backbone, "--size", str(args.size), "--images",
            str(args.images), "--repeat", str(args.repeat), "--calibration",
            str(args.calibration), "--paths", ",".join(args.paths), "--work",
            work] + (["--demo-weights", os.path.abspath(args.demo_weights)]
                     if args.demo_weights else []) + [
                "--set=" + item for item in args.set]
    load = os.getloadavg()[0]
    subprocess.run(base + ["--child", "prepare"], check=True)
    with open(os.path.join(work, "prepare.json")) as f:
        export_s = json.load(f)
    rows = {}
    for path in args.paths:
        print("measuring", path, flush=True)
        proc = subprocess.run(base + ["--child", path])
        result = os.path.join(work, path + ".json")
        if proc.returncode == 0 and os.path.exists(result):
            with open(result) as f:
                rows[path] = json.load(f)
    ref = rows.get("detect_f32", {}).get("median_s")
    lines = ["| path | median s/image | x detect_f32 | 8 in a row, images/s "
             "| peak RSS MB | export s "
             "| images with the same class ids in order | matched | max score "
             "diff | matched masks IoU>=0.99 | IoU>=0.95 |" +
             (" mAP@0.5 (ground truth) |" if args.demo_weights else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" +
             ("---|" if args.demo_weights else "")]
    for path, row in rows.items():
        agree = agreement(work, path, args.images) if ref else {}
        lines.append("| {} | {:.3f} | {} | {:.3f} | {:.0f} | {} | {} | {} | {} | {} | {} |".format(
            path, row["median_s"],
            "{:.2f}".format(row["median_s"] / ref) if ref else "-",
            row["batch8_images_per_s"], row["peak_rss_mb"],
            "{:.0f}".format(export_s[path]) if path in export_s else "-",
            agree.get("same_ids", "-"), agree.get("matched", "-"),
            "{:.2e}".format(agree["max_score_diff"]) if agree else "-",
            "{:.3f}".format(agree["iou99"]) if agree.get("iou99") is not None else "-",
            "{:.3f}".format(agree["iou95"]) if agree.get("iou95") is not None else "-")
            + (" {:.3f} |".format(map_against_truth(work, path, args.images))
               if args.demo_weights else ""))
    detections = agreement(work, "detect_f32", args.images)["detections"] if ref else 0
    command = "python bench/bench_export.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "", "## Export paths vs detect() (bench/bench_export.py)", "",
        "Command: `{}`; {} at {} px{}, {} images x {} (median), {} detections "
        "in detect_f32; CPU: {}, {} cores; load average before / after: "
        "{:.1f} / {:.1f}; {} UTC.".format(
            command, *((("resnet50", 128, ", the trained demo model on "
                          "held-out shapes") if args.demo_weights else
                         (args.backbone, args.size, ""))),
            args.images, args.repeat,
            detections, cpu_name(), os.cpu_count(), load, os.getloadavg()[0],
            time.strftime("%Y-%m-%d %H:%M", time.gmtime())), ""] + lines + [""])
    print(text)
    if args.append:
        with open(RESULTS, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
