"""The Dataset base class (Matterport's ``utils.Dataset``).

A dataset registers classes and images from one or more *sources* (e.g.
"coco", "balloon"), each with its own class ids, and maps them to one
contiguous internal id space after ``prepare()``. Class 0 is always the
background, ``{"source": "", "id": 0, "name": "BG"}``.

Subclass it, add classes and images in a loader method, and override
``load_mask`` (and ``image_reference`` if you like)::

    class ShapesDataset(Dataset):
        def load_shapes(self, count):
            self.add_class("shapes", 1, "square")
            for i in range(count):
                self.add_image("shapes", image_id=i, path=None, ...)

        def load_mask(self, image_id):
            ...
            return mask, class_ids    # bool [H, W, N], int32 [N]

    dataset = ShapesDataset()
    dataset.load_shapes(500)
    dataset.prepare()
"""

import logging

import numpy as np

from mrcnn.core.errors import ImageReadError
from mrcnn.core.images import read_image, to_rgb_uint8
from mrcnn.core.validation import validate_dataset


class Dataset(object):
    """Base class of dataset classes.

    Attributes:
        image_info: list of dicts, one per image: {"id": source image id,
            "source": source name, "path": file path, **extra kwargs}.
        class_info: list of dicts {"source", "id", "name"}; index 0 is BG.
        skipped: list of (image id or path, reason) for images or
            annotations a loader chose to skip; empty by default.
        After prepare(): num_classes, class_ids [num_classes],
        class_names, num_images, image_ids [num_images],
        class_from_source_map {"source.id": internal class id},
        image_from_source_map {"source.id": internal image id}, sources,
        source_class_ids {source: [internal class ids, BG included]}.
    """

    def __init__(self, class_map=None):
        self._image_ids = []
        self.image_info = []
        # Background is always the first class.
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}
        self.skipped = []

    def add_class(self, source, class_id, class_name):
        """Register a class of a source; a second call for the same
        (source, class_id) is ignored."""
        if "." in source:
            raise ValueError("Source name cannot contain a dot: {!r}".format(source))
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return
        self.class_info.append({
            "source": source,
            "id": class_id,
            "name": class_name,
        })

    def add_image(self, source, image_id, path, **kwargs):
        """Register an image: its source, its id in that source, its file
        path, and any extra fields (e.g. width, height, polygons)."""
        image_info = {
            "id": image_id,
            "source": source,
            "path": path,
        }
        image_info.update(kwargs)
        self.image_info.append(image_info)

    def image_reference(self, image_id):
        """A link or description of the image, for debugging. Override it to
        return a URL to the image if it is available online. The base class
        returns ""."""
        return ""

    def prepare(self, class_map=None):
        """Build the internal id maps. Call it after adding classes and images.

        class_map is accepted for Matterport compatibility and not used.
        """
        def clean_name(name):
            """Text before the first comma: "person, man" -> "person"."""
            return ",".join(str(name).split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)

        # "source.id" -> internal id
        self.class_from_source_map = {
            "{}.{}".format(info["source"], info["id"]): int(class_id)
            for info, class_id in zip(self.class_info, self.class_ids)}
        self.image_from_source_map = {
            "{}.{}".format(info["source"], info["id"]): int(image_id)
            for info, image_id in zip(self.image_info, self.image_ids)}

        # Sources in order of first appearance ("" of BG first).
        self.sources = list(dict.fromkeys(info["source"] for info in self.class_info))
        self.source_class_ids = {}
        for source in self.sources:
            # BG (class 0) belongs to every source.
            self.source_class_ids[source] = [
                i for i, info in enumerate(self.class_info)
                if i == 0 or info["source"] == source]

    def map_source_class_id(self, source_class_id):
        """Internal class id of a "source.class_id" string, e.g. "coco.12"."""
        try:
            return self.class_from_source_map[source_class_id]
        except AttributeError:
            raise RuntimeError("Dataset.map_source_class_id: call prepare() first") from None

    def get_source_class_id(self, class_id, source):
        """The source's own id of internal class ``class_id``."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError("Class {} ({!r}) belongs to source {!r}, not {!r}".format(
                class_id, info["name"], info["source"], source))
        return info["id"]

    @property
    def image_ids(self):
        """[num_images] internal image ids, 0..num_images - 1 (after prepare())."""
        return self._image_ids

    def source_image_link(self, image_id):
        """The path or URL of the image. Override to return a URL online."""
        return self.image_info[image_id]["path"]

    def load_image(self, image_id):
        """Load an image as RGB uint8 [H, W, 3].

        Grayscale becomes RGB, alpha is dropped, 16-bit and float images
        are scaled to 0..255, palette images are decoded.

        Raises:
            FileNotFoundError / OSError / ValueError naming the image id and
            path when the file is missing, unreadable or not convertible.
        """
        info = self.image_info[image_id]
        path = info.get("path")
        where = "image {} (source {!r}, id {!r}) at path {!r}".format(
            image_id, info.get("source"), info.get("id"), path)
        if path is None:
            raise ValueError("Dataset: {} has no file; override load_image() "
                             "for generated images".format(where))
        try:
            image = read_image(path)
        except FileNotFoundError:
            raise FileNotFoundError("Dataset: file not found for {}".format(where)) from None
        except OSError as error:
            raise ImageReadError("Dataset: cannot read {}: {}".format(
                where, error)) from error
        try:
            return to_rgb_uint8(image)
        except ValueError as error:
            raise ValueError("Dataset: {}: {}".format(where, error)) from None

    def validate(self, num_classes=None, channels=3, image_ids=None,
                 verbose=1, include_skipped=True):
        """Check every image and mask against the Dataset contract.

        Reads each image (load_image) and its masks (load_mask) once, with a
        progress bar, and collects ALL problems instead of stopping at the
        first: unreadable files, images that are not numeric [H, W,
        channels], masks that are not bool/0-1 [H, W, N] of the image's
        size, class ids that are not integers in 1..num_classes-1 (negative
        = crowd) or not one per mask, and a dataset where no image has an
        instance. Run it before a long training; the training pipeline
        raises on the first such sample. See mrcnn.core.validation.

        Args:
            num_classes: the model's NUM_CLASSES (default self.num_classes).
            channels: the model's IMAGE_CHANNEL_COUNT.
            image_ids: ids to check (default all of self.image_ids).
            verbose: 1 shows the progress bar and prints the table of
                problems (image | path | problem).
            include_skipped: also list what the loader left out
                (self.skipped: missing files, unusable annotations, with
                the annotation / region id; default True: one rule for
                every loader, what is not trained on is reported).
        Returns:
            list of dicts {"image_id", "path", "problem"}; empty when the
            dataset is clean. image_id is None for a dataset-wide problem.
        """
        return validate_dataset(self, num_classes=num_classes,
                                channels=channels, image_ids=image_ids,
                                verbose=verbose,
                                include_skipped=include_skipped)

    def load_mask(self, image_id):
        """Instance masks of an image. Override this in your dataset class.

        Contract for subclasses:
            masks: bool [H, W, N], one channel per instance, H and W those of
                load_image(image_id).
            class_ids: int32 [N], internal class ids (from
                map_source_class_id); a negative id marks a crowd region
                (used to exclude anchors/ROIs, never trained as an object).

        The base class returns an empty mask bool [0, 0, 0] and int32 [0]
        class ids, and logs a warning.
        """
        logging.warning("You are using the default load_mask(), maybe you need to define your own one.")
        mask = np.empty([0, 0, 0], dtype=bool)
        class_ids = np.empty([0], np.int32)
        return mask, class_ids
