"""The synthetic "shapes" dataset: squares, circles and triangles on a
plain background, drawn on the fly (Matterport's ``samples/shapes``).

Each image is described by a small spec stored in ``image_info``:
    bg_color: (r, g, b) ints in [0, 255]
    shapes:   list of (shape, color, (x, y, s)) where shape is "square",
              "circle" or "triangle", color an (r, g, b) tuple and
              (x, y) the centre, s the half size, all in pixels.
Shapes are drawn in list order, so later shapes occlude earlier ones; the
masks returned by ``load_mask`` account for that occlusion exactly.

Seeding: ``load_shapes(count, height, width, seed=7)`` draws every spec
from a private ``random.Random(7)`` and always gives the same dataset;
with ``seed=None`` it draws from Python's global ``random`` module as
Matterport did (so ``random.seed(...)`` in user code still works).
"""

import math
import random

import cv2
import numpy as np

from mrcnn.core.boxes import non_max_suppression
from mrcnn.core.dataset import Dataset

SHAPE_NAMES = ("square", "circle", "triangle")
# Source class id of each shape name (Matterport's order).
SHAPE_CLASS_IDS = {"square": 1, "circle": 2, "triangle": 3}


class ShapesDataset(Dataset):
    """Generates the synthetic shapes dataset.

    The images are generated on the fly; no file system access.
    """

    def load_shapes(self, count, height, width, seed=None):
        """Generate the requested number of synthetic images.

        count: number of images to generate.
        height, width: the size of the generated images in pixels.
        seed: None (use Python's global ``random``, as Matterport) or an
            int: the same seed always gives the same dataset and leaves
            the global random state untouched.
        """
        count, height, width = int(count), int(height), int(width)
        if count < 0:
            raise ValueError("load_shapes: count must be >= 0, got {}".format(count))
        if height < 42 or width < 42:
            # random_shape keeps centres 20 px away from every border.
            raise ValueError(
                "load_shapes: images must be at least 42x42 pixels, got "
                "height={} width={}".format(height, width))
        self._rng = random.Random(seed) if seed is not None else random
        self.add_class("shapes", 1, "square")
        self.add_class("shapes", 2, "circle")
        self.add_class("shapes", 3, "triangle")
        for i in range(count):
            bg_color, shapes = self.random_image(height, width)
            self.add_image("shapes", image_id=i, path=None,
                           width=width, height=height,
                           bg_color=bg_color, shapes=shapes)

    def load_image(self, image_id):
        """Draw the image from its spec.

        Returns: image [height, width, 3] uint8 RGB.
        """
        info = self.image_info[image_id]
        bg_color = np.array(info["bg_color"], dtype=np.uint8).reshape([1, 1, 3])
        image = np.ones([info["height"], info["width"], 3], dtype=np.uint8)
        image = image * bg_color  # [H, W, 3] filled with the background
        for shape, color, dims in info["shapes"]:
            image = self.draw_shape(image, shape, dims, color)
        return image

    def image_reference(self, image_id):
        """The shapes spec of the image (as Matterport)."""
        info = self.image_info[image_id]
        if info["source"] == "shapes":
            return info["shapes"]
        return super().image_reference(image_id)

    def load_mask(self, image_id):
        """Instance masks of the shapes of the image.

        Later shapes occlude earlier ones; an instance left with no visible
        pixel is dropped.

        Returns:
            masks: [height, width, N] bool, one channel per visible shape.
            class_ids: [N] int32, internal class ids of the shapes.
        """
        info = self.image_info[image_id]
        shapes = info["shapes"]
        height, width = info["height"], info["width"]
        count = len(shapes)
        mask = np.zeros([height, width, count], dtype=bool)
        for i, (shape, _, dims) in enumerate(shapes):
            canvas = np.zeros([height, width], dtype=np.uint8)
            mask[:, :, i] = self.draw_shape(canvas, shape, dims, 1) > 0
        # Occlusion: walk from the top shape down, removing what lies above.
        covered = np.zeros([height, width], dtype=bool)
        for i in range(count - 1, -1, -1):
            mask[:, :, i] &= ~covered
            covered |= mask[:, :, i]
        visible = mask.any(axis=(0, 1))  # [count]
        mask = mask[:, :, visible]  # [H, W, N]
        class_ids = np.array(
            [self._class_id(s[0]) for s, v in zip(shapes, visible) if v],
            dtype=np.int32)
        return mask, class_ids

    def _class_id(self, shape):
        """Internal class id of a shape name (source id before prepare())."""
        source_id = SHAPE_CLASS_IDS[shape]
        class_map = getattr(self, "class_from_source_map", None)
        if class_map:
            return class_map["shapes.{}".format(source_id)]
        return source_id

    def draw_shape(self, image, shape, dims, color):
        """Draw a filled shape on ``image`` and return it.

        image: [H, W] or [H, W, C] uint8 array (drawn in place when it is
            contiguous; always use the returned array).
        shape: "square", "circle" or "triangle".
        dims: (x, y, s) centre and half size in pixels.
        color: an int or a tuple with one value per channel.
        """
        x, y, s = (int(v) for v in dims)
        if not image.flags["C_CONTIGUOUS"]:
            image = np.ascontiguousarray(image)
        if isinstance(color, (tuple, list, np.ndarray)):
            color = tuple(int(c) for c in color)
        else:
            color = int(color)
        if shape == "square":
            cv2.rectangle(image, (x - s, y - s), (x + s, y + s), color, -1)
        elif shape == "circle":
            cv2.circle(image, (x, y), s, color, -1)
        elif shape == "triangle":
            # Equilateral triangle with apex s above the centre and base s
            # below it (Matterport's construction).
            half_base = s / math.sin(math.radians(60))
            points = np.array([[(x, y - s),
                                (x - half_base, y + s),
                                (x + half_base, y + s)]], dtype=np.int32)
            image = cv2.fillPoly(image, points, color)
        else:
            raise ValueError(
                "draw_shape: unknown shape {!r}; expected one of {}".format(
                    shape, SHAPE_NAMES))
        return image

    def _random(self):
        """The random source: the seeded generator or the global module."""
        return getattr(self, "_rng", random)

    def random_shape(self, height, width):
        """Random spec of one shape that lies inside a height x width image.

        Returns: (shape, color, (x, y, s)): shape name, (r, g, b) color,
            centre x, y and half size s in pixels.
        """
        rng = self._random()
        shape = rng.choice(list(SHAPE_NAMES))
        color = tuple([rng.randint(0, 255) for _ in range(3)])
        # Keep the centre away from the borders.
        buffer = 20
        y = rng.randint(buffer, height - buffer - 1)
        x = rng.randint(buffer, width - buffer - 1)
        s = rng.randint(buffer, max(buffer, height // 4))
        return shape, color, (x, y, s)

    def random_image(self, height, width):
        """Random spec of an image: background color and 1-4 shapes.

        Heavily overlapping shapes (box IoU > 0.3) are removed with
        non-max suppression, keeping the shape drawn later.

        Returns: bg_color [3] int array (r, g, b), shapes: list of
            (shape, color, (x, y, s)).
        """
        rng = self._random()
        bg_color = np.array([rng.randint(0, 255) for _ in range(3)])
        shapes = []
        boxes = []
        n = rng.randint(1, 4)
        for _ in range(n):
            shape, color, dims = self.random_shape(height, width)
            shapes.append((shape, color, dims))
            x, y, s = dims
            boxes.append([y - s, x - s, y + s, x + s])
        # Scores 0..n-1: later (top-most) shapes win the suppression.
        keep_ixs = non_max_suppression(np.array(boxes, dtype=np.float32),
                                       np.arange(n, dtype=np.float32), 0.3)
        keep = set(int(i) for i in keep_ixs)
        shapes = [s for i, s in enumerate(shapes) if i in keep]
        return bg_color, shapes
