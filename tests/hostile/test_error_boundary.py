"""The command line's one error boundary: each failure class maps to one ``error:`` line and its exit
code (1 runtime, 2 bad input, 130 interrupted); tracebacks only with --debug or TINYEFF_DEBUG=1."""
import errno

import pytest

from conftest import error_line


@pytest.fixture
def failing_info(monkeypatch):
    """Make ``tinyeff info`` raise ``exc``."""
    def install(exc):
        def run(args):
            raise exc
        monkeypatch.setattr("tinyeff.cli.info.run", run)
        monkeypatch.setattr("tinyeff.cli.info.register", lambda sub: sub.add_parser("info").set_defaults(func=run))
    return install


@pytest.mark.parametrize("exc,code,text", [
    (MemoryError("Unable to allocate 2.40 GiB for an array with shape (600000000,)"), 1,
     "error: out of memory (Unable to allocate 2.40 GiB"),
    (OSError(errno.EACCES, "Permission denied", "/out/model.npz"), 1, "error: Permission denied: /out/model.npz"),
    (OSError(errno.ENOSPC, "No space left on device", "/out/metrics.json"), 1,
     "error: No space left on device: /out/metrics.json"),
    (ValueError("bad value\n  spread over lines"), 2, "error: bad value spread over lines"),
])
def test_failure_is_one_line_with_its_exit_code(cli, failing_info, exc, code, text):
    failing_info(exc)
    got, _, err = cli("info")
    assert got == code and error_line(err).startswith(text)


def test_interrupt_exits_130(cli, failing_info):
    failing_info(KeyboardInterrupt())
    code, _, err = cli("info")
    assert code == 130 and err == "interrupted\n"


def test_tinyeff_debug_env_shows_the_traceback(capsys, failing_info, monkeypatch):
    from tinyeff.cli import main
    failing_info(OSError(errno.EACCES, "Permission denied", "/x"))
    monkeypatch.setenv("TINYEFF_DEBUG", "1")
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("error: Permission denied: /x")


def test_a_bug_is_not_hidden(failing_info):
    """Programming errors (TypeError, AttributeError...) keep their traceback: they are not user errors."""
    from tinyeff.cli import main
    failing_info(AttributeError("'NoneType' object has no attribute 'data'"))
    with pytest.raises(AttributeError):
        main(["info"])
