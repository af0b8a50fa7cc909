"""The package's structure cannot silently decay: every module imports, the
module graph has no cycle, each floor imports only the floors below it, and
package modules are imported at module level (the few function-local
imports left are listed, each with its reason in the code)."""
import ast
import importlib
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "mrcnn")

# The floors, lowest first (docs/ARCHITECTURE.md). A module may import its
# own floor and the floors below it.
FLOORS = [
    ("core", ["mrcnn", "mrcnn.errors", "mrcnn.core.*"]),
    ("nn / data", ["mrcnn.nn.*", "mrcnn.data.*", "mrcnn.config"]),
    ("model", ["mrcnn.modeling", "mrcnn.modeling.*"]),
    # Exporters read the model (its modules, its host pipeline); the model
    # reaches them only in MaskRCNN.export (LOCAL_IMPORTS_ALLOWED).
    ("export", ["mrcnn.export", "mrcnn.export.*"]),
    ("application", ["mrcnn.app", "mrcnn.app.*", "mrcnn.serve.*"]),
    ("facades", ["mrcnn.model", "mrcnn.utils", "mrcnn.visualize", "mrcnn.cli",
                 "mrcnn.cli_args", "mrcnn.__main__"]),
]
# Function-local imports of package modules that are allowed, and why.
LOCAL_IMPORTS_ALLOWED = {
    ("mrcnn.cli", "mrcnn.app.jobs"): "TensorFlow only when a command runs",
    ("mrcnn.cli", "mrcnn.serve.app"): "FastAPI (an extra) only for serve",
    ("mrcnn.utils", "mrcnn.modeling.weights.download"): "mrcnn.utils stays numpy-only",
    ("mrcnn.cli", "mrcnn.app.batch"): "the [ray] extra only for --engine ray",
    ("mrcnn.app.batch", "mrcnn.app.batch_ray"): "ray only for engine='ray'",
    ("mrcnn.export", "mrcnn.export.openvino"): "the [openvino] extra only "
                                               "for format='openvino'",
    ("mrcnn.modeling.mask_rcnn", "mrcnn.export"): "MaskRCNN.export (documented "
                                                  "in docs/DEPLOY.md) calls the "
                                                  "floor above on use",
}


def _modules():
    mods = {}
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                name = os.path.relpath(path[:-3], REPO_ROOT).replace(os.sep, ".")
                mods[name[:-len(".__init__")] if name.endswith(".__init__")
                     else name] = path
    return mods


def _imports(mods):
    """{module: {(target, is_local)}} for imports of package modules."""
    edges = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(open(path).read())
        local = {id(n) for f in ast.walk(tree)
                 if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f)}
        package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] +
                                    ([node.module] if node.module else []))
                targets = [base + "." + a.name if base + "." + a.name in mods
                           else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                while t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != name:
                    edges[name].add((t, id(node) in local))
    return edges


def _floor(module):
    for level, (_, patterns) in enumerate(FLOORS):
        for p in patterns:
            if module == p or (p.endswith(".*") and
                               (module + ".").startswith(p[:-1])):
                return level
    raise AssertionError("module {} is on no floor of FLOORS (add it, and to "
                         "docs/ARCHITECTURE.md)".format(module))


def test_every_module_imports():
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]:\n"
            "    importlib.import_module(m)\n")
    mods = sorted(m for m in _modules() if m != "mrcnn.__main__")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code] + mods, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_module_graph_has_no_cycle():
    edges = {m: {t for t, _ in e} for m, e in _imports(_modules()).items()}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_floors_import_only_downwards():
    wrong = []
    for m, targets in _imports(_modules()).items():
        for t, is_local in targets:
            if t == "mrcnn":
                continue  # the package itself (its __init__ is on the floor)
            if is_local and (m, t) in LOCAL_IMPORTS_ALLOWED:
                continue  # listed with its reason (MaskRCNN.export)
            if _floor(t) > _floor(m):
                wrong.append("{} ({}) imports {} ({})".format(
                    m, FLOORS[_floor(m)][0], t, FLOORS[_floor(t)][0]))
    assert not wrong, "\n".join(wrong)


def test_graph_and_core_know_no_files_and_no_config():
    for m, targets in _imports(_modules()).items():
        names = {t for t, _ in targets}
        if m.startswith("mrcnn.nn."):
            assert not names & {"mrcnn.config", "mrcnn.modeling.weights",
                                "mrcnn.modeling.checkpoints"}, m
        if m.startswith("mrcnn.core."):
            assert all(t.startswith("mrcnn.core.") for t in names), m


def test_package_modules_are_imported_at_module_level():
    local = sorted((m, t) for m, e in _imports(_modules()).items()
                   for t, is_local in e if is_local)
    assert set(local) <= set(LOCAL_IMPORTS_ALLOWED), local


