"""Errors: hints rendered for the library and for the CLI, and errors that cross processes."""

from __future__ import annotations

import pickle

from omsign.errors import Error, IntegrityError, KeyLoadError
from omsign.manifest import Difference


def test_hint_names_the_library_option_or_the_flag() -> None:
    exc = KeyLoadError(
        "k.pem: the key is encrypted", hint="give it with {option}", option="password"
    )
    assert str(exc) == "k.pem: the key is encrypted; give it with password="
    assert exc.render({"password": "--password-file"}).endswith("give it with --password-file")


def test_errors_pickle_with_their_hint_and_difference() -> None:
    hinted = KeyLoadError("no key", hint="use {option}", option="key")
    back = pickle.loads(pickle.dumps(hinted))
    assert type(back) is KeyLoadError
    assert (back.message, back.hint, back.options) == ("no key", "use {option}", ("key",))
    assert back.render({"key": "--key"}) == "no key; use --key"
    diff = Difference(("a",), ("b",), ("c",))
    changed = pickle.loads(pickle.dumps(IntegrityError("model differs", diff)))
    assert changed.difference == diff
    assert changed.exit_code == 1
    assert isinstance(changed, Error)
