"""Tests for mrcnn/visualize.py: every function draws, returns what it drew,
and the pixel maths of masks is exact."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

from mrcnn import visualize  # noqa: E402  (conftest sets MPLBACKEND=Agg)
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

RED = (1.0, 0.0, 0.0)
GREEN = (0.0, 1.0, 0.0)


def _scene():
    """A 40x60 image (value 100) with two square instances."""
    image = np.full((40, 60, 3), 100, np.uint8)
    masks = np.zeros((40, 60, 2), bool)
    masks[5:15, 5:20, 0] = True
    masks[20:35, 30:50, 1] = True
    boxes = np.array([[5, 5, 15, 20], [20, 30, 35, 50]])
    class_ids = np.array([1, 2])
    return image, boxes, masks, class_ids, ["BG", "cat", "dog"]


def _png(fig, tmp_path, name="out.png", dpi=50):
    path = str(tmp_path / name)
    fig.savefig(path, dpi=dpi)
    assert os.path.getsize(path) > 0
    return mpimg.imread(path)


def test_random_colors_distinct_and_in_range():
    colors = visualize.random_colors(6)
    assert len(colors) == 6
    assert len(set(colors)) == 6
    for c in colors:
        assert all(0 <= v <= 1 for v in c)
        assert max(c) == pytest.approx(1.0)
    dim = visualize.random_colors(3, bright=False)
    assert all(max(c) == pytest.approx(0.7) for c in dim)


def test_apply_mask_changes_only_masked_pixels_golden():
    image = np.full((4, 5, 3), 100, np.uint32)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    mask[3, 0] = True
    out = visualize.apply_mask(image, mask, RED, alpha=0.5)
    assert out is image  # in place, as Matterport
    # 100 * 0.5 + 0.5 * 1.0 * 255 = 177.5 -> 177 ; 100 * 0.5 + 0 = 50
    assert out[1, 2].tolist() == [177, 50, 50]
    assert out[3, 0].tolist() == [177, 50, 50]
    untouched = np.ones((4, 5), bool)
    untouched[1, 2] = untouched[3, 0] = False
    assert np.all(out[untouched] == 100)


def test_apply_mask_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match="mask shape"):
        visualize.apply_mask(np.zeros((4, 4, 3)), np.zeros((3, 4)), RED)


def test_display_instances_returns_figure_and_masks_exact(tmp_path):
    image, boxes, masks, class_ids, names = _scene()
    fig = visualize.display_instances(
        image, boxes, masks, class_ids, names, scores=np.array([0.9, 0.8]),
        figsize=(4, 3), colors=[RED, GREEN], title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (40, 60, 3)
    # Pixels under mask 0 blended with red, under mask 1 with green,
    # all the others untouched.
    assert np.all(shown[masks[:, :, 0]] == [177, 50, 50])
    assert np.all(shown[masks[:, :, 1]] == [50, 177, 50])
    outside = ~masks.any(-1)
    assert np.all(shown[outside] == 100)
    # The image passed in is not modified.
    assert np.all(image == 100)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["cat 0.900", "dog 0.800"]
    png = _png(fig, tmp_path, dpi=50)
    assert png.shape[:2] == (150, 200)  # figsize * dpi


def test_display_instances_options_and_ax(tmp_path):
    image, boxes, masks, class_ids, names = _scene()
    fig0, ax = plt.subplots(1, figsize=(3, 2))
    fig = visualize.display_instances(
        image, boxes, masks, class_ids, names, ax=ax, show_mask=False,
        show_bbox=False, captions=["a", "b"])
    assert fig is fig0
    shown = np.asarray(ax.images[0].get_array())
    assert np.all(shown == 100)  # show_mask=False leaves pixels alone
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    assert not any(type(p).__name__ == "Rectangle" for p in ax.patches)
    assert _png(fig, tmp_path).shape[:2] == (100, 150)
    plt.close(fig0)


def test_display_instances_no_instances_and_mismatch(capsys):
    image = np.zeros((10, 10, 3), np.uint8)
    fig = visualize.display_instances(
        image, np.zeros((0, 4)), np.zeros((10, 10, 0), bool),
        np.zeros((0,), int), ["BG"], figsize=(2, 2))
    assert isinstance(fig, Figure)
    assert "No instances to display" in capsys.readouterr().out
    with pytest.raises(ValueError, match="2 boxes, 1 masks, 2 class ids"):
        visualize.display_instances(
            image, np.ones((2, 4)), np.zeros((10, 10, 1), bool),
            np.array([1, 1]), ["BG", "a"])


def test_display_images_grid(tmp_path):
    images = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
    fig = visualize.display_images(images, titles=["a", "b", "c"], cols=2)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert [int(np.asarray(ax.images[0].get_array()).max())
            for ax in fig.axes] == [0, 128, 255]
    assert _png(fig, tmp_path, dpi=10).shape[:2] == (140, 140)


def test_draw_box_exact_pixels():
    image = np.zeros((10, 10, 3), np.uint8)
    out = visualize.draw_box(image, (2, 3, 7, 8), (255, 0, 0))
    assert out is image
    expected = np.zeros((10, 10), bool)
    expected[2:4, 3:8] = True   # top edge, 2 px
    expected[7:9, 3:8] = True   # bottom edge
    expected[2:7, 3:5] = True   # left edge
    expected[2:7, 8:10] = True  # right edge
    assert np.array_equal(image[..., 0] == 255, expected)
    assert np.all(image[..., 1:] == 0)


def test_display_top_masks_orders_by_area():
    image, _, masks, class_ids, names = _scene()
    fig = visualize.display_top_masks(image, masks, class_ids, names, limit=2)
    titles = [ax.get_title() for ax in fig.axes]
    # dog (15x20) is larger than cat (10x15)
    assert titles == ["H x W=40x60", "dog", "cat"]
    dog = np.asarray(fig.axes[1].images[0].get_array())
    assert np.array_equal(dog > 0, masks[:, :, 1])


def test_plot_precision_recall_line_data(tmp_path):
    precisions = np.array([1.0, 1.0, 0.5, 0.5])
    recalls = np.array([0.0, 0.5, 0.5, 1.0])
    fig = visualize.plot_precision_recall(0.75, precisions, recalls)
    ax = fig.axes[0]
    assert ax.get_title() == "Precision-Recall Curve. AP@50 = 0.750"
    x, y = ax.lines[0].get_data()
    assert np.array_equal(x, recalls) and np.array_equal(y, precisions)
    _png(fig, tmp_path)


def test_plot_overlaps_match_and_wrong(tmp_path):
    overlaps = np.array([[0.9, 0.0], [0.1, 0.7]])
    fig = visualize.plot_overlaps(np.array([1, 2, 0]), np.array([1, 1]),
                                  np.array([0.95, 0.6]), overlaps,
                                  ["BG", "cat", "dog"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.900\nmatch", "0.000\n", "0.100\n", "0.700\nwrong"]
    _png(fig, tmp_path)


def test_draw_boxes_with_refined_masks_captions(tmp_path):
    image, boxes, masks, _, _ = _scene()
    refined = boxes.astype(np.float32) + 1
    fig = visualize.draw_boxes(image, boxes=boxes, refined_boxes=refined,
                               masks=masks, captions=["x", "y"],
                               visibilities=[2, 0], title="boxes")
    ax = fig.axes[0]
    assert ax.get_title() == "boxes"
    assert [t.get_text() for t in ax.texts] == ["x", "y"]
    shown = np.asarray(ax.images[0].get_array())
    assert np.all(shown[~masks.any(-1)] == 100)
    assert np.all(shown[masks[:, :, 0]] != 100)
    _png(fig, tmp_path)
    with pytest.raises(ValueError, match="boxes or refined_boxes"):
        visualize.draw_boxes(image)


def test_display_table_text_and_html(capsys):
    html = visualize.display_table([["NAME", "VALUE"], ["a", 1]])
    assert html.startswith("<table><tr><td>NAME")
    assert html.count("<tr>") == 2
    out = capsys.readouterr().out
    assert "NAME" in out and "VALUE" in out and "a" in out


def test_display_weight_stats_flags_dead_and_nan(capsys):
    import keras
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="good")(inputs)
    x = keras.layers.Dense(2, name="dead", kernel_initializer="zeros")(x)
    x = keras.layers.Dense(2, name="broken")(x)
    model = keras.Model(inputs, x)
    kernel, bias = model.get_layer("broken").get_weights()
    kernel[0, 0] = np.nan
    model.get_layer("broken").set_weights([kernel, bias])
    html = visualize.display_weight_stats(model)
    rows = html.split("<tr>")[1:]
    assert len(rows) == 1 + 6  # header + kernel/bias of three layers
    by_name = {r.split("</td>")[0]: r for r in rows}
    assert any("good" in k and "kernel" in k and "***" not in k
               for k in by_name)
    assert any("dead" in k and "kernel" in k and "dead?" in k
               for k in by_name)
    assert any("broken" in k and "kernel" in k and "NaN" in k
               for k in by_name)
    assert "WEIGHT NAME" in capsys.readouterr().out


def test_display_differences_colors_and_captions():
    image, boxes, masks, class_ids, names = _scene()
    fig = visualize.display_differences(
        image, boxes, class_ids, masks,
        boxes[:1], class_ids[:1], np.array([0.9]), masks[:, :, :1], names)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["", "", "0.90 / 1.00"]


def test_draw_rois_unmolds_masks(capsys):
    image = np.full((40, 60, 3), 100, np.uint8)
    rois = np.array([[5, 5, 15, 20], [20, 30, 35, 50]])
    mask = np.ones((2, 28, 28), np.float32)
    fig = visualize.draw_rois(image, rois, rois, mask, np.array([1, 0]),
                              ["BG", "cat"])
    shown = np.asarray(fig.axes[0].images[0].get_array())
    changed = np.any(shown != 100, axis=-1)
    expected = np.zeros((40, 60), bool)
    expected[5:15, 5:20] = True  # only the positive ROI gets its mask
    assert np.array_equal(changed, expected)
    out = capsys.readouterr().out
    assert "Positive ROIs:  1" in out and "Negative ROIs:  0" not in out


def test_headless_import_chooses_agg_and_never_warns(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = REPO_ROOT
    code = (
        "import numpy as np\n"
        "from mrcnn import visualize\n"
        "import matplotlib, matplotlib.pyplot as plt\n"
        "assert matplotlib.get_backend().lower() == 'agg', "
        "matplotlib.get_backend()\n"
        "m = np.zeros((20, 20, 1), bool); m[2:8, 2:8] = True\n"
        "for i in range(25):\n"
        "    fig = visualize.display_instances(np.zeros((20, 20, 3)),"
        " np.array([[2, 2, 8, 8]]), m, np.array([1]), ['BG', 'a'],"
        " figsize=(1, 1))\n"
        "fig.savefig(r'{}')\n"
        "assert len(plt.get_fignums()) == 0\n").format(tmp_path / "h.png")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code],
                          env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert os.path.getsize(str(tmp_path / "h.png")) > 0
