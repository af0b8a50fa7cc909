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
(mrcnn/_numpy_compat.py).
"""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    with open(os.path.join(HERE, "mrcnn", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"\'')
    raise RuntimeError("no __version__ in mrcnn/__init__.py")


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
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
