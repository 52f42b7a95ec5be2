"""The fuzzing strategies generate what the suite promises, and the Hypothesis profiles are sound."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from sts_conformance.checking import hypothesis_profiles as hp
from sts_conformance.checking import strategies as s
from sts_conformance.core.redact import Redactor

# Searching for an example without shrinking: only whether one exists matters here.
SEARCH = settings(
    max_examples=3000,
    phases=[Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
CHECK = settings(max_examples=200, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def generates(strategy: st.SearchStrategy[Any], predicate: Callable[[Any], bool]) -> bool:
    try:
        find(strategy, predicate, settings=SEARCH)
    except NoSuchExample:
        return False
    return True


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", s.BOUNDARY_LENGTHS)
def test_names_generate_every_boundary_length(length):
    """Each boundary length is reachable from names(), not left to chance."""
    assert generates(s.names(), lambda n: len(n) == length), f"names() never generated a name of length {length}"


def test_boundary_lengths_cover_the_limits_the_issue_names():
    """63/64/65, 255/256/257, 1024/1025 and a length far past them are all in the list."""
    for length in (63, 64, 65, 255, 256, 257, 1024, 1025, 4096):
        assert length in s.BOUNDARY_LENGTHS
    assert max(s.BOUNDARY_LENGTHS) > 4096


@pytest.mark.parametrize("alphabet", s.LENGTH_ALPHABETS)
@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 257, 4096, 16384])
def test_names_of_length_have_exactly_that_length(length, alphabet):
    """names_of_length(n, alphabet) gives n code points from that alphabet, every time."""

    @CHECK
    @given(s.names_of_length(length, alphabet))
    def check(name):
        assert len(name) == length
        if alphabet == "ascii":
            assert name.isascii()
        elif alphabet == "bmp":
            assert all(0x7F < ord(c) <= 0xFFFF for c in name)
        else:
            assert all(ord(c) > 0xFFFF for c in name)

    check()


def test_names_of_length_rejects_a_length_below_one():
    with pytest.raises(ValueError):
        s.names_of_length(0)


@CHECK
@given(s.names())
def test_names_are_json_encodable_without_lone_surrogates(name):
    """Every name survives a JSON round trip and encodes as UTF-8 (no lone surrogates)."""
    assert json.loads(json.dumps({"name": name}))["name"] == name
    name.encode("utf-8")


@CHECK
@given(s.names())
def test_names_never_look_like_secrets_or_harness_names(name):
    """A generated name is never masked as a secret in a report, nor taken for a token of this run."""
    assert not Redactor().contains_secret(name)
    assert "svctok-" not in name and "stsct-" not in name


def test_defang_keeps_the_length():
    for text in ("svctok-abcdef", "xstsct-1-2", "svctok-svctok-"):
        assert len(s.defang(text)) == len(text)
        assert "svctok-" not in s.defang(text) and "stsct-" not in s.defang(text)


_NAME_KINDS: dict[str, Callable[[str], bool]] = {
    "empty": lambda n: n == "",
    "whitespace-only": lambda n: n != "" and all(c in s.WHITESPACE for c in n),
    "leading white space": lambda n: len(n) > 1 and n[0] in s.WHITESPACE and not n.isspace(),
    "trailing white space": lambda n: len(n) > 1 and n[-1] in s.WHITESPACE and not n.isspace(),
    "control character": lambda n: any(c in "\x00\x01\x1b\x7f\x9f" for c in n),
    "zero-width character": lambda n: any(c in s.ZERO_WIDTH for c in n),
    "right-to-left letter": lambda n: any(unicodedata.bidirectional(c) in ("R", "AL") for c in n),
    "bidi control": lambda n: any(c in s.BIDI_CONTROLS for c in n),
    "combining mark": lambda n: any(unicodedata.combining(c) for c in n),
    "emoji": lambda n: any(0x1F300 <= ord(c) <= 0x1FAFF for c in n),
    "emoji ZWJ sequence": lambda n: any(seq in n for seq in s.EMOJI_SEQUENCES if "\u200d" in seq),
    "CJK": lambda n: any(0x4E00 <= ord(c) <= 0x9FFF for c in n),
    "cyrillic": lambda n: any(0x0400 <= ord(c) <= 0x04FF for c in n),
    "JSON quote and backslash": lambda n: '"' in n and "\\" in n,
    "URL-special": lambda n: any(c in n for c in "?#&%/"),
    "percent-encoded fragment": lambda n: "%2F" in n or "%00" in n,
    "longer than 4096": lambda n: len(n) > 4096,
}


@pytest.mark.parametrize("kind", _NAME_KINDS)
def test_names_generate_each_kind(kind):
    """names() reaches every kind of name the suite promises to send."""
    assert generates(s.names(), _NAME_KINDS[kind]), f"names() never generated a name with {kind}"


def test_name_traits_label_what_they_see():
    assert s.name_traits("") == ["empty"]
    assert s.name_traits(" \u200b ") == ["whitespace-only"]
    traits = s.name_traits(" \u05d0\u0301\x00")
    for expected in ("leading-space", "rtl", "combining", "control", "non-ascii", "len<=64"):
        assert expected in traits
    assert "astral" in s.name_traits("\U0001f600")
    assert s.name_traits("a" * 300)[-1] == "len<=1024"
    assert s.length_band(5000) == "len>4096"


# -- roles -------------------------------------------------------------------------------------

_ROLE_KINDS: dict[str, Callable[[list[str]], bool]] = {
    "empty list": lambda rs: rs == [],
    "one role": lambda rs: len(rs) == 1,
    "many roles": lambda rs: len(rs) >= 5,
    "duplicates": lambda rs: len(set(rs)) < len(rs),
    "every predefined role at once": lambda rs: set(s.PREDEFINED_ROLES) <= set(rs),
    "the manager role": lambda rs: "stackstate-admin" in rs,
    "an unknown role": lambda rs: any(r and r not in s.PREDEFINED_ROLES and r.isascii() and r.islower() for r in rs),
    "a comma": lambda rs: any("," in r for r in rs),
    "a space": lambda rs: any(" " in r for r in rs),
    "non-ASCII": lambda rs: any(not r.isascii() for r in rs),
    "mixed case": lambda rs: any(r.lower() in s.PREDEFINED_ROLES and r not in s.PREDEFINED_ROLES for r in rs),
    "an empty role name": lambda rs: "" in rs,
    "a profile role": lambda rs: "custom-viewer" in rs,
}


@pytest.mark.parametrize("kind", _ROLE_KINDS)
def test_role_lists_generate_each_kind(kind):
    """role_lists() reaches every kind of role list the suite promises to send."""
    strategy = s.role_lists(known=["custom-viewer"])
    assert generates(strategy, _ROLE_KINDS[kind]), f"role_lists() never generated a list with {kind}"


@CHECK
@given(s.role_lists())
def test_role_lists_are_lists_of_json_strings(roles):
    assert isinstance(roles, list) and all(isinstance(r, str) for r in roles)
    assert json.loads(json.dumps(roles)) == roles
    assert not any(Redactor().contains_secret(r) for r in roles)


def test_role_traits_label_what_they_see():
    assert s.role_traits([]) == ["empty-list"]
    traits = s.role_traits(["stackstate-guest", "stackstate-guest", "Stackstate-Admin", "a,b", " x"])
    for expected in ("many", "duplicates", "predefined", "unknown", "case-altered", "comma", "space"):
        assert expected in traits


# -- profiles ----------------------------------------------------------------------------------


def test_profiles_are_registered_for_server_facing_runs():
    """quick and thorough exist, keep no example database and have no deadline."""
    for name in (hp.QUICK, hp.THOROUGH):
        profile = settings.get_profile(name)
        assert profile.deadline is None
        assert profile.database is None
        assert HealthCheck.too_slow in profile.suppress_health_check
        assert profile.print_blob
    assert settings.get_profile(hp.THOROUGH).max_examples > 4 * settings.get_profile(hp.QUICK).max_examples


@pytest.fixture
def profile_loaded():
    """Load a profile for one test and restore the one that was active."""
    before = settings.get_current_profile_name()
    yield settings.load_profile
    settings.load_profile(before)


@pytest.mark.parametrize("chosen", ["default", "ci"])
def test_builtin_profiles_map_to_quick(profile_loaded, chosen):
    profile_loaded(chosen)
    assert hp.active_profile() == hp.QUICK
    assert hp.suite_settings().max_examples == settings.get_profile(hp.QUICK).max_examples


def test_chosen_profile_is_used_and_scaled(profile_loaded):
    profile_loaded(hp.THOROUGH)
    assert hp.active_profile() == hp.THOROUGH
    full = settings.get_profile(hp.THOROUGH).max_examples
    assert hp.suite_settings().max_examples == full
    assert hp.suite_settings(0.1).max_examples == round(full * 0.1)
    assert hp.suite_settings(0.0, minimum=3).max_examples == 3


def test_users_own_profile_keeps_server_facing_settings(profile_loaded):
    settings.register_profile("sts-test-own", max_examples=7, deadline=200)
    profile_loaded("sts-test-own")
    chosen = hp.suite_settings()
    assert chosen.max_examples == 7
    assert chosen.deadline is None
    assert HealthCheck.too_slow in chosen.suppress_health_check


class _Config:
    def __init__(self, seed):
        self.seed = seed

    def getoption(self, name, default=None):
        assert name == "hypothesis_seed"
        return self.seed


def _always_failing():
    @settings(database=None, max_examples=5, phases=[Phase.generate])
    @given(st.integers())
    def check(n):
        raise AssertionError("boom")

    return check


def test_failure_note_names_a_seed_that_replays(profile_loaded):
    """A failure says how to replay it: the seed it ran under and the profile."""
    profile_loaded(hp.QUICK)
    with pytest.raises(AssertionError) as info:
        hp.run_seeded(_always_failing(), config=_Config(None), nodeid="suites/x.py::t")
    note = "\n".join(getattr(info.value, "__notes__", []))
    assert "--hypothesis-seed=" in note and "--hypothesis-profile=quick" in note and "suites/x.py::t" in note


def test_failure_note_repeats_a_seed_given_on_the_command_line(profile_loaded):
    profile_loaded(hp.QUICK)
    with pytest.raises(AssertionError) as info:
        hp.run_seeded(_always_failing(), config=_Config(1234), nodeid="suites/x.py::t")
    assert "--hypothesis-seed=1234" in "\n".join(info.value.__notes__)


def test_replay_hint_seed_repeats_the_examples(profile_loaded, monkeypatch):
    """Running with --hypothesis-seed=N (as the hint says) draws the same examples as the failed run."""
    import re

    from hypothesis import core

    profile_loaded(hp.QUICK)

    def recording(seen: list[str]):
        @settings(database=None, max_examples=100, phases=[Phase.generate])
        @given(s.names())
        def check(name):
            seen.append(name)
            if len(name) > 30:
                raise AssertionError("fail on a long name")

        return check

    first: list[str] = []
    with pytest.raises(AssertionError) as info:
        hp.run_seeded(recording(first), config=_Config(None), nodeid="x")
    found = re.search(r"--hypothesis-seed=(\d+)", "\n".join(info.value.__notes__))
    assert found is not None
    monkeypatch.setattr(core, "global_force_seed", int(found.group(1)))  # what the pytest plugin does
    second: list[str] = []
    with pytest.raises(AssertionError):
        hp.run_seeded(recording(second), config=_Config(int(found.group(1))), nodeid="x")
    assert second == first


def test_shrinking_time_follows_what_replays_cost_at_the_measured_latency():
    """A fast target gets short shrinking (it replays quickly, creating tokens); a slow one the upper bound."""
    assert hp.FuzzBudget(120, 0.0005).shrink_seconds(40) == hp.MIN_SHRINKING_SECONDS  # 25 × 40 × 0.5 ms: 0.5 s
    assert hp.FuzzBudget(120, 0.02).shrink_seconds(40) == pytest.approx(20.0)
    assert hp.FuzzBudget(120, 0.010).shrink_seconds(40) == pytest.approx(hp.SHRINK_EXAMPLES * 40 * 0.010)
    assert hp.FuzzBudget(120, 0.15).shrink_seconds(40) == hp.MAX_SHRINKING_SECONDS
    assert hp.FuzzBudget(120, 0.0).shrink_seconds(40) == hp.MAX_SHRINKING_SECONDS  # not measured


def test_shrinking_stops_on_its_bound_and_says_so_in_its_own_words(profile_loaded):
    """Shrinking that runs out of time stops, the failure is still raised, and the note says why it stopped."""
    import time

    from hypothesis.internal.conjecture import engine
    from hypothesis.reporting import with_reporter

    profile_loaded(hp.QUICK)
    replays = []

    @settings(database=None, max_examples=50, phases=[Phase.generate, Phase.shrink])
    @given(st.lists(st.integers(), min_size=5))
    def check(xs):
        replays.append(len(xs))
        time.sleep(0.02)
        if sum(xs) > 10:
            raise AssertionError("big")

    said: list[str] = []
    bound_before = engine.MAX_SHRINKING_SECONDS
    with with_reporter(lambda value: said.append(str(value))), pytest.raises(AssertionError):
        hp.run_seeded(check, config=_Config(7), nodeid="suites/x.py::t", shrink_seconds=0.2)
    restored = engine.MAX_SHRINKING_SECONDS
    assert restored == bound_before, "the engine's bound is put back"
    assert len(replays) < 60, f"{len(replays)} calls: shrinking went on past its bound"
    text = "\n".join(said)
    assert "five minutes" not in text
    assert "Shrinking stopped at the bound this run sets" in text and "0.2 s" in text, text


def test_shrinking_stops_after_its_replays_whatever_the_time(profile_loaded):
    """However fast the target answers, a failure is replayed only so many times while it is shrunk."""
    from hypothesis.internal.conjecture import engine

    profile_loaded(hp.QUICK)

    def calls_after_failure(replays: int) -> int:
        calls: list[bool] = []

        @settings(database=None, max_examples=200, phases=[Phase.generate, Phase.shrink])
        @given(st.lists(st.integers(), min_size=10))
        def check(xs):
            failing = sum(abs(x) for x in xs) > 1000
            calls.append(failing)
            if failing:
                raise AssertionError("big")

        with pytest.raises(AssertionError):
            hp.run_seeded(check, config=_Config(11), nodeid="suites/x.py::t", shrink_seconds=60, shrink_replays=replays)
        return len(calls) - calls.index(True) - 1

    original = engine.ConjectureRunner.test_function
    bounded, unbounded = calls_after_failure(5), calls_after_failure(10_000)
    assert engine.ConjectureRunner.test_function is original, "the engine is put back"
    # besides the replays while shrinking, Hypothesis runs a few of its own (the last generation
    # steps, replaying the final example to report it): about a dozen, whatever the bound
    assert bounded <= 5 + 12 < unbounded, (bounded, unbounded)
