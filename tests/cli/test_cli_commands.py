"""`symformer --version`, `models`, `check`, the table printer and user-error exit codes."""

import pytest

from symformer import __version__
from symformer.cli._table import format_table
from symformer.cli.main import main
from symformer.models import available


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"symformer {__version__}"


def test_table_pads_columns():
    text = format_table(("a", "bb"), [("xxx", 1), ("y", 22)])
    lines = text.splitlines()
    assert lines == ["a    bb", "---  --", "xxx  1", "y    22"]
    with pytest.raises(ValueError, match="row 0"):
        format_table(("a", "b"), [("only one",)])


def test_models_lists_every_registered_entry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["name", "kind", "group"]
    for name in available():
        assert name in out


def test_check_a_registered_layer(capsys):
    layers = available("layer")
    if not layers:
        pytest.skip("no registered layer yet")
    assert main(["check", layers[0], "--dtype", "float64", "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert layers[0] in out and "float64" in out and "FAIL" not in out


def test_check_reports_an_entry_alone_as_within_a_longer_list(capsys):
    # every entry draws its own inputs from --seed: its rows do not depend on what ran before
    layers = available("layer")[:3]
    argv = ["check", "--dtype", "float32", "--samples", "1"]
    assert main([*argv, layers[-1]]) == 0
    alone = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(layers[-1] + " ")]
    assert main([*argv, *layers]) == 0
    within = [ln.split() for ln in capsys.readouterr().out.splitlines()
              if ln.startswith(layers[-1] + " ")]
    assert alone and [ln.split() for ln in alone] == within


def test_check_fails_with_exit_1_on_a_broken_model(capsys):
    from torch import nn

    from symformer.groups import E3
    from symformer.models import register

    @register("_broken_for_cli_test", group=E3, in_types={"x": "vector"}, out_types="vector",
              example_inputs=lambda m, g, dt: {"x": __import__("torch").randn(3, 3, generator=g,
                                                                                 dtype=dt)},
              kind="layer", tags=("test",))
    class Broken(nn.Module):
        """Adds a constant: not equivariant."""

        def forward(self, x):
            return x + 1.0

    try:
        assert main(["check", "_broken_for_cli_test", "--dtype", "float32", "--samples", "1"]) == 1
        assert "FAIL" in capsys.readouterr().out
    finally:  # generic tests over every registered entry must not meet it
        from symformer.models import registry

        registry.unregister("_broken_for_cli_test")


@pytest.mark.parametrize("argv", [["check", "no_such_model"],
                                  ["train", "nbody", "--model", "no_such_model"],
                                  ["eval", "/nonexistent/no_such_model.pt"]])
def test_user_errors_exit_2_naming_the_culprit(argv, capsys):
    assert main(argv) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_unknown_override_key_is_named(capsys):
    layers = available()
    if not layers:
        pytest.skip("nothing registered")
    # The key check happens before any data is loaded or trained.
    assert main(["train", "nbody", "--model", layers[0], "--learning-rat", "1"]) == 2
    assert "learning_rat" in capsys.readouterr().err
