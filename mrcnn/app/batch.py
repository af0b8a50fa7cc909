"""Batch detection over many image files: one result row per image,
resumable, in Parquet shards (the ``[ray]`` extra: pyarrow, ray[data]).

    detect_images(sources, weights, output, engine="local"|"ray", ...)

SOURCE items are folders (searched recursively for images), glob patterns
(``**`` allowed), image files, or text files (``.txt`` / ``.lst``) listing
one path per line. The output folder DIR holds ``part-<hash>.parquet``
shards with one row per input image:

    path        str   absolute path of the image (the key)
    width       int32 image width in pixels (null when unreadable)
    height      int32 image height in pixels (null when unreadable)
    detections  str   JSON list of `mrcnn.app.results.result_to_json`
                      records (class_id, class_name, score, box, mask as
                      COCO RLE); null on error
    error       str   why this image has no result (unreadable file, ...);
                      null on success
    effect      str   path of the effect image written for it, or null

Nothing lost, nothing twice: every shard is written under a temporary name
and renamed (a killed run never leaves half a shard); a shard's name is a
hash of the paths it holds, so a retried batch rewrites the same file; a
second run with the same DIR skips the paths already in its shards; and
`finalize` drops any row whose path an earlier shard already holds (a
retried batch that Ray regrouped differently). Engines:

    local  the plain in-process loop (one model, this process)
    ray    Ray Data: paths -> decode (tasks) -> map_batches on an actor
           pool, each actor loading the model once (`mrcnn.app.batch_ray`)
"""

import glob
import os
import time

from mrcnn.app import files, jobs, preflight
from mrcnn.app.batch_rows import (  # noqa: F401 - the shards API, here too
    EFFECT_FOLDER, SCHEMA, decode_image, detect_rows, done_paths, finalize, read_results,
    shard_files, write_shard)
from mrcnn.app.errors import UserError
from mrcnn.core.progress import tqdm
from mrcnn.core.effects import BACKGROUND_EFFECTS

ENGINES = ("local", "ray")
EFFECTS = BACKGROUND_EFFECTS
LIST_EXTENSIONS = (".txt", ".lst")


############################################################
#  Inputs
############################################################

def _list_file(path):
    """Paths listed in a text file, one a line ('#' comments, blank lines
    skipped); relative paths are relative to the list's folder."""
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [line if os.path.isabs(line) else os.path.join(base, line)
            for line in lines if line and not line.startswith("#")]


def _glob_base(pattern):
    """The folder part of a glob pattern before its first wildcard."""
    parts = []
    for part in pattern.split(os.sep):
        if any(c in part for c in "*?["):
            break
        parts.append(part)
    return os.sep.join(parts) or "."


