"""TensorFlow's CPU kernels for the training commands, set before it loads.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported. Left
unset, it turns its oneDNN kernels on only on x86 CPUs with AVX-512-VNNI,
AVX-512-BF16, AVX-VNNI or AMX, and runs its Eigen kernels elsewhere
(AVX2-only CPUs: AMD Zen 2/3, older Intel). Measured on this model
(``bench/bench_cpu_paths.py``; docs/PERFORMANCE.md, "CPU kernels"), oneDNN
restricted to its AVX2 kernels (``ONEDNN_MAX_CPU_ISA=AVX2``, what such a CPU
runs) trains faster than Eigen (1.32 against 1.77 CPU-s per demo step) but
runs R101 ``detect()`` slower (16.4 against 9.8 CPU-s). So ``mrcnn train``
and ``mrcnn demo`` ask for oneDNN before TensorFlow loads; inference
commands and ``import mrcnn`` keep TensorFlow's own choice. On CPUs where
TensorFlow turns oneDNN on anyway nothing changes.

Not applied when the user set ``TF_ENABLE_ONEDNN_OPTS`` (any value: ``0``
keeps the Eigen kernels) or when TensorFlow is already loaded (it has read
the variable; a notebook sets it before the first import instead).
"""
import os
import platform
import sys

ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"


#: The CLI commands that train, and so ask for oneDNN.
TRAINING_COMMANDS = ("train", "demo")


def apply_for_command(command, environ=None, modules=None, machine=None):
    """Ask for TensorFlow's oneDNN kernels for a training command where
    nobody chose.

    Args:
        command: the CLI command (``"train"``, ``"detect"``, ...); only
            TRAINING_COMMANDS are changed.
        environ, modules, machine: as for apply_defaults.

    Returns:
        True if ``TF_ENABLE_ONEDNN_OPTS`` was set to ``"1"`` by this call.
    """
    if command not in TRAINING_COMMANDS:
        return False
    return apply_defaults(environ, modules, machine)


def apply_defaults(environ=None, modules=None, machine=None):
    """Ask for TensorFlow's oneDNN kernels where nobody chose.

    Args:
        environ: the environment to update (``os.environ``).
        modules: the loaded modules (``sys.modules``); nothing is set once
            ``tensorflow`` is among them.
        machine: ``platform.machine()``; only x86-64 is changed.

    Returns:
        True if ``TF_ENABLE_ONEDNN_OPTS`` was set to ``"1"`` by this call.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    machine = (platform.machine() if machine is None else machine).lower()
    if ONEDNN_VAR in environ or "tensorflow" in modules:
        return False
    if machine not in ("x86_64", "amd64"):
        return False
    environ[ONEDNN_VAR] = "1"
    return True
