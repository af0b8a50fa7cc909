"""Detection on images larger than the model's input, tile by tile.

    detect_tiled(detect_fn, images, tile=1024, overlap=256)

cuts each image into overlapping square tiles of ``tile`` pixels (each one
then resized to the model's input by detect_fn, as any image), detects in
several tiles per call, maps boxes and masks back into the image and merges
the detections that are one object:

- the same object seen by two tiles (it lies in their overlap): one
  instance, as a per-class mask NMS would keep;
- an object cut by a seam (each tile sees a part): one instance, the union
  of its parts. With ``overlap`` 0 the parts only touch across the seam;
  they are joined too.

Two detections of one class from different tiles are one object when,
inside the region both tiles see (their overlap), the smaller one's mask
lies at least ``threshold`` inside the other's (intersection over the
smaller area, `MERGE_THRESHOLD`); with zero overlap, when their mask pixels
on the two sides of the seam face each other over at least ``threshold`` of
the shorter run. A merged instance keeps, at each pixel, the mask of the
tile whose centre region (`TileGrid.owner`: the overlaps split at their
middle) holds the pixel when that tile saw the object, else the union of
the parts that cover the pixel; its score is the best of its parts, its
box the union of theirs. A detection that touches an inner tile edge
(truncated) and was seen by no other tile, lying mostly inside another
instance of another class (a cut object that the cut tile classified
differently), is dropped.

Masks stay memory-bounded: every detection's mask is kept as a bool crop
of its box (`CropMasks`, a `mrcnn.core.masks.BoxMasks` for everything that
reads one: RLE from the box, effects and rendering a block of rows at a
time), so a 10000x10000 image with hundreds of objects costs the image and
the crops, not [H, W, N]. A progress bar (`mrcnn.core.progress`) shows for
images of many tiles.

Shape shorthand: H, W image height and width; T tile size; N detections.
Boxes are [N, (y1, x1, y2, x2)] pixels, y2/x2 exclusive.
"""

import math

import numpy as np

from mrcnn.core.masks import BoxMasks
from mrcnn.core.progress import tqdm

#: Intersection over the smaller mask, inside two tiles' overlap, above
#: which two detections of one class are one object.
MERGE_THRESHOLD = 0.5
#: Tiles per image from which the progress bar shows by default.
PROGRESS_MIN_TILES = 16
#: Pixels from an inner tile edge within which a box counts as truncated.
EDGE_MARGIN = 2
#: Smallest tile side accepted.
MIN_TILE = 8


def default_overlap(tile):
    """The overlap when none is given: a quarter of the tile."""
    return int(tile) // 4


def check_tiling(tile, overlap=None):
    """(tile, overlap) as ints, checked.

    Args:
        tile: tile side in pixels, an integer >= MIN_TILE.
        overlap: pixels shared by neighbouring tiles, 0 <= overlap < tile;
            None: `default_overlap`.
    Raises:
        ValueError naming the bad value.
    """
    def as_int(value, name):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:40] + "..."
        number = float("nan")
        if isinstance(value, str):
            value = value.strip()
        if not isinstance(value, (bool, np.bool_)):
            try:
                number = float(value)
            except (TypeError, ValueError):
                pass
        if not math.isfinite(number) or number != int(number):
            raise ValueError("{} must be an integer number of pixels, got "
                             "{}".format(name, shown))
        return int(number)

    tile = as_int(tile, "tile")
    if tile < MIN_TILE:
        raise ValueError("tile must be at least {} pixels, got {}".format(
            MIN_TILE, tile))
    overlap = default_overlap(tile) if overlap is None \
        else as_int(overlap, "overlap")
    if not 0 <= overlap < tile:
        raise ValueError("overlap must be in [0, tile) = [0, {}), got "
                         "{}".format(tile, overlap))
    return tile, overlap