def test_core_and_utils_do_not_load_tensorflow():
    code = ("import sys, mrcnn.utils, mrcnn.config\n"
            "import mrcnn.core.metrics, mrcnn.core.outputs, mrcnn.core.release\n"
            "import mrcnn.core.effects, mrcnn.cli_args\n"
            "print('tensorflow' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr[-2000:]


def test_the_checker_sees_a_planted_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "mrcnn"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from mrcnn import b\n")
    (pkg / "b.py").write_text("import mrcnn.a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", str(pkg))
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_module_graph_has_no_cycle()


# ---------------------------------------------------------------------------
# Facts declared once (docs/ARCHITECTURE.md, "Facts declared once"). Each
# rule scans the code of mrcnn/**/*.py (string constants, not docstrings
# or comments) for a second copy of a guarded literal:
#   - an input name ("input_image", ...) anywhere but core/outputs.py (the
#     graph names its Input layers with the constants);
#   - a tuple / list / set made of two or more names of one family (effects,
#     model inputs, model outputs) but in the family's declaring module: a
#     list is a declaration; reading one name (``effect == "cutout"``,
#     ``out["detections"]``, a Keras layer's ``name=``) is a use, and a list
#     with other names too (release.HEAD_LAYERS: weight layers) is another
#     fact;
#   - the image-meta layout written with numbers (``12 + n``, ``meta[7:11]``)
#     but in core/image_meta.py;
#   - the generic class-name pattern "class {}", the PIL decoding rules
#     ("transparency", "I;16") and the color grammar's "#rrggbb" pattern
#     outside their one function (core/release.py, core/images.py);
#   - the box-normalisation shift [0, 0, 1, 1] added to or subtracted from
#     boxes (or named ``shift``) but in core/boxes.py (numpy) and
#     nn/box_ops.py (TF); [0, 0, 1, 1] as a window or a unit box is
#     another fact.
# ---------------------------------------------------------------------------

def _families():
    from mrcnn.core import effects, outputs
    inputs = set(outputs.TRAINING_INPUTS + outputs.INFERENCE_INPUTS +
                 (outputs.INPUT_ROI,))
    return {
        "effect": (set(effects.EFFECTS), "mrcnn.core.effects"),
        "model input": (inputs, "mrcnn.core.outputs"),
        "model output": (set(outputs.INFERENCE_OUTPUTS +
                             outputs.TRAINING_OUTPUTS), "mrcnn.core.outputs"),
    }


#: String constants that may appear in one module only.
SINGLE_HOME_STRINGS = {
    "class {}": "mrcnn.core.release",
    "transparency": "mrcnn.core.images",
    "I;16": "mrcnn.core.images",
    r"#[0-9a-fA-F]{6}": "mrcnn.core.images",
}
#: Image-meta offsets as slice bounds (lower, upper) of core/image_meta.py.
META_SLICES = {(1, 4), (4, 7), (7, 11), (12, None)}
#: The two homes of the box convention's shift (numpy, TF).
BOX_SHIFT_HOMES = {"mrcnn.core.boxes", "mrcnn.nn.box_ops"}
#: Known copies another branch removes, with the reason (empty when none).


def _is_box_shift(node):
    """A [0, 0, 1, 1] literal, bare or as the first argument of a call
    (np.array(...), tf.constant(...))."""
    if isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    if not isinstance(node, (ast.Tuple, ast.List)) or len(node.elts) != 4:
        return False
    values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
    return len(values) == 4 and all(isinstance(v, (int, float)) and
                                    not isinstance(v, bool) for v in values) \
        and [float(v) for v in values] == [0.0, 0.0, 1.0, 1.0]


def _box_shifts(tree):
    """Line numbers of [0, 0, 1, 1] used as a box shift: an operand of + or
    -, or the value of a name containing "shift"."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            lines += [node.lineno for side in (node.left, node.right)
                      if _is_box_shift(side)]
        elif isinstance(node, ast.Assign) and _is_box_shift(node.value) and \
                any(isinstance(t, ast.Name) and "shift" in t.id.lower()
                    for t in node.targets):
            lines.append(node.lineno)
    return lines


def _docstrings(tree):
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and \
                    isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _second_copies(mods):
    """["module:line: what"] for every guarded literal outside its home."""
    families = _families()
    inputs = families["model input"][0]
    found = []
    for name, path in sorted(mods.items()):
        tree = ast.parse(open(path).read())
        docs = _docstrings(tree)
        where = "{}:{}: ".format(os.path.relpath(path, REPO_ROOT), "{}")
        if name not in BOX_SHIFT_HOMES:
            found += [where.format(line) + "box shift [0, 0, 1, 1]: normalize "
                      "with core/boxes.py or nn/box_ops.py"
                      for line in _box_shifts(tree)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docs:
                if node.value in inputs and name != "mrcnn.core.outputs":
                    found.append(where.format(node.lineno) +
                                 "input name {!r}".format(node.value))
                home = SINGLE_HOME_STRINGS.get(node.value)
                if home and name != home:
                    found.append(where.format(node.lineno) + "{!r} belongs "
                                 "to {}".format(node.value, home))
            elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = [e.value for e in node.elts
                          if isinstance(e, ast.Constant)]
                for family, (names, home) in families.items():
                    hits = [v for v in values if v in names]
                    if len(hits) >= 2 and len(hits) == len(node.elts) and \
                            name != home:
                        found.append(where.format(node.lineno) + "a list of "
                                     "{} names {} (declared in {})".format(
                                         family, hits, home))
            elif name != "mrcnn.core.image_meta":
                if isinstance(node, ast.BinOp) and \
                        isinstance(node.op, ast.Add) and \
                        any(isinstance(s, ast.Constant) and s.value == 12
                            for s in (node.left, node.right)):
                    found.append(where.format(node.lineno) + "12 + ...: the "
                                 "image meta size is image_meta_size()")
                if isinstance(node, ast.Slice):
                    bounds = tuple(b.value if isinstance(b, ast.Constant)
                                   else (None if b is None else "expr")
                                   for b in (node.lower, node.upper))
                    if bounds in META_SLICES:
                        found.append(where.format(node.lineno) + "slice {}:"
                                     "{}: an image-meta field; use core/"
                                     "image_meta.py's META_*".format(*bounds))
    return found


def test_guarded_facts_are_declared_once():
    copies = _second_copies(_modules())
    assert not copies, "second copies of facts declared once:\n" + \
        "\n".join(copies)


def test_the_once_only_checker_sees_planted_copies(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""A docstring may say input_image, 12 + NUM_CLASSES, class {}."""\n'
        'CHOICES = ("splash", "blur")\n'
        'name = "input_anchors"\n'
        'size = 12 + num_classes\n'
        'window = meta[:, 7:11]\n'
        'label = "class {}".format(1)\n'
        'OUT = ["detections", "mrcnn_mask"]\n'
        'LAYERS = ["mrcnn_mask", "mrcnn_bbox_fc"]\n'
        'ok = effect == "cutout" and out["detections"]\n'
        'norm = (boxes - np.array([0, 0, 1, 1])) / scale\n'
        'shift = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float64)\n'
        'clipped = clip_boxes_graph(refined, tf.constant([0., 0., 1., 1.]))\n'
        'unit = tf.constant([0.0, 0.0, 1.0, 1.0])\n')
    copies = _second_copies({"mrcnn.planted": str(planted)})
    assert sorted(int(c.split(": ", 1)[0].rsplit(":", 1)[1]) for c in copies) == \
        [2, 3, 4, 5, 6, 7, 10, 11], copies


