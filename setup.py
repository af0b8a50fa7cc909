"""Install mrcnn: Mask R-CNN for TensorFlow 2.16+ / Keras 3 / numpy 2.

TensorFlow is an extra so that the CPU wheel and the GPU wheel do not end up
installed side by side:  pip install -e ".[cpu]"  or  pip install -e ".[gpu]".

imgaug (Matterport's augmentation library) is optional:

    pip install -e ".[cpu,imgaug]"
    pip install --no-deps imgaug==0.4.0

The extra installs imgaug's dependencies except OpenCV; imgaug itself goes in
with --no-deps because its 0.4.0 wheel requires opencv-python, which would
land next to our opencv-python-headless and both would own the cv2 package.
imgaug uses whichever cv2 is there. `import mrcnn` makes it import on numpy 2
(mrcnn/core/numpy_compat.py), and so does `import imgaug` before mrcnn (the
`mrcnn-imgaug-numpy2.pth` start-up hook below).
"""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:                                   # setuptools >= 64 (PEP 660 installs)
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:                    # older: `setup.py develop`, no hook
    editable_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    with open(os.path.join(HERE, "mrcnn", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"\'')
    raise RuntimeError("no __version__ in mrcnn/__init__.py")


#: Matterport's samples/coco/coco.py and samples/nucleus/nucleus.py (and
#: many user scripts) `import imgaug` *before* mrcnn, which fails on numpy 2
#: (np.sctypes is gone) before our package runs. This start-up hook, a
#: ``.pth`` file in site-packages, puts a finder on sys.meta_path that finds
#: nothing and costs nothing until the first `import imgaug`; then it
#: restores the numpy names imgaug needs (mrcnn.core.numpy_compat, which changes
#: only names numpy lacks) and goes inert (`done`; it stays on
#: sys.meta_path: removing it while the import system iterates the list
#: would skip the next finder). numpy is not imported at interpreter start.
IMGAUG_HOOK = """\
class _MrcnnImgaugNumpy2:
    done = False
    def find_spec(self, name, path=None, target=None):
        if name == "imgaug" and not self.done:
            self.done = True
            try:
                from mrcnn.core import numpy_compat as _numpy_compat
                _numpy_compat.restore_removed_names()
            except Exception:
                pass
        return None
sys.meta_path.insert(0, _MrcnnImgaugNumpy2())
"""
IMGAUG_PTH = "mrcnn-imgaug-numpy2.pth"
#: One line: site.py executes .pth lines that start with "import".
IMGAUG_PTH_LINE = "import sys; exec({!r})\n".format(IMGAUG_HOOK)


def _write_pth(folder):
    with open(os.path.join(folder, IMGAUG_PTH), "w") as f:
        f.write(IMGAUG_PTH_LINE)


class BuildPyWithPth(build_py):
    """Regular installs and wheels: the hook at the top of build_lib, which
    is site-packages once installed."""

    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            _write_pth(self.build_lib)

    def get_outputs(self, include_bytecode=1):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [os.path.join(self.build_lib, IMGAUG_PTH)]


CMDCLASS = {"build_py": BuildPyWithPth}

# _run_build_commands is setuptools-internal (64 through 84 at least): where
# it is missing, editable installs go without the hook rather than fail.
if hasattr(editable_wheel, "_run_build_commands"):
    class EditableWheelWithPth(editable_wheel):
        """`pip install -e .` (PEP 660): the hook goes into the editable
        wheel's root next to setuptools' own __editable__ .pth."""

        def _run_build_commands(self, dist_name, unpacked_wheel, build_lib,
                                tmp_dir, *args, **kwargs):
            out = super()._run_build_commands(dist_name, unpacked_wheel,
                                              build_lib, tmp_dir, *args,
                                              **kwargs)
            _write_pth(os.fspath(unpacked_wheel))
            return out

    CMDCLASS["editable_wheel"] = EditableWheelWithPth


def _readme():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        return f.read()


setup(
    name="mrcnn",
    version=_version(),
    description="Mask R-CNN (Matterport API) for TensorFlow 2.16+, Keras 3 "
                "and numpy 2",
    long_description=_readme(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["mrcnn", "mrcnn.*"]),
    install_requires=[
        "numpy>=2.0",
        "keras>=3.0",
        "h5py>=3.0",
        "scikit-image>=0.22",
        "scipy>=1.11",
        "matplotlib>=3.8",
        "opencv-python-headless>=4.9",
        "pycocotools>=2.0.7",
        "albumentations>=2.0",
        "pillow>=10.0",
        "tqdm>=4.66",
        "tensorboard>=2.16",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.16"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        "test": ["pytest>=8", "nbclient>=0.10", "nbformat>=5.9",
                 "ipykernel>=6.29", "selenium>=4.20"],
        # imgaug 0.4.0's requirements less opencv-python (numpy, scipy,
        # Pillow, matplotlib, scikit-image are core); then
        # pip install --no-deps imgaug==0.4.0 (see the docstring).
        "imgaug": ["imageio>=2.9", "shapely>=2.0", "six>=1.15"],
        # mrcnn serve (HTTP API + page); selenium for its browser test,
        # which also needs Debian's chromium + chromium-driver.
        "serve": ["fastapi>=0.110", "uvicorn>=0.29",
                  "python-multipart>=0.0.9"],
        # mrcnn.app.batch: `mrcnn detect --engine ray`, Parquet shards.
        "ray": ["ray[data]>=2.40", "pyarrow>=14"],
        # mrcnn.export.openvino: `mrcnn export --format openvino`; NNCF
        # for int8 post-training quantisation (--precision int8).
        "openvino": ["openvino>=2024.0", "nncf>=2.10"],
    },
    entry_points={"console_scripts": ["mrcnn=mrcnn.cli:main"]},
    cmdclass=CMDCLASS,
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
