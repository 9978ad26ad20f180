"""The declared options of the evaluation modes: their checks, the help of the flag they
share, and the defaults a mode reads through them."""
import pytest

from ebm_jax.evaluation import common, options, runner
from ebm_jax.evaluation.modes import MODES
from ebm_jax.runtime import validation

ROWS = options.Option("rows", "integer", "rows drawn", default=3, positive=True)


def mode(name, *declared):
    return common.Mode(name, lambda *a: {}, "a test mode", options=declared)


def test_a_declared_check_refuses_with_the_message_of_the_flags():
    ROWS.check(None)
    ROWS.check(2)
    with pytest.raises(validation.InputError, match=r"^--rows must be positive, got 0$"):
        ROWS.check(0)
    kind = options.Option("kind", "enum", "which", choices=("a", "b"))
    with pytest.raises(validation.InputError, match=r"^--kind must be one of a, b, got 'c'$"):
        kind.check("c")
    with pytest.raises(ValueError, match="choices go with kind 'enum'"):
        options.Option("kind", "string", "which", choices=("a",))
    with pytest.raises(ValueError, match="kind 'number'"):
        options.Option("n", "number", "which")


def test_a_shared_option_keeps_its_check_with_each_modes_default():
    one, two = mode("one", ROWS), mode("two", ROWS.but(default=8, help="rows shown"))
    declared = options.by_name([one, two])
    assert [(m, o.default) for m, o in declared["rows"]] == [("one", 3), ("two", 8)]
    assert options.flag_help(declared["rows"]) == (
        "one: rows drawn (default 3); two: rows shown (default 8).")
    alike = options.by_name([one, mode("three", ROWS)])
    assert options.flag_help(alike["rows"]) == "one, three: rows drawn (default 3)."
    with pytest.raises(validation.InputError, match="--rows must be positive, got -1"):
        options.check({"rows": -1}, declared)
    other = mode("four", options.Option("rows", "string", "rows by name"))
    with pytest.raises(ValueError, match="--rows is declared with another type or check by "
                                         "--mode=four"):
        options.by_name([one, other])


def test_common_options_are_checked_whatever_the_mode():
    with pytest.raises(validation.InputError, match=r"^--num_samples must be positive, got -5$"):
        options.check({"num_samples": -5}, {})
    options.check({"num_samples": 3, "seed": -1, "step": None}, {})


def test_a_mode_reads_the_declared_default_unless_given_or_overridden():
    request = common.Request(10, 0, {"rows": None})
    assert request.option(ROWS) == 3
    assert request.option(ROWS, min(request.num_samples, 5)) == 5
    assert common.Request(10, 0, {"rows": 7}).option(ROWS) == 7
    assert request.option("rows", 4) == 4  # undeclared settings still read by name


def test_the_registered_modes_declare_each_option_once_and_the_positive_ones_as_before():
    declared = runner.declared_options()
    positive = {name for name, decls in declared.items() if decls[0][1].positive}
    assert positive == {"num_images", "num_iters", "num_chains", "num_temps", "batch_size",
                        "num_rows", "num_cols", "num_batches", "num_reference", "fit_samples",
                        "map_iters", "num_starts", "mcmc_steps", "grid_size", "snapshot_every",
                        "kid_subsets", "kid_subset_size", "inception_size"}
    assert {m for m, _ in declared["num_chains"]} == {"ais", "bpd"}
    assert dict(declared["num_chains"])["ais"].default == 256
    assert dict(declared["num_chains"])["bpd"].default == 16
    assert set(declared) <= {o.name for m in MODES.values() for o in m.options}


def test_no_mode_reads_an_option_it_has_not_declared():
    """Modes read options through their declarations (``request.option(DECL)``), never by a
    bare name, so every option a mode reads is a flag with help and a check."""
    import pathlib
    import re
    root = pathlib.Path(runner.__file__).parent
    bare = [f"{path.name}:{n}" for path in root.rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"request\.option\(\s*[\"']", line)]
    assert bare == []
