"""Benchmark tiled detection (issue 26, item 3) on a large shapes mosaic.

Usage:
    python -m mrcnn demo --output /work/demo_run      # train the demo model
    python bench/bench_tiling.py --logs /work/demo_run/logs

1. Held-out shapes images (a seed the demo never trains or evaluates on)
   of BASE px, detected one by one: the recall of their objects (a true
   object is found when a detection of its class has mask IoU >= 0.5).
2. The same images drawn SCALE times larger (the shapes' specs scaled,
   so edges stay sharp) side by side into a SIZE x SIZE mosaic, detected
   with ``model.detect([mosaic], tile=TILE, overlap=OVERLAP,
   masks="boxes")``: the tiles are SCALE x 128 px, so each is resized to
   the model's 128 px input, back to the training scale.
3. The mosaic's recall (target: >= the single images' minus 0.02), the
   count of detections against the count of objects, and duplicates: a
   detection that is not a match but lies mostly (>= half its pixels)
   inside an object that another detection already matched: of the same
   class (a second copy, or a part cut at a seam: what the tiling must
   merge; target 0), or of another class (the model's own second guesses,
   which single images show too). Peak RSS of the process (model
   included) and CPU / wall time.

Results are appended to bench/RESULTS.md with the command line.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from mrcnn.app.demo import DemoInferenceConfig  # noqa: E402
from mrcnn.data.shapes import ShapesDataset  # noqa: E402
from mrcnn.modeling.checkpoints import find_last_checkpoint  # noqa: E402
from mrcnn.modeling.mask_rcnn import MaskRCNN  # noqa: E402
from mrcnn.modeling.tiling import TileGrid  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "RESULTS.md")


def rss_mb():
    """Peak resident set size of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def tight(mask, y=0, x=0):
    """(y, x, bool crop) of a [h, w] mask at (y, x), tight; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (y + int(rows[0]), x + int(cols[0]),
            mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy())


def draw_scaled(dataset, image_id, scale):
    """Image id drawn ``scale`` times larger, and its objects.

    Returns:
        image uint8 [h * scale, w * scale, 3]; objects: list of
        (class_id, (y, x, bool crop)) with the occlusion of load_mask.
    """
    info = dataset.image_info[image_id]
    h, w = info["height"] * scale, info["width"] * scale
    image = np.empty((h, w, 3), np.uint8)
    image[:] = np.array(info["bg_color"], np.uint8)
    masks = []
    for shape, color, (x, y, s) in info["shapes"]:
        dims = (x * scale, y * scale, s * scale)
        image = dataset.draw_shape(image, shape, dims, color)
        canvas = np.zeros((h, w), np.uint8)
        masks.append((shape, dataset.draw_shape(canvas, shape, dims, 1) > 0))
    covered = np.zeros((h, w), bool)
    objects = []
    for shape, mask in reversed(masks):
        mask &= ~covered
        covered |= mask
        crop = tight(mask)
        if crop is not None:
            objects.append((dataset._class_id(shape), crop))
    return image, objects[::-1]


def result_crops(result):
    """(class_id, score, (y, x, crop)) of each detection of a result."""
    masks = result["masks"]
    out = []
    for i in range(len(result["class_ids"])):
        if hasattr(masks, "crop"):
            y, x, crop = masks.crop(i)
            crop = tight(crop, y, x)
        else:
            crop = tight(np.asarray(masks[:, :, i]))
        out.append((int(result["class_ids"][i]), float(result["scores"][i]),
                    crop))
    return out


def overlap_counts(a, b):
    """(|a & b|, |a|, |b|) of two (y, x, crop) masks."""
    ay, ax, am = a
    by, bx, bm = b
    y1, x1 = max(ay, by), max(ax, bx)
    y2 = min(ay + am.shape[0], by + bm.shape[0])
    x2 = min(ax + am.shape[1], bx + bm.shape[1])
    inter = 0
    if y2 > y1 and x2 > x1:
        inter = int((am[y1 - ay:y2 - ay, x1 - ax:x2 - ax] &
                     bm[y1 - by:y2 - by, x1 - bx:x2 - bx]).sum())
    return inter, int(am.sum()), int(bm.sum())


def score_detections(objects, detections, iou=0.5):
    """Greedy matching, best score first.

    Args:
        objects: list of (class_id, (y, x, crop)) true objects.
        detections: list of (class_id, score, (y, x, crop) or None).
    Returns:
        dict: objects, detections, matched, duplicates (same class),
        duplicated_objects (the object of each), other_class_duplicates,
        false_positives, recall.
    """
    windows = np.array([(y, x, y + c.shape[0], x + c.shape[1])
                        for _, (y, x, c) in objects]).reshape(-1, 4)
    matched = np.zeros(len(objects), bool)
    same_class, other_class, false_positives = [], 0, 0
    for cid, _, crop in sorted(detections, key=lambda d: -d[1]):
        if crop is None:
            false_positives += 1
            continue
        y, x, c = crop
        near = np.flatnonzero((windows[:, 0] < y + c.shape[0]) &
                              (windows[:, 2] > y) &
                              (windows[:, 1] < x + c.shape[1]) &
                              (windows[:, 3] > x))
        best, best_iou, inside = None, 0.0, None
        for j in near:
            inter, na, nb = overlap_counts(crop, objects[j][1])
            value = inter / float(na + nb - inter)
            if objects[j][0] == cid and not matched[j] and value > best_iou:
                best, best_iou = j, value
            if matched[j] and inter >= 0.5 * na and \
                    (inside is None or objects[j][0] == cid):
                inside = j
        if best is not None and best_iou >= iou:
            matched[best] = True
        elif inside is not None and objects[inside][0] == cid:
            same_class.append(int(inside))
        elif inside is not None:
            other_class += 1
        else:
            false_positives += 1
    return {"objects": len(objects), "detections": len(detections),
            "matched": int(matched.sum()), "duplicates": len(same_class),
            "duplicated_objects": same_class,
            "other_class_duplicates": other_class,
            "false_positives": false_positives,
            "recall": float(matched.mean()) if len(objects) else 1.0}


def model_duplicates(raw, grid, objects):
    """Objects that some tile's own result covers twice with their class
    (two detections each lying at least half inside it): the model's
    duplicates, which no merging of tiles makes or undoes."""
    windows = np.array([(y, x, y + c.shape[0], x + c.shape[1])
                        for _, (y, x, c) in objects]).reshape(-1, 4)
    twice = set()
    for k, result in enumerate(raw):
        ty, tx = grid.window(k)[:2]
        seen = {}
        for cid, _, crop in result_crops(result):
            if crop is None:
                continue
            y, x, c = crop
            crop = (y + ty, x + tx, c)
            y, x = y + ty, x + tx
            near = np.flatnonzero((windows[:, 0] < y + c.shape[0]) &
                                  (windows[:, 2] > y) &
                                  (windows[:, 1] < x + c.shape[1]) &
                                  (windows[:, 3] > x))
            for j in near:
                inter, na, _ = overlap_counts(crop, objects[j][1])
                if objects[j][0] == cid and inter >= 0.5 * na:
                    seen[j] = seen.get(j, 0) + 1
        twice.update(j for j, n in seen.items() if n >= 2)
    return twice


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="a .h5 file (default: the last "
                        "checkpoint under --logs)")
    parser.add_argument("--logs", default=os.path.join("mrcnn_output", "demo",
                                                       "logs"),
                        help="the demo's run folder (mrcnn demo --output "
                             "X writes X/logs)")
    parser.add_argument("--size", type=int, default=8000,
                        help="mosaic side, px (default: %(default)s)")
    parser.add_argument("--scale", type=int, default=4,
                        help="mosaic scale over the training scale")
    parser.add_argument("--base", type=int, default=125,
                        help="side of the held-out images, px (SIZE / "
                             "(BASE * SCALE) of them per row)")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile side (default: SCALE x IMAGE_MAX_DIM)")
    parser.add_argument("--overlap", type=int, default=256,
                        help="tile overlap, px (default: %(default)s: the "
                             "shapes are up to 250 px at SCALE 4, so each "
                             "is seen whole by some tile)")
    parser.add_argument("--batch", type=int, default=4,
                        help="tiles per graph batch (IMAGES_PER_GPU)")
    parser.add_argument("--seed", type=int, default=2612,
                        help="seed of the held-out images (the demo trains "
                             "on seed 7, evaluates on 1007)")
    parser.add_argument("--backgrounds", choices=("common", "own"),
                        default="common",
                        help="common: every image on the first one's "
                             "background colour, so the mosaic has no cell "
                             "edges; own: each its own (the model, never "
                             "shown a background edge, takes the cells' "
                             "edges and corners for squares; default: "
                             "%(default)s)")
    parser.add_argument("--no-append", action="store_true",
                        help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    weights = args.weights or find_last_checkpoint(args.logs)

    class Config(DemoInferenceConfig):
        IMAGES_PER_GPU = args.batch

    config = Config()
    tile = args.tile or args.scale * config.IMAGE_MAX_DIM
    model = MaskRCNN(mode="inference", config=config, model_dir=args.logs)
    model.load_weights(weights, by_name=True)

    cell = args.base * args.scale
    per_row = args.size // cell
    dataset = ShapesDataset()
    dataset.load_shapes(per_row * per_row, args.base, args.base,
                        seed=args.seed)
    dataset.prepare()
    if args.backgrounds == "common":
        for info in dataset.image_info:
            info["bg_color"] = dataset.image_info[0]["bg_color"]
    ids = list(dataset.image_ids)
    print("{} held-out {}x{} images (seed {}); weights {}".format(
        len(ids), args.base, args.base, args.seed, weights), flush=True)

    # 1. The single images.
    single_dets = []
    t0 = time.process_time()
    for start in range(0, len(ids), config.BATCH_SIZE):
        chunk = ids[start:start + config.BATCH_SIZE]
        results = model.detect([dataset.load_image(i) for i in chunk])
        for i, result in zip(chunk, results):
            _, objects = draw_scaled(dataset, i, 1)
            single_dets.append((objects, result_crops(result)))
    single_cpu = time.process_time() - t0
    single = {"objects": 0, "detections": 0, "matched": 0, "duplicates": 0,
              "other_class_duplicates": 0, "false_positives": 0}
    for objects, dets in single_dets:
        scored = score_detections(objects, dets)
        for key in single:
            single[key] += scored[key]
    single["duplicated_objects"] = []
    single["recall"] = single["matched"] / float(single["objects"])
    print("single images: {}".format(single), flush=True)

    # 2. The mosaic.
    mosaic = np.zeros((args.size, args.size, 3), np.uint8)
    mosaic_objects = []
    for k, i in enumerate(ids):
        r, c = divmod(k, per_row)
        image, objects = draw_scaled(dataset, i, args.scale)
        mosaic[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = image
        mosaic_objects.extend((cid, (y + r * cell, x + c * cell, m))
                              for cid, (y, x, m) in objects)
    grid = TileGrid(mosaic.shape, tile, args.overlap)
    print("mosaic {}x{}: {} objects, {} tiles of {} px (overlap {})".format(
        args.size, args.size, len(mosaic_objects), len(grid), tile,
        args.overlap), flush=True)
    # The tiles' own results, in order, for telling the model's duplicates
    # (two of one class on one object within one tile) from the seams'.
    raw = []
    detect = model.detect

    def recording(images, verbose=0, masks="full", tile=None, overlap=None):
        out = detect(images, verbose=verbose, masks=masks, tile=tile,
                     overlap=overlap)
        if tile is None:
            raw.extend(out)
        return out
    model.detect = recording    # detect(tile=) calls self.detect per tile
    rss_before = rss_mb()
    t0, w0 = time.process_time(), time.time()
    result = model.detect([mosaic], tile=tile, overlap=args.overlap,
                          masks="boxes")[0]
    tiled_cpu, tiled_wall = time.process_time() - t0, time.time() - w0
    rss_after = rss_mb()
    model.detect = detect
    tiled = score_detections(mosaic_objects, result_crops(result))
    own = model_duplicates(raw, grid, mosaic_objects)
    tiled["seam_duplicates"] = sum(j not in own
                                   for j in tiled["duplicated_objects"])
    print("mosaic, tiled: {}".format(tiled), flush=True)
    print("peak RSS: {:.0f} MB before detect (model + mosaic), {:.0f} MB "
          "after; tiled detect {:.0f} CPU-s, {:.0f} s wall".format(
              rss_before, rss_after, tiled_cpu, tiled_wall), flush=True)
    ok = tiled["recall"] >= single["recall"] - 0.02 and \
        tiled["seam_duplicates"] == 0
    print("target (recall >= single - 0.02, no duplicate across seams): "
          "{}".format("met" if ok else "NOT met"))

    if args.no_append:
        return
    command = "python bench/bench_tiling.py " + " ".join(sys.argv[1:])
    lines = [
        "",
        "## Tiled detection on a {0}x{0} shapes mosaic (issue 26 item 3; "
        "{1} UTC)".format(args.size, time.strftime("%Y-%m-%d %H:%M",
                                                   time.gmtime())),
        "",
        "`{}` on {} (2 cores shared by ~6 sessions: wall times are "
        "not comparable, CPU times are process CPU seconds). Weights: "
        "`{}` (the demo model, `python -m mrcnn demo`). "
        "{} held-out {}x{} shapes images (seed {}, {} background{}); the "
        "mosaic draws them {}x larger, {} per row; detect(tile={}, "
        "overlap={}, masks=\"boxes\"), {} tiles, {} per graph batch."
        .format(command, cpu_name(), weights, len(ids), args.base, args.base,
                args.seed, "one" if args.backgrounds == "common" else "own",
                "" if args.backgrounds == "common" else "s", args.scale,
                per_row, tile, args.overlap, len(grid), config.BATCH_SIZE),
        "",
        "| | objects | detections | matched (mask IoU >= 0.5, class) | "
        "recall | duplicates, same class | second detections of another "
        "class | false positives |",
        "|---|---|---|---|---|---|---|---|",
        "| single images ({} CPU-s) | {objects} | {detections} | {matched} | "
        "{recall:.4f} | {duplicates} | {other_class_duplicates} | "
        "{false_positives} |".format(round(single_cpu), **single),
        "| mosaic, tiled ({} CPU-s, {} s wall) | {objects} | {detections} | "
        "{matched} | {recall:.4f} | {duplicates} | {other_class_duplicates} "
        "| {false_positives} |".format(round(tiled_cpu), round(tiled_wall),
                                       **tiled),
        "",
        "Peak RSS of the process: {:.0f} MB before the tiled detect() (TF, "
        "the model, the {:.0f} MB mosaic and the objects' masks), {:.0f} MB "
        "after it. Same-class duplicates across seams (a duplicated "
        "object that no single tile's own result holds twice): {}. Target "
        "(recall >= single - 0.02, no duplicate across seams): **{}**."
        .format(rss_before, mosaic.nbytes / 2 ** 20, rss_after,
                tiled["seam_duplicates"], "met" if ok else "not met"),
    ]
    with open(RESULTS, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("appended to {}".format(RESULTS))


if __name__ == "__main__":
    main()