def _under(path, folder):
    """True when ``path`` is ``folder`` or inside it (real paths)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def collect_sources(sources, output=None):
    """Expand SOURCE items into absolute image paths.

    Args:
        sources: a path or a list of folders (recursive), glob patterns,
            files, or ``.txt`` / ``.lst`` files listing paths.
        output: the output folder of the run. Folder and glob scans leave
            out what the runs write: output/effects/ always, and the whole
            output folder when it lies inside a scanned folder (so a second
            run does not take the first run's effect images as inputs).
    Returns:
        list of absolute paths, each once, in the order found (folders and
        globs sorted). Files named explicitly (or listed) are kept whatever
        their extension: a file that is not an image gets an error row.
    Raises:
        UserError for a SOURCE that matches nothing or a folder without
        images.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    found = []
    excluded = []
    if output is not None:
        excluded.append(os.path.join(output, EFFECT_FOLDER))

    def scanned(path):
        return not any(_under(path, folder) for folder in excluded)

    for item in map(str, sources):
        if os.path.isdir(item):
            if output is not None and not _under(item, output):
                excluded.append(output)
            hits = sorted(os.path.join(root, f)
                          for root, _, names in os.walk(item) for f in names
                          if f.lower().endswith(files.IMAGE_EXTENSIONS) and
                          scanned(os.path.join(root, f)))
            if not hits:
                raise UserError("no image files ({}) under folder {}".format(
                    ", ".join(files.IMAGE_EXTENSIONS), item))
        elif os.path.isfile(item):
            hits = _list_file(item) if item.lower().endswith(
                LIST_EXTENSIONS) else [item]
        else:
            if output is not None and not _under(_glob_base(item), output):
                excluded.append(output)
            hits = sorted(p for p in glob.glob(item, recursive=True)
                          if os.path.isfile(p) and scanned(p))
            if not hits:
                raise UserError("no such file, folder or matching files: "
                                "{}".format(item))
        found.extend(os.path.abspath(p) for p in hits)
    return list(dict.fromkeys(found))


############################################################
#  Entry point
############################################################

def detect_images(sources, weights="coco", output="mrcnn_output/batch",
                  engine="local", address=None, actors=None, batch_size=1,
                  shard_size=64, effect=None, background=None,
                  config_json=None, num_classes=None, backbone=None,
                  image_size=None, min_score=None, class_names=None,
                  logs="logs", num_cpus=None, num_gpus=None,
                  progress=True, log=print, tile=None, overlap=None):
    """Detect objects in every image of ``sources``; write one row per
    image to Parquet shards in ``output`` (see the module docstring).
    Running it again with the same ``output`` skips images already done.

    Args:
        sources: folders, globs, files, list files (see collect_sources).
        weights: "coco", "last", "imagenet", "none" or a path.
        output: DIR of the shards (and of effects/ images).
        engine: "local" (this process) or "ray" (Ray Data actor pool).
        address: Ray cluster address ("auto", "ray://host:10001", ...);
            None starts a local Ray on this machine's CPUs.
        actors: size of the actor pool (default: 1 per GPU of the cluster,
            else cpus // 2, at least 1).
        batch_size: images per detect() call (IMAGES_PER_GPU).
        shard_size: images per shard (and per actor call).
        effect: None or "splash", "blur", "cutout", "replace"; an effect
            image per input goes to output/effects/.
        background: for "replace": an image path, an RGB array or (r, g, b).
        config_json, num_classes, backbone, image_size, min_score,
        class_names, logs: model options (`jobs.prepare_inference`).
        num_cpus: CPUs of the local Ray (default: all); ignored with
            ``address``.
        num_gpus: GPUs per actor (default: 1 when the cluster has GPUs).
        tile, overlap: detect each image in overlapping tiles of ``tile``
            pixels (`mrcnn.modeling.tiling`), or None: the whole image.
    Returns:
        dict: images (inputs), skipped (already done), processed, rows,
        errors, detections, duplicates_removed, seconds, output.
    """
    if engine not in ENGINES:
        raise UserError("--engine must be one of {}, got {!r}".format(
            ", ".join(ENGINES), engine))
    if effect is not None and effect not in EFFECTS:
        raise UserError("--effect must be one of {}, got {!r}".format(
            ", ".join(EFFECTS), effect))
    if effect == "replace":
        background = jobs.parse_background(background) if \
            isinstance(background, str) or background is None else background
    if shard_size < 1 or batch_size < 1:
        raise UserError("--batch-size and the shard size must be >= 1")
    if actors is not None and actors < 1:
        raise UserError("--actors must be >= 1")
    tile, overlap = preflight.check_tiling(tile, overlap)
    t0 = time.time()
    paths = collect_sources(sources, output=output)
    os.makedirs(output, exist_ok=True)
    done = done_paths(output)
    todo = [p for p in paths if p not in done]
    log("{} images, {} already done in {}, {} to process".format(
        len(paths), len(paths) - len(todo), output, len(todo)))
    model_options = dict(weights=weights, logs=logs, config_json=config_json,
                         num_classes=num_classes, backbone=backbone,
                         image_size=image_size, batch_size=batch_size,
                         min_score=min_score, class_names=class_names)
    job = dict(output=os.path.abspath(output), effect=effect,
               background=background, tile=tile, overlap=overlap)
    if todo and engine == "local":
        _run_local(todo, model_options, job, shard_size, progress, log)
    elif todo:
        # Ray is imported only for engine="ray"; the local loop needs none.
        try:
            from mrcnn.app import batch_ray
        except ModuleNotFoundError as e:
            raise UserError("engine 'ray' needs the [ray] extra ({}): pip "
                            "install 'mrcnn[ray]'".format(e))
        batch_ray.run(todo, model_options, job, shard_size=shard_size,
                      address=address, actors=actors, num_cpus=num_cpus,
                      num_gpus=num_gpus, progress=progress, log=log)
    summary = finalize(output)
    summary.update(images=len(paths), skipped=len(paths) - len(todo),
                   processed=len(todo), seconds=round(time.time() - t0, 2),
                   output=output)
    return summary


def _run_local(todo, model_options, job, shard_size, progress, log):
    """The in-process loop: one model, shards of ``shard_size`` images."""
    model, _, names = jobs.prepare_inference(log=log, **model_options)
    bar = tqdm(total=len(todo), unit="image", desc="detect",
               disable=not progress)
    try:
        for start in range(0, len(todo), shard_size):
            chunk = todo[start:start + shard_size]
            decoded = [decode_image(p) for p in chunk]
            rows = detect_rows(model, names, chunk,
                               [d[0] for d in decoded],
                               [d[1] for d in decoded], **job)
            write_shard(job["output"], rows)
            bar.update(len(chunk))
    finally:
        bar.close()
