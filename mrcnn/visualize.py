"""Display and visualisation functions (Matterport's ``mrcnn.visualize``).

Every function keeps Matterport's name, signature and defaults, and draws
what Matterport's drew. Two things are added:

* each function RETURNS what it drew: a ``matplotlib.figure.Figure`` for the
  plots (save it with ``fig.savefig("out.png")``), the image array for
  `apply_mask` / `draw_box`, the HTML string for `display_table`;
* it works the same inline in Jupyter and in a headless script. When no
  display is available and nobody chose a matplotlib backend, the "Agg"
  backend is selected; ``plt.show()`` is only called where it can show
  something (an interactive backend or the Jupyter inline backend), so a
  headless run neither blocks nor warns. Figures made for a headless run are
  released from pyplot (they stay valid for ``savefig``) so that loops over
  many images do not pile up open figures.

Shapes use Matterport's notation: ``boxes: [N, (y1, x1, y2, x2)]`` in pixels,
``masks: [height, width, N]`` bool/0-1, ``class_ids: [N]`` int.
"""
import colorsys
import itertools
import os
import random
import sys

import numpy as np

from mrcnn.nn.private_apis import matplotlib_backend_chosen


def _in_jupyter():
    """True inside a running Jupyter kernel (not merely with ipykernel or
    IPython imported, as in a test suite that also runs notebooks)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - any failure means "not in a kernel"
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _choose_backend():
    """Select "Agg" when there is no display and no backend was chosen."""
    import matplotlib
    if os.environ.get("MPLBACKEND") or "matplotlib.pyplot" in sys.modules:
        return
    if _in_jupyter():
        return  # Jupyter picks its own (inline) backend.
    try:
        chosen = matplotlib_backend_chosen(matplotlib)
    except (AttributeError, KeyError):
        chosen = False
    if chosen:
        return
    headless = (sys.platform.startswith("linux")
                and not os.environ.get("DISPLAY")
                and not os.environ.get("WAYLAND_DISPLAY"))
    if headless:
        matplotlib.use("Agg")


_choose_backend()

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import lines, patches  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from mrcnn.core.masks import unmold_mask  # noqa: E402
from mrcnn.core.metrics import compute_matches  # noqa: E402

_NON_INTERACTIVE = ("agg", "pdf", "ps", "svg", "pgf", "cairo", "template")


class _MrcnnFigure(Figure):
    """A Figure that Jupyter does not display twice.

    The functions below show their figure (as Matterport's did) and also
    return it. In Jupyter, a returned figure that is the last expression of a
    cell would be rendered a second time; once shown, it renders as nothing.
    """
    _mrcnn_shown = False

    def _ipython_display_(self):
        if self._mrcnn_shown:
            return
        import io
        from IPython.display import Image, display
        self._mrcnn_shown = True
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        display(Image(data=buf.getvalue(), format="png"))


def _backend_name():
    import matplotlib
    return str(matplotlib.get_backend()).lower()




def _show(fig):
    """Show ``fig`` where that is possible, without blocking or warning
    headless. Returns ``fig``."""
    backend = _backend_name()
    if "inline" in backend or "ipympl" in backend or "widget" in backend:
        plt.show()
        fig._mrcnn_shown = True
    elif any(backend == b or backend.endswith("backend_" + b)
             for b in _NON_INTERACTIVE):
        # Headless: nothing to show; release the figure from pyplot so
        # loops do not accumulate open figures. fig.savefig() still works.
        if not _in_jupyter():
            plt.close(fig)
    else:
        plt.show()
        fig._mrcnn_shown = True
    return fig


def _new_figure(figsize):
    """A figure with one axes. Returns (fig, ax)."""
    return plt.subplots(1, figsize=figsize, FigureClass=_MrcnnFigure)


############################################################
#  Visualization
############################################################

def display_images(images, titles=None, cols=4, cmap=None, norm=None,
                   interpolation=None):
    """Display the given set of images, optionally with titles.

    Args:
        images: list or array of image tensors, each [height, width(, 3)].
        titles: optional. A list of titles to display with each image.
        cols: number of images per row.
        cmap: optional. Color map to use. For example, "Blues".
        norm: optional. A Normalize instance to map values to colors.
        interpolation: optional. Image interpolation to use for display.
    Returns:
        the matplotlib Figure.
    """
    titles = titles if titles is not None else [""] * len(images)
    rows = len(images) // cols + 1
    fig = plt.figure(figsize=(14, 14 * rows // cols),
                     FigureClass=_MrcnnFigure)
    for i, (image, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax.imshow(np.asarray(image).astype(np.uint8), cmap=cmap, norm=norm,
                  interpolation=interpolation)
    return _show(fig)


def random_colors(N, bright=True):
    """Generate random colors.

    To get visually distinct colors, generate them in HSV space then
    convert to RGB.

    Args:
        N: number of colors.
        bright: full brightness (1.0) if True, else 0.7.
    Returns:
        list of N (r, g, b) tuples of floats in [0, 1], in random order.
    """
    brightness = 1.0 if bright else 0.7
    hsv = [(i / N, 1, brightness) for i in range(N)]
    colors = [colorsys.hsv_to_rgb(*c) for c in hsv]
    random.shuffle(colors)
    return colors


def apply_mask(image, mask, color, alpha=0.5):
    """Apply the given mask to the image (in place, as Matterport).

    ``pixel = pixel * (1 - alpha) + alpha * color * 255`` where mask == 1.

    Args:
        image: [height, width, 3] array; modified in place.
        mask: [height, width] bool or 0/1.
        color: (r, g, b) floats in [0, 1].
        alpha: opacity of the color.
    Returns:
        image (the same array).
    """
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError("apply_mask: mask shape {} does not match image "
                         "shape {}".format(mask.shape, image.shape[:2]))
    for c in range(3):
        image[:, :, c] = np.where(mask == 1,
                                  image[:, :, c] * (1 - alpha)
                                  + alpha * color[c] * 255,
                                  image[:, :, c])
    return image


def _check_instances(boxes, masks, class_ids, where):
    n_boxes = boxes.shape[0]
    n_masks = masks.shape[-1] if masks is not None else n_boxes
    n_ids = class_ids.shape[0]
    if not n_boxes == n_masks == n_ids:
        raise ValueError(
            "{}: boxes [N, 4], masks [H, W, N] and class_ids [N] must agree "
            "on N; got {} boxes, {} masks, {} class ids".format(
                where, n_boxes, n_masks, n_ids))


def _mask_outline(ax, mask, color):
    """Draw the outline of ``mask`` [height, width] as polygons on ``ax``."""
    from skimage.measure import find_contours
    # Pad so that masks touching the image edge give closed contours.
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    for verts in find_contours(padded, 0.5):
        verts = np.fliplr(verts) - 1  # (row, col) -> (x, y), undo the pad
        ax.add_patch(Polygon(verts, facecolor="none", edgecolor=color))


def display_instances(image, boxes, masks, class_ids, class_names,
                      scores=None, title="",
                      figsize=(16, 16), ax=None,
                      show_mask=True, show_bbox=True,
                      colors=None, captions=None):
    """Show instances: boxes, masks, class names and scores over the image.

    Args:
        image: [height, width, 3] image.
        boxes: [N, (y1, x1, y2, x2)] in image pixels; all-zero rows skipped.
        masks: [height, width, N] bool instance masks.
        class_ids: [N] int class ids, indices into ``class_names``.
        class_names: list of class names of the dataset ("BG" first).
        scores: (optional) [N] confidence scores for each box.
        title: (optional) figure title.
        figsize: (optional) the size of the image.
        ax: (optional) a matplotlib Axes to draw into (then nothing is shown).
        show_mask, show_bbox: whether to draw masks and bounding boxes.
        colors: (optional) a list of N colors, (r, g, b) floats in [0, 1].
        captions: (optional) a list of N strings to use instead of the
            default "class score" captions.
    Returns:
        the matplotlib Figure holding the drawing.
    """
    boxes = np.asarray(boxes)
    class_ids = np.asarray(class_ids)
    N = boxes.shape[0]
    if not N:
        print("\n*** No instances to display *** \n")
    else:
        _check_instances(boxes, np.asarray(masks), class_ids,
                         "display_instances")

    auto_show = False
    if not ax:
        fig, ax = _new_figure(figsize)
        auto_show = True
    fig = ax.figure

    colors = colors or random_colors(N)

    # Show area outside image boundaries.
    height, width = image.shape[:2]
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)

    masked_image = np.asarray(image).astype(np.uint32).copy()
    for i in range(N):
        color = colors[i]

        # Bounding box
        if not np.any(boxes[i]):
            # Skip this instance. Has no bbox. Likely lost in image cropping.
            continue
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(patches.Rectangle(
                (x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7,
                linestyle="dashed", edgecolor=color, facecolor="none"))

        # Label
        if not captions:
            class_id = class_ids[i]
            score = scores[i] if scores is not None else None
            label = class_names[class_id]
            caption = "{} {:.3f}".format(label, score) if score else label
        else:
            caption = captions[i]
        ax.text(x1, y1 + 8, caption, color="w", size=11,
                backgroundcolor="none")

        # Mask and its outline
        mask = masks[:, :, i]
        if show_mask:
            masked_image = apply_mask(masked_image, mask, color)
        _mask_outline(ax, mask, color)
    ax.imshow(masked_image.astype(np.uint8))
    if auto_show:
        _show(fig)
    return fig


def display_differences(image,
                        gt_box, gt_class_id, gt_mask,
                        pred_box, pred_class_id, pred_score, pred_mask,
                        class_names, title="", ax=None,
                        show_mask=True, show_box=True,
                        iou_threshold=0.5, score_threshold=0.5):
    """Display ground truth (green) and predictions (red) on one image.

    Captions of predictions read "score / IoU" (IoU with the matched ground
    truth, or the best IoU when unmatched).

    Args:
        image: [height, width, 3].
        gt_box: [G, (y1, x1, y2, x2)]; gt_class_id: [G]; gt_mask: [H, W, G].
        pred_box: [P, (y1, x1, y2, x2)]; pred_class_id: [P];
        pred_score: [P]; pred_mask: [H, W, P].
        class_names: list of class names.
        iou_threshold, score_threshold: passed to ``compute_matches``.
    Returns:
        the matplotlib Figure.
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_box, gt_class_id, gt_mask,
        pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    # Ground truth = green. Predictions = red.
    colors = [(0, 1, 0, .8)] * len(gt_match) + [(1, 0, 0, 1)] * len(pred_match)
    class_ids = np.concatenate([gt_class_id, pred_class_id])  # [G + P]
    scores = np.concatenate([np.zeros([len(gt_match)]), pred_score])  # [G + P]
    boxes = np.concatenate([gt_box, pred_box])  # [G + P, 4]
    masks = np.concatenate([gt_mask, pred_mask], axis=-1)  # [H, W, G + P]
    captions = ["" for _ in gt_match] + ["{:.2f} / {:.2f}".format(
        pred_score[i],
        (overlaps[i, int(pred_match[i])] if pred_match[i] > -1
         else overlaps[i].max() if overlaps.shape[1] else 0.0))
        for i in range(len(pred_match))]
    title = title or ("Ground Truth and Detections\n GT=green, pred=red, "
                      "captions: score/IoU")
    return display_instances(image, boxes, masks, class_ids, class_names,
                             scores, ax=ax, show_bbox=show_box,
                             show_mask=show_mask, colors=colors,
                             captions=captions, title=title)


def draw_rois(image, rois, refined_rois, mask, class_ids, class_names,
              limit=10):
    """Draw ROIs before (dashed) and after (solid) refinement, with masks.

    Args:
        image: [height, width, 3].
        rois: [N, (y1, x1, y2, x2)] proposals in pixels.
        refined_rois: [N, (y1, x1, y2, x2)] the same after applying deltas.
        mask: [N, mask_height, mask_width] mask targets of each ROI
            (float, 0..1), e.g. 28x28.
        class_ids: [N] int; 0 marks negative (background) ROIs, drawn gray.
        class_names: list of class names.
        limit: at most this many ROIs are drawn (chosen at random).
    Returns:
        the matplotlib Figure.
    """
    rois = np.asarray(rois)
    class_ids = np.asarray(class_ids)
    masked_image = np.array(image, copy=True)

    # Pick random ROIs when there are many.
    ids = np.arange(rois.shape[0], dtype=np.int32)
    ids = np.random.choice(ids, limit, replace=False) \
        if ids.shape[0] > limit else ids

    fig, ax = _new_figure((12, 12))
    if rois.shape[0] > limit:
        ax.set_title("Showing {} random ROIs out of {}".format(
            len(ids), rois.shape[0]))
    else:
        ax.set_title("{} ROIs".format(len(ids)))

    # Show area outside image boundaries.
    ax.set_ylim(image.shape[0] + 20, -20)
    ax.set_xlim(-50, image.shape[1] + 20)
    ax.axis("off")

    for roi_id in ids:
        color = np.random.rand(3)
        class_id = class_ids[roi_id]
        # ROI
        y1, x1, y2, x2 = rois[roi_id]
        ax.add_patch(patches.Rectangle(
            (x1, y1), x2 - x1, y2 - y1, linewidth=2,
            edgecolor=color if class_id else "gray",
            facecolor="none", linestyle="dashed"))
        # Refined ROI
        if class_id:
            ry1, rx1, ry2, rx2 = refined_rois[roi_id]
            ax.add_patch(patches.Rectangle(
                (rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                edgecolor=color, facecolor="none"))
            # Connect the top-left corners of the anchor and proposal.
            ax.add_line(lines.Line2D([x1, rx1], [y1, ry1], color=color))
            # Label
            ax.text(rx1, ry1 + 8, "{}".format(class_names[class_id]),
                    color="w", size=11, backgroundcolor="none")
            # Mask
            m = unmold_mask(mask[roi_id], rois[roi_id][:4].astype(np.int32),
                            image.shape)
            masked_image = apply_mask(masked_image, m, color)

    ax.imshow(masked_image)

    # Print stats
    print("Positive ROIs: ", class_ids[class_ids > 0].shape[0])
    print("Negative ROIs: ", class_ids[class_ids == 0].shape[0])
    print("Positive Ratio: {:.2f}".format(
        class_ids[class_ids > 0].shape[0] / max(class_ids.shape[0], 1)))
    return _show(fig)


def draw_box(image, box, color):
    """Draw a 2-pixel-wide box outline into the image (in place).

    Args:
        image: [height, width, 3] array; modified in place.
        box: (y1, x1, y2, x2) int pixels.
        color: value(s) written to the outline pixels, e.g. (255, 0, 0).
    Returns:
        image (the same array).
    """
    y1, x1, y2, x2 = [int(v) for v in box]
    image[y1:y1 + 2, x1:x2] = color
    image[y2:y2 + 2, x1:x2] = color
    image[y1:y2, x1:x1 + 2] = color
    image[y1:y2, x2:x2 + 2] = color
    return image


def display_top_masks(image, mask, class_ids, class_names, limit=4):
    """Display the image and the masks of its ``limit`` largest classes.

    Args:
        image: [height, width, 3].
        mask: [height, width, N] instance masks.
        class_ids: [N] int.
        class_names: list of class names.
        limit: number of classes shown (largest total mask area first).
    Returns:
        the matplotlib Figure.
    """
    mask = np.asarray(mask)
    class_ids = np.asarray(class_ids)
    to_display = [image]
    titles = ["H x W={}x{}".format(image.shape[0], image.shape[1])]
    # Pick the top classes by total mask area.
    unique_class_ids = np.unique(class_ids)
    mask_area = [np.sum(mask[:, :, np.where(class_ids == i)[0]])
                 for i in unique_class_ids]
    top_ids = [v[0] for v in sorted(zip(unique_class_ids, mask_area),
                                    key=lambda r: r[1], reverse=True)
               if v[1] > 0]
    for i in range(limit):
        class_id = top_ids[i] if i < len(top_ids) else -1
        # Instances of this class, each painted with its own index + 1.
        m = mask[:, :, np.where(class_ids == class_id)[0]]  # [H, W, k]
        m = np.sum(m * np.arange(1, m.shape[-1] + 1), -1)  # [H, W]
        to_display.append(m)
        titles.append(class_names[class_id] if class_id != -1 else "-")
    return display_images(to_display, titles=titles, cols=limit + 1,
                          cmap="Blues_r")


def plot_precision_recall(AP, precisions, recalls):
    """Draw the precision-recall curve.

    Args:
        AP: Average precision at IoU >= 0.5.
        precisions: [K] list of precision values (from ``compute_ap``).
        recalls: [K] list of recall values.
    Returns:
        the matplotlib Figure.
    """
    fig, ax = _new_figure(None)
    ax.set_title("Precision-Recall Curve. AP@50 = {:.3f}".format(AP))
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.plot(recalls, precisions)
    return _show(fig)


def plot_overlaps(gt_class_ids, pred_class_ids, pred_scores,
                  overlaps, class_names, threshold=0.5):
    """Draw a grid showing how ground truth objects are classified.

    Args:
        gt_class_ids: [G] int. Ground truth class IDs (0 = padding, dropped).
        pred_class_ids: [P] int. Predicted class IDs (0 dropped).
        pred_scores: [P] float. The probability scores of predicted classes.
        overlaps: [P, G] IoU of predicted and ground truth boxes/masks.
        class_names: list of all class names in the dataset.
        threshold: float. The IoU above which a pair counts as "match" or
            "wrong" (class differs).
    Returns:
        the matplotlib Figure.
    """
    gt_class_ids = np.asarray(gt_class_ids)
    pred_class_ids = np.asarray(pred_class_ids)
    overlaps = np.asarray(overlaps)
    gt_class_ids = gt_class_ids[gt_class_ids != 0]
    pred_class_ids = pred_class_ids[pred_class_ids != 0]

    fig, ax = _new_figure((12, 10))
    ax.imshow(overlaps, interpolation="nearest", cmap=plt.cm.Blues)
    ax.set_yticks(np.arange(len(pred_class_ids)))
    ax.set_yticklabels(["{} ({:.2f})".format(class_names[int(cid)],
                                             pred_scores[i])
                        for i, cid in enumerate(pred_class_ids)])
    ax.set_xticks(np.arange(len(gt_class_ids)))
    ax.set_xticklabels([class_names[int(cid)] for cid in gt_class_ids],
                       rotation=90)

    thresh = overlaps.max() / 2. if overlaps.size else 0.
    for i, j in itertools.product(range(overlaps.shape[0]),
                                  range(overlaps.shape[1])):
        text = ""
        if overlaps[i, j] > threshold:
            text = "match" if gt_class_ids[j] == pred_class_ids[i] \
                else "wrong"
        color = ("white" if overlaps[i, j] > thresh
                 else "black" if overlaps[i, j] > 0
                 else "grey")
        ax.text(j, i, "{:.3f}\n{}".format(overlaps[i, j], text),
                horizontalalignment="center", verticalalignment="center",
                fontsize=9, color=color)

    fig.tight_layout()
    ax.set_xlabel("Ground Truth")
    ax.set_ylabel("Predictions")
    return _show(fig)


def draw_boxes(image, boxes=None, refined_boxes=None,
               masks=None, captions=None, visibilities=None,
               title="", ax=None):
    """Draw bounding boxes and segmentation masks with different
    customizations.

    Args:
        image: [height, width, 3].
        boxes: [N, (y1, x1, y2, x2, class_id)] in image coordinates.
        refined_boxes: Like boxes, but draw with solid lines to show
            that they're the result of refining 'boxes'.
        masks: [height, width, N].
        captions: List of N titles to display on each box.
        visibilities: (optional) List of values of 0, 1, or 2. Determine how
            prominent each bounding box should be.
        title: An optional title to show over the image.
        ax: (optional) Matplotlib axis to draw on.
    Returns:
        the matplotlib Figure.
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes: give boxes or refined_boxes (or both)")
    N = boxes.shape[0] if boxes is not None else refined_boxes.shape[0]

    auto_show = False
    if not ax:
        fig, ax = _new_figure((12, 12))
        auto_show = True
    fig = ax.figure

    colors = random_colors(N)

    # Show area outside the image boundaries.
    margin = image.shape[0] // 10
    ax.set_ylim(image.shape[0] + margin, -margin)
    ax.set_xlim(-margin, image.shape[1] + margin)
    ax.axis("off")
    ax.set_title(title)

    masked_image = np.asarray(image).astype(np.uint32).copy()
    for i in range(N):
        # Box visibility
        visibility = visibilities[i] if visibilities is not None else 1
        if visibility == 0:
            color, style, alpha = "gray", "dotted", 0.5
        elif visibility == 1:
            color, style, alpha = colors[i], "dotted", 1
        else:
            color, style, alpha = colors[i], "solid", 1

        # Boxes
        if boxes is not None:
            if not np.any(boxes[i]):
                # Skip this instance. Has no bbox. Likely lost in cropping.
                continue
            y1, x1, y2, x2 = boxes[i][:4]
            ax.add_patch(patches.Rectangle(
                (x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=alpha,
                linestyle=style, edgecolor=color, facecolor="none"))

        # Refined boxes
        if refined_boxes is not None and visibility > 0:
            ry1, rx1, ry2, rx2 = refined_boxes[i][:4].astype(np.int32)
            ax.add_patch(patches.Rectangle(
                (rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                edgecolor=color, facecolor="none"))
            # Connect the top-left corners of the anchor and proposal
            if boxes is not None:
                ax.add_line(lines.Line2D([x1, rx1], [y1, ry1], color=color))

        # Captions
        if captions is not None:
            caption = captions[i]
            # If there are refined boxes, display captions on them
            if refined_boxes is not None:
                y1, x1, y2, x2 = ry1, rx1, ry2, rx2
            ax.text(x1, y1, caption, size=11, verticalalignment="top",
                    color="w", backgroundcolor="none",
                    bbox={"facecolor": color, "alpha": 0.5,
                          "pad": 2, "edgecolor": "none"})

        # Masks
        if masks is not None:
            mask = masks[:, :, i]
            masked_image = apply_mask(masked_image, mask,
                                      colors[i] if color == "gray"
                                      else color)
            _mask_outline(ax, mask, color)
    ax.imshow(masked_image.astype(np.uint8))
    if auto_show:
        _show(fig)
    return fig


def display_table(table):
    """Display values in a table.

    In Jupyter the table is shown as HTML; elsewhere it is printed as text.

    Args:
        table: list of rows, each a list of values (the first row is
            usually the header).
    Returns:
        the HTML string of the table.
    """
    html = ""
    for row in table:
        html += "<tr>"
        for col in row:
            html += "<td>{:40}</td>".format(str(col))
        html += "</tr>"
    html = _HTMLTable("<table>" + html + "</table>")
    if _in_jupyter():
        try:
            import IPython.display
            IPython.display.display(IPython.display.HTML(str(html)))
            html._mrcnn_shown = True
            return html
        except ImportError:
            pass
    print(_text_table(table))
    return html


class _HTMLTable(str):
    """The HTML of a table (a plain ``str``) that Jupyter shows once only."""
    _mrcnn_shown = False

    def _ipython_display_(self):
        if not self._mrcnn_shown:
            import IPython.display
            self._mrcnn_shown = True
            IPython.display.display(IPython.display.HTML(str(self)))


def _text_table(table):
    """Plain-text rendering of ``table`` (HTML tags removed)."""
    import re
    rows = [[re.sub(r"<[^>]+>", "", str(c)) for c in row] for row in table]
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [max(len(r[c]) for r in rows if c < len(r)) for c in range(ncols)]
    return "\n".join("  ".join(c.ljust(widths[k]) for k, c in enumerate(r))
                     .rstrip() for r in rows)


def _weighted_layers(model):
    """Layers holding weights: trainable layers of a MaskRCNN (Matterport's
    choice), or every layer with weights of a keras model."""
    if hasattr(model, "get_trainable_layers"):
        try:
            return list(model.get_trainable_layers())
        except Exception:  # noqa: BLE001 - fall back to the keras model
            pass
    keras_model = getattr(model, "keras_model", model)
    if not hasattr(keras_model, "layers"):
        raise TypeError("display_weight_stats: expected a MaskRCNN or a keras "
                        "Model, got {}".format(type(model).__name__))
    found = []

    def walk(layers):
        for layer in layers:
            if getattr(layer, "layers", None):
                walk(layer.layers)  # nested models (rpn_model)
            elif layer.weights:
                found.append(layer)
    walk(keras_model.layers)
    return found


def display_weight_stats(model):
    """Scan all weights of the model and display a table of their statistics
    (name, shape, min, max, std), flagging suspicious ones.

    Flags: "*** dead?" when all values are equal (except Conv2D biases, which
    start at zero), "*** NaN/Inf" when a value is not finite, "*** std~0"
    for a near-constant kernel, "*** Overflow?" when |value| > 1000.

    Args:
        model: a MaskRCNN (its trainable layers are listed) or a keras Model.
    Returns:
        the HTML string of the table.
    """
    layers = _weighted_layers(model)
    table = [["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD"]]
    red = "<span style='color:red'>{}</span>"
    for layer in layers:
        weight_values = layer.get_weights()  # list of numpy arrays
        weight_tensors = layer.weights
        for i, w in enumerate(weight_values):
            w = np.asarray(w, dtype=np.float64)
            weight_name = getattr(weight_tensors[i], "path", None) or \
                weight_tensors[i].name
            alert = ""
            finite = np.all(np.isfinite(w))
            is_conv_bias = layer.__class__.__name__ == "Conv2D" and i == 1
            if not finite:
                alert += red.format("*** NaN/Inf")
            elif w.size and w.min() == w.max() and not is_conv_bias:
                alert += red.format("*** dead?")
            elif w.size > 1 and w.ndim > 1 and w.std() < 1e-8:
                alert += red.format("*** std~0")
            if finite and w.size and (np.abs(w.min()) > 1000
                                      or np.abs(w.max()) > 1000):
                alert += red.format("*** Overflow?")
            if w.size:
                wmin, wmax, wstd = np.nanmin(w), np.nanmax(w), np.nanstd(w)
            else:
                wmin = wmax = wstd = float("nan")
            table.append([
                weight_name + alert,
                str(w.shape),
                "{:+9.4f}".format(wmin),
                "{:+10.4f}".format(wmax),
                "{:+9.4f}".format(wstd),
            ])
    return display_table(table)