def test_declared_name_families_are_consistent():
    from mrcnn.core import effects, outputs
    assert set(effects.BACKGROUND_EFFECTS) < set(effects.EFFECTS)
    assert set(outputs.DETECT_OUTPUTS) <= set(outputs.INFERENCE_OUTPUTS)
    assert outputs.TRAINING_OUTPUTS[:len(outputs.RPN_OUTPUTS)] == \
        outputs.RPN_OUTPUTS
    assert outputs.TRAINING_INPUTS[:2] == outputs.INFERENCE_INPUTS[:2]


#: MaskRCNN's state (docs/ARCHITECTURE.md, "State"): written in
#: mrcnn/modeling/mask_rcnn.py only (checkpoints and training go through
#: MaskRCNN.record_run_state).
MODEL_STATE = {"epoch", "log_dir", "checkpoint_path", "keras_model", "trainer",
               "data_wait", "model_dir", "last_load_report"}


def _state_writes(tree):
    """Line numbers of ``x.<state> = ...`` with x not ``self``."""
    lines = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and t.attr in MODEL_STATE and \
                    not (isinstance(t.value, ast.Name) and t.value.id == "self"):
                lines.append(t.lineno)
    return lines


def test_model_state_is_written_by_the_model_only():
    writes = ["{}:{}".format(os.path.relpath(path, REPO_ROOT), line)
              for name, path in sorted(_modules().items())
              if name != "mrcnn.modeling.mask_rcnn"
              for line in _state_writes(ast.parse(open(path).read()))]
    assert not writes, "model state written outside MaskRCNN:\n" + "\n".join(writes)


def test_the_state_checker_sees_a_planted_write():
    tree = ast.parse("model.epoch = 3\nself.epoch = 1\n"
                     "self.maskrcnn.log_dir += 'x'\nepoch = 2\n")
    assert _state_writes(tree) == [1, 3]
