"""mrcnn.core.cpu_settings: oneDNN asked for by the training commands, only
where nobody chose."""
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from mrcnn.core import cpu_settings

X86 = cpu_settings.platform.machine().lower() in ("x86_64", "amd64")


def test_sets_onednn_only_where_unset_and_before_tensorflow():
    env = {}
    assert cpu_settings.apply_defaults(env, modules={}, machine="x86_64")
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    # The user's choice stays, whatever it is.
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert not cpu_settings.apply_defaults(env, modules={}, machine="x86_64")
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    # TensorFlow loaded first has read the variable already: nothing is set.
    env = {}
    assert not cpu_settings.apply_defaults(env, modules={"tensorflow": sys},
                                           machine="x86_64")
    assert env == {}
    # Other architectures keep TensorFlow's own default.
    env = {}
    assert not cpu_settings.apply_defaults(env, modules={}, machine="aarch64")
    assert env == {}


def test_only_training_commands_ask_for_onednn():
    for command in ("train", "demo"):
        env = {}
        assert cpu_settings.apply_for_command(command, env, {}, "x86_64")
        assert env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    for command in ("detect", "splash", "serve", "export", "evaluate"):
        env = {}
        assert not cpu_settings.apply_for_command(command, env, {}, "x86_64")
        assert env == {}


def test_cli_main_applies_it_before_the_command_runs(monkeypatch):
    """main() sets the variable before the handler (which loads TF) runs."""
    from mrcnn import cli
    seen = {}
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    # TensorFlow is loaded in this test process: let the rule see a fresh one.
    real = cpu_settings.apply_defaults
    monkeypatch.setattr(cpu_settings, "apply_defaults",
                        lambda *a: real(None, {}, "x86_64"))
    for command, argv in (("demo", ["demo", "--quick"]),
                          ("convert", ["convert", "a", "b", "--to", "coco"])):
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
        # The command's handler only records what it would load TF with.
        monkeypatch.setitem(cli.COMMANDS, command, lambda args: seen.setdefault(
            args.command, os.environ.get("TF_ENABLE_ONEDNN_OPTS")) and 0)
        monkeypatch.setattr(cli.preflight, "check_args", lambda args: None)
        assert cli.main(argv) == 0
    assert seen == {"demo": "1", "convert": None}


def _onednn_in_child(code, **env_overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    env.update(env_overrides)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-1]


@pytest.mark.skipif(not X86, reason="oneDNN default is set on x86-64 only")
def test_the_setting_turns_tensorflows_onednn_on():
    ask = ("from mrcnn.core import cpu_settings\n"
           "cpu_settings.apply_for_command('train')\n"
           "from tensorflow.python.util import _pywrap_util_port as p\n"
           "print(p.IsMklEnabled())\n")
    # Whatever this CPU's TensorFlow default, a training command gets oneDNN.
    assert _onednn_in_child(ask) == "True"
    # A user's 0 is honoured.
    assert _onednn_in_child(ask, TF_ENABLE_ONEDNN_OPTS="0") == "False"