def tile_starts(length, tile, overlap):
    """First pixels of the tiles along one axis of ``length`` pixels.

    The fewest tiles of ``tile`` pixels sharing at least ``overlap`` with
    their neighbour that cover the axis, spread evenly, the first at 0 and
    the last ending at ``length``; [0] when the axis fits one tile.
    """
    if length <= tile:
        return [0]
    count = int(math.ceil((length - overlap) / float(tile - overlap)))
    step = (length - tile) / float(count - 1)
    return [int(round(i * step)) for i in range(count)]


class TileGrid(object):
    """The tiles of one image and which tile is central where.

    Tile k = (row r, column c), k = r * columns + c, covers image rows
    ys[r]..ys[r] + th - 1 and columns xs[c]..xs[c] + tw - 1 (th = min(T, H),
    tw = min(T, W)). Each overlap is split at its middle: `owner` gives the
    tile nearest the centre of its own region for any pixel.
    """

    def __init__(self, image_shape, tile, overlap):
        self.height, self.width = int(image_shape[0]), int(image_shape[1])
        self.tile, self.overlap = int(tile), int(overlap)
        self.th, self.tw = min(self.tile, self.height), min(self.tile,
                                                            self.width)
        self.ys = np.array(tile_starts(self.height, self.tile, overlap))
        self.xs = np.array(tile_starts(self.width, self.tile, overlap))
        # [rows - 1], [columns - 1]: middles of the overlaps.
        self.y_cuts = (self.ys[1:] + self.ys[:-1] + self.th) // 2
        self.x_cuts = (self.xs[1:] + self.xs[:-1] + self.tw) // 2

    @property
    def columns(self):
        return len(self.xs)

    def __len__(self):
        return len(self.ys) * len(self.xs)

    def window(self, k):
        """(y1, x1, y2, x2) of tile k in image pixels."""
        r, c = divmod(int(k), self.columns)
        y, x = int(self.ys[r]), int(self.xs[c])
        return y, x, y + self.th, x + self.tw

    def owner(self, y1, x1, y2, x2):
        """int [y2 - y1, x2 - x1]: the tile whose centre region holds each
        pixel of rows y1..y2-1, columns x1..x2-1."""
        rows = np.searchsorted(self.y_cuts, np.arange(y1, y2), side="right")
        cols = np.searchsorted(self.x_cuts, np.arange(x1, x2), side="right")
        return rows[:, None] * self.columns + cols[None, :]   # [h, w]

    def is_inner(self, k, side):
        """True when edge ``side`` ("top", "left", "bottom", "right") of
        tile k lies inside the image (a seam, not the image border)."""
        y1, x1, y2, x2 = self.window(k)
        return {"top": y1 > 0, "left": x1 > 0, "bottom": y2 < self.height,
                "right": x2 < self.width}[side]


