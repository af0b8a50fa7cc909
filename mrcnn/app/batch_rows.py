"""Result rows and Parquet shards of batch detection (`mrcnn.app.batch`),
shared by its engines: decoding, detection of one batch into rows (with
optional effect images), atomic shards named by their paths, resume
(`done_paths`) and de-duplication (`finalize`).

Row schema (SCHEMA): path str (absolute, the key), width int32, height
int32 (null when unreadable), detections str (JSON list of
`mrcnn.app.results.result_to_json` records; null on error), error str
(null on success), effect str (path of the effect image, or null).
"""

import hashlib
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from mrcnn.app import splash
from mrcnn.app import files, results
from mrcnn.app.errors import UserError
from mrcnn.core.atomic import atomic_path

SCHEMA = pa.schema([("path", pa.string()), ("width", pa.int32()),
                    ("height", pa.int32()), ("detections", pa.string()),
                    ("error", pa.string()), ("effect", pa.string())])
SHARD_PREFIX = "part-"
EFFECT_FOLDER = "effects"


############################################################
#  Shards
############################################################

def shard_files(output):
    """The finished shards in ``output`` (temporary names start with '.')."""
    if not os.path.isdir(output):
        return []
    return sorted(os.path.join(output, f) for f in os.listdir(output)
                  if f.startswith(SHARD_PREFIX) and f.endswith(".parquet"))


def done_paths(output):
    """Paths that already have a row in ``output``'s shards (set)."""
    done = set()
    for shard in shard_files(output):
        done.update(pq.read_table(shard, columns=["path"])
                    .column("path").to_pylist())
    return done


def write_shard(output, rows):
    """Write rows (dicts with SCHEMA's keys) as one Parquet shard,
    atomically, named by a hash of their paths (a retried batch rewrites
    the same file). Returns the shard's path."""
    digest = hashlib.sha1("\n".join(r["path"] for r in rows)
                          .encode("utf-8")).hexdigest()[:20]
    dest = os.path.join(output, "{}{}.parquet".format(SHARD_PREFIX, digest))
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with atomic_path(dest, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)
    return dest


def finalize(output):
    """Make ``output`` hold exactly one row per path: a shard with paths
    that an earlier shard (sorted by name) already holds is rewritten
    without them (removed when nothing is left), atomically.

    Returns:
        dict: rows, errors, detections (counts over all shards), shards,
        duplicates_removed.
    """
    seen, removed = set(), 0
    rows = errors = detections = 0
    shards = shard_files(output)
    for shard in shards:
        table = pq.read_table(shard)
        paths = table.column("path").to_pylist()
        keep = []
        for i, p in enumerate(paths):
            if p not in seen:
                seen.add(p)
                keep.append(i)
        if len(keep) < len(paths):
            removed += len(paths) - len(keep)
            table = table.take(pa.array(keep, type=pa.int64()))
            if keep:
                with atomic_path(shard, suffix=".parquet") as tmp:
                    pq.write_table(table, tmp)
            else:
                os.remove(shard)
        rows += table.num_rows
        errors += table.num_rows - table.column("error").null_count
        detections += sum(len(json.loads(d)) for d in
                          table.column("detections").to_pylist() if d)
    return {"rows": rows, "errors": errors, "detections": detections,
            "shards": len(shard_files(output)),
            "duplicates_removed": removed}


def read_results(output):
    """All rows of ``output``'s shards as a list of dicts, detections
    decoded from JSON (for small outputs; for large ones read the shards
    with pyarrow / pandas / ray.data.read_parquet)."""
    out = []
    for shard in shard_files(output):
        for row in pq.read_table(shard).to_pylist():
            if row["detections"] is not None:
                row["detections"] = json.loads(row["detections"])
            out.append(row)
    return out


############################################################
#  Detection of one batch (both engines)
############################################################

def decode_image(path):
    """(image uint8 [H, W, 3], None) or (None, error message)."""
    try:
        return files.read_rgb(path), None
    except UserError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - any decoder failure is the row's
        return None, "cannot read image {}: {}".format(path, e)


def _effect_path(output, path, effect):
    stem = os.path.splitext(os.path.basename(path))[0]
    tag = hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
    return os.path.join(output, EFFECT_FOLDER, "{}_{}_{}.png".format(
        stem, tag, effect))


def _row(path, image=None, error=None):
    return {"path": path,
            "width": None if image is None else int(image.shape[1]),
            "height": None if image is None else int(image.shape[0]),
            "detections": None, "error": error, "effect": None}


def detect_rows(model, class_names, paths, images, errors, output,
                effect=None, background=None, tile=None, overlap=None):
    """Result rows for one batch of already decoded images.

    Args:
        model: inference MaskRCNN; detect() is called on up to
            config.BATCH_SIZE images at a time.
        paths: [N] image paths.
        images: [N] uint8 [H, W, 3] arrays, None where decoding failed.
        errors: [N] error messages (None where the image decoded).
        output: DIR (effect images go to DIR/effects/).
        effect: None or one of EFFECTS.
        background: for "replace": an RGB image or an (r, g, b) color.
        tile, overlap: tiled detection (`results.detect_boxes`), or None.
    Returns:
        [N] row dicts with SCHEMA's keys, in the order of ``paths``.
    """
    rows = [_row(p, im, err) for p, im, err in zip(paths, images, errors)]
    todo = [i for i, im in enumerate(images) if im is not None]
    step = max(1, int(model.config.BATCH_SIZE))
    for start in range(0, len(todo), step):
        idx = todo[start:start + step]
        try:
            found = results.detect_boxes(model, [images[i] for i in idx],
                                         tile, overlap)
        except Exception as e:  # noqa: BLE001 - the batch's rows carry it
            for i in idx:
                rows[i]["error"] = "detection failed on {}: {}: {}".format(
                    paths[i], type(e).__name__, e)
            continue
        for i, result in zip(idx, found):
            rows[i]["detections"] = json.dumps(
                results.result_to_json(result, class_names))
            if effect:
                rows[i]["effect"] = _write_effect(
                    output, paths[i], images[i], result, effect, background,
                    rows[i])
    return rows


def _write_effect(output, path, image, result, effect, background, row):
    """Write the effect image of one result; returns its path, or None
    (nothing detected for "cutout", or a failure noted in row["error"])."""
    try:
        if effect == "cutout":
            if not result["masks"].any():
                return None
            out = splash.cutout(image, result["masks"], crop=True)
        else:
            out = splash.apply_effect(image, result, effect,
                                      background=background)
        return files.save_png(_effect_path(output, path, effect), out)
    except Exception as e:  # noqa: BLE001 - the row carries it
        row["error"] = "effect {} failed on {}: {}".format(effect, path, e)
        return None