class CropMasks(BoxMasks):
    """Instance masks [H, W, N] held as N bool crops, each at its place.

    What tiled detection returns as ``masks`` (with ``masks="boxes"``):
    merged instances are unions of parts, which no single mask-head output
    describes, so each mask is kept as the bool pixels of its box. Reads as
    a `BoxMasks` (``crop``, ``rows``, ``union``, ``select``, ``[:, :, i]``,
    ``np.asarray``), so RLE, effects and rendering take it as they take
    detect()'s.

    Args:
        crops: N tuples (y, x, bool [h, w]): mask i is crop at image pixel
            (y, x), False elsewhere; each crop lies inside the image.
        image_shape: (H, W[, C]) of the image.
    """

    def __init__(self, crops, image_shape):
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.crops = []
        boxes = []
        for i, (y, x, crop) in enumerate(crops):
            crop = np.asarray(crop, bool)
            y, x = int(y), int(x)
            if crop.ndim != 2 or y < 0 or x < 0 or \
                    y + crop.shape[0] > self.image_shape[0] or \
                    x + crop.shape[1] > self.image_shape[1]:
                raise ValueError(
                    "CropMasks: crop {} ({} at y={}, x={}) does not lie "
                    "inside the {}x{} image".format(
                        i, crop.shape, y, x, *self.image_shape))
            self.crops.append((y, x, crop))
            boxes.append((y, x, y + crop.shape[0], x + crop.shape[1]))
        self.boxes = np.array(boxes, np.int64).reshape(-1, 4)
        self._pastes = {}

    def rows(self, i, start=0, stop=None):
        """Mask i over image rows start..stop-1, inside its box: (y, x,
        bool [h, w]) as `BoxMasks.rows`."""
        stop = self.image_shape[0] if stop is None else stop
        y, x, crop = self.crops[i]
        a, b = max(y, start), min(y + crop.shape[0], stop)
        if b <= a:
            return max(a, 0), x, np.zeros((0, crop.shape[1]), bool)
        return a, x, crop[a - y:b - y]

    def select(self, index):
        """CropMasks of the instances ``index`` (ints or a [N] bool array)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.nonzero(index)[0]
        return CropMasks([self.crops[int(i)] for i in index.reshape(-1)],
                         self.image_shape)

    def __repr__(self):
        return "CropMasks(shape={})".format(self.shape)


############################################################
#  Detections of the tiles, in image pixels
############################################################

class _Part(object):
    """One detection of one tile: class, score, box and mask crop in image
    pixels, and whether its box reaches an inner edge of its tile."""

    __slots__ = ("tile", "class_id", "score", "roi", "y", "x", "crop",
                 "truncated")

    def __init__(self, tile, class_id, score, roi, y, x, crop, truncated):
        self.tile, self.class_id, self.score = tile, class_id, score
        self.roi, self.y, self.x, self.crop = roi, y, x, crop
        self.truncated = truncated

    @property
    def window(self):
        return (self.y, self.x, self.y + self.crop.shape[0],
                self.x + self.crop.shape[1])

    def region(self, y1, x1, y2, x2):
        """bool [y2 - y1, x2 - x1]: the mask over that image region."""
        out = np.zeros((max(y2 - y1, 0), max(x2 - x1, 0)), bool)
        a, b = max(y1, self.y), min(y2, self.y + self.crop.shape[0])
        c, d = max(x1, self.x), min(x2, self.x + self.crop.shape[1])
        if b > a and d > c:
            out[a - y1:b - y1, c - x1:d - x1] = \
                self.crop[a - self.y:b - self.y, c - self.x:d - self.x]
        return out


def _mask_crop(masks, i, tile_shape):
    """(y, x, bool [h, w]) of mask i of a tile's result, in tile pixels,
    tight around its pixels (empty [0, 0] when it has none)."""
    if hasattr(masks, "crop"):           # BoxMasks: pasted in its box only
        y, x, crop = masks.crop(i)
    else:
        y, x, crop = 0, 0, np.asarray(masks[:, :, i], bool)
    rows = np.flatnonzero(crop.any(axis=1))
    if rows.size == 0:
        return 0, 0, np.zeros((0, 0), bool)
    cols = np.flatnonzero(crop.any(axis=0))
    crop = crop[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return y + int(rows[0]), x + int(cols[0]), np.ascontiguousarray(crop)


def _tile_parts(result, k, grid):
    """The detections of tile k's result dict as _Parts in image pixels.

    Raises:
        ValueError when the result is not a detect() dict of the tile.
    """
    ty, tx, ty2, tx2 = grid.window(k)
    try:
        rois = np.asarray(result["rois"]).reshape(-1, 4)
        class_ids = np.asarray(result["class_ids"]).reshape(-1)
        scores = np.asarray(result["scores"]).reshape(-1)
        masks = result["masks"]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("tiled detection: detect_fn must return dicts with "
                         "rois [N, 4], class_ids [N], scores [N], masks "
                         "[H, W, N] ({})".format(e)) from None
    n = len(rois)
    if len(class_ids) != n or len(scores) != n or masks.shape[-1] != n or \
            tuple(masks.shape[:2]) != (ty2 - ty, tx2 - tx):
        raise ValueError(
            "tiled detection: the result of tile {} ({}x{} px) has {} rois, "
            "{} class_ids, {} scores and masks {}".format(
                k, ty2 - ty, tx2 - tx, n, len(class_ids), len(scores),
                tuple(masks.shape)))
    inner = {side: grid.is_inner(k, side)
             for side in ("top", "left", "bottom", "right")}
    th, tw = ty2 - ty, tx2 - tx
    parts = []
    for i in range(n):
        y1, x1, y2, x2 = [int(v) for v in rois[i]]
        truncated = (inner["top"] and y1 <= EDGE_MARGIN) or \
            (inner["left"] and x1 <= EDGE_MARGIN) or \
            (inner["bottom"] and y2 >= th - EDGE_MARGIN) or \
            (inner["right"] and x2 >= tw - EDGE_MARGIN)
        my, mx, crop = _mask_crop(masks, i, (th, tw))
        parts.append(_Part(k, int(class_ids[i]), float(scores[i]),
                           (y1 + ty, x1 + tx, y2 + ty, x2 + tx),
                           my + ty, mx + tx, crop, truncated))
    return parts


############################################################
#  Merging at the seams
############################################################

def _touching_pairs(windows, groups_of):
    """[P, 2] index pairs i < j whose windows [N, (y1, x1, y2, x2)]
    overlap or touch, and with groups_of[i] != groups_of[j] (their tiles),
    a block of rows at a time (memory N x 1024, not N x N)."""
    n = len(windows)
    found = []
    for start in range(0, n, 1024):
        w = windows[start:start + 1024]
        hit = (w[:, None, 0] <= windows[None, :, 2]) & \
            (windows[None, :, 0] <= w[:, None, 2]) & \
            (w[:, None, 1] <= windows[None, :, 3]) & \
            (windows[None, :, 1] <= w[:, None, 3])            # [b, N]
        hit &= groups_of[start:start + 1024, None] != groups_of[None, :]
        rows, cols = np.nonzero(hit)
        rows = rows + start
        keep = rows < cols
        found.append(np.stack([rows[keep], cols[keep]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), np.int64)


def _same_object(a, b, grid, threshold):
    """True when _Parts a and b (one class, different tiles) are one
    object: in the tiles' overlap, the smaller mask lies at least
    ``threshold`` inside the other; with no overlap, their pixels on the
    two sides of the seam face each other over ``threshold`` of the
    shorter run."""
    ay1, ax1, ay2, ax2 = grid.window(a.tile)
    by1, bx1, by2, bx2 = grid.window(b.tile)
    y1, x1 = max(ay1, by1), max(ax1, bx1)
    y2, x2 = min(ay2, by2), min(ax2, bx2)
    if y2 > y1 and x2 > x1:
        # Only where both masks lie: the rest of the overlap is empty.
        wa, wb = a.window, b.window
        ma = a.region(max(y1, wa[0]), max(x1, wa[1]),
                      min(y2, wa[2]), min(x2, wa[3])).sum()
        mb = b.region(max(y1, wb[0]), max(x1, wb[1]),
                      min(y2, wb[2]), min(x2, wb[3])).sum()
        small = min(ma, mb)
        if small == 0:
            return False
        c1, c2 = max(y1, wa[0], wb[0]), max(x1, wa[1], wb[1])
        c3, c4 = min(y2, wa[2], wb[2]), min(x2, wa[3], wb[3])
        if c3 <= c1 or c4 <= c2:
            return False
        inter = (a.region(c1, c2, c3, c4) & b.region(c1, c2, c3, c4)).sum()
        return inter >= threshold * small
    if y2 == y1 and x2 > x1:                 # a horizontal seam at row y1
        upper, lower = (a, b) if ay2 == y1 else (b, a)
        line_u = upper.region(y1 - 1, x1, y1, x2)[0]
        line_l = lower.region(y1, x1, y1 + 1, x2)[0]
    elif x2 == x1 and y2 > y1:               # a vertical seam at column x1
        left, right = (a, b) if ax2 == x1 else (b, a)
        line_u = left.region(y1, x1 - 1, y2, x1)[:, 0]
        line_l = right.region(y1, x1, y2, x1 + 1)[:, 0]
    else:
        return False
    small = min(line_u.sum(), line_l.sum())
    return small > 0 and (line_u & line_l).sum() >= threshold * small


def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _combine(members, grid):
    """(y, x, bool [h, w]) of one object made of several parts: at each
    pixel the mask of the part from the tile that owns the pixel when that
    tile saw the object, else the union of the parts there."""
    if len(members) == 1:
        m = members[0]
        return m.y, m.x, m.crop
    windows = np.array([m.window for m in members])
    y1, x1 = windows[:, 0].min(), windows[:, 1].min()
    y2, x2 = windows[:, 2].max(), windows[:, 3].max()
    owner = grid.owner(y1, x1, y2, x2)                       # [h, w]
    out = np.zeros((y2 - y1, x2 - x1), bool)
    union = np.zeros_like(out)
    for m in members:
        region = m.region(y1, x1, y2, x2)
        out |= region & (owner == m.tile)
        union |= region
    out |= union & ~np.isin(owner, [m.tile for m in members])
    rows = np.flatnonzero(out.any(axis=1))
    if rows.size == 0:
        return 0, 0, np.zeros((0, 0), bool)
    cols = np.flatnonzero(out.any(axis=0))
    return (int(y1 + rows[0]), int(x1 + cols[0]),
            out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])


def merge_tile_detections(parts, grid, threshold=MERGE_THRESHOLD):
    """Merge the tiles' detections of one image into instances.

    Args:
        parts: list of _Part (all tiles of the image).
        grid: the image's TileGrid.
        threshold: see the module docstring (`MERGE_THRESHOLD`).
    Returns:
        list of instances, best score first: dicts with class_id, score,
        roi (y1, x1, y2, x2), y, x, crop (bool [h, w]).
    """
    n = len(parts)
    parent = list(range(n))
    class_ids = np.array([p.class_id for p in parts], np.int64)
    for cid in np.unique(class_ids):
        idx = np.flatnonzero((class_ids == cid) &
                             np.array([p.crop.size > 0 for p in parts]))
        windows = np.array([parts[i].window for i in idx]).reshape(-1, 4)
        tiles = np.array([parts[i].tile for i in idx])
        for i, j in _touching_pairs(windows, tiles):
            a, b = idx[i], idx[j]
            if _find(parent, a) != _find(parent, b) and \
                    _same_object(parts[a], parts[b], grid, threshold):
                parent[_find(parent, a)] = _find(parent, b)
    groups = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(parts[i])
    instances = []
    for members in groups.values():
        y, x, crop = _combine(members, grid)
        rois = np.array([m.roi for m in members])
        instances.append({
            "class_id": members[0].class_id,
            "score": max(m.score for m in members),
            "roi": (int(rois[:, 0].min()), int(rois[:, 1].min()),
                    int(rois[:, 2].max()), int(rois[:, 3].max())),
            "y": y, "x": x, "crop": crop,
            "fragment": len(members) == 1 and members[0].truncated})
    instances = _drop_fragments(instances, threshold)
    instances.sort(key=lambda d: -d["score"])
    return instances


def _drop_fragments(instances, threshold):
    """Instances without the truncated single detections that lie at least
    ``threshold`` inside a larger instance of another class."""
    areas = np.array([d["crop"].sum() for d in instances])
    parts = [_Part(0, d["class_id"], d["score"], d["roi"], d["y"], d["x"],
                   d["crop"], d["fragment"]) for d in instances]
    windows = np.array([p.window for p in parts]).reshape(-1, 4)
    # Distinct labels: every pair of instances is a candidate.
    pairs = _touching_pairs(windows, np.arange(len(parts)))
    dropped = set()
    for i, j in pairs:
        for f, g in ((i, j), (j, i)):
            if not instances[f]["fragment"] or f in dropped or \
                    instances[f]["class_id"] == instances[g]["class_id"] or \
                    areas[g] <= areas[f] or areas[f] == 0:
                continue
            y1, x1, y2, x2 = parts[f].window
            inter = (parts[f].crop & parts[g].region(y1, x1, y2, x2)).sum()
            if inter >= threshold * areas[f]:
                dropped.add(f)
    return [d for i, d in enumerate(instances) if i not in dropped]


############################################################
#  Entry point
############################################################

def _check_image(image, index):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("tiled detection: image {} must be [H, W, C], got "
                         "shape {}".format(index, image.shape))
    return image


def detect_tiled(detect_fn, images, tile, overlap=None, batch_size=1,
                 masks="boxes", threshold=MERGE_THRESHOLD, progress=None):
    """Detect in large images tile by tile, merging at the seams.

    Args:
        detect_fn: list of [T, T, C] tiles (fewer rows / columns where the
            image is smaller than T) -> list of detect() dicts, one per
            tile: rois [N, (y1, x1, y2, x2)] tile pixels, class_ids [N],
            scores [N], masks bool [T, T, N] or a BoxMasks of them.
        images: list of [H, W, C] images.
        tile: tile side T in pixels (the tile is what detect_fn resizes to
            the model's input; T = IMAGE_MAX_DIM keeps the image's scale).
        overlap: pixels neighbouring tiles share (`check_tiling`; default
            T // 4); objects up to this size are seen whole by some tile.
        batch_size: tiles per detect_fn call.
        masks: "boxes" (`CropMasks`, bounded memory) or "full" (bool
            [H, W, N]).
        threshold: merge threshold (see the module docstring).
        progress: True / False, or None: a bar for images of at least
            PROGRESS_MIN_TILES tiles.
    Returns:
        list of dicts, one per image: rois int32 [N, (y1, x1, y2, x2)],
        class_ids int32 [N], scores float32 [N] (best first), masks.
        An image that fits one tile gets detect_fn's result as it is.
    Raises:
        ValueError for a bad tile, overlap, masks, image or detect_fn
        result (naming it).
    """
    tile, overlap = check_tiling(tile, overlap)
    if masks not in ("boxes", "full"):
        raise ValueError("masks must be 'full' or 'boxes', got {!r}".format(
            masks))
    batch_size = max(1, int(batch_size))
    out = []
    for index, image in enumerate(images):
        image = _check_image(image, index)
        grid = TileGrid(image.shape, tile, overlap)
        show = progress if progress is not None else \
            len(grid) >= PROGRESS_MIN_TILES
        bar = tqdm(total=len(grid), unit="tile", disable=not show,
                   desc="detect tiles" + (" (image {})".format(index)
                                          if len(images) > 1 else ""))
        parts = []
        try:
            for start in range(0, len(grid), batch_size):
                ks = range(start, min(start + batch_size, len(grid)))
                tiles = []
                for k in ks:
                    y1, x1, y2, x2 = grid.window(k)
                    tiles.append(image[y1:y2, x1:x2])
                found = list(detect_fn(tiles))
                if len(found) != len(tiles):
                    raise ValueError("tiled detection: detect_fn returned {} "
                                     "results for {} tiles".format(
                                         len(found), len(tiles)))
                if len(grid) == 1:
                    single = found[0]
                for k, result in zip(ks, found):
                    parts.extend(_tile_parts(result, k, grid))
                bar.update(len(tiles))
        finally:
            bar.close()
        if len(grid) == 1:
            if masks == "full" and hasattr(single["masks"], "crop"):
                single = dict(single, masks=np.asarray(single["masks"]))
            out.append(single)
            continue
        instances = merge_tile_detections(parts, grid, threshold)
        crops = CropMasks([(d["y"], d["x"], d["crop"]) for d in instances],
                          image.shape)
        out.append({
            "rois": np.array([d["roi"] for d in instances],
                             np.int32).reshape(-1, 4),
            "class_ids": np.array([d["class_id"] for d in instances],
                                  np.int32),
            "scores": np.array([d["score"] for d in instances], np.float32),
            "masks": crops if masks == "boxes" else crops.to_dense()})
    return out
