"""The password policy (managers.users): judging a password stays quick, however it is made."""

from __future__ import annotations

import time

from managers.users import password_problems

# Every character zxcvbn reads as a l33t substitution, 128 of them: its costliest kind of input.
L33T_HEAVY = ("4@8({[<369!|17+0$5%2" * 7)[:128]


def test_a_long_password_is_judged_by_its_start_in_bounded_time():
    started = time.perf_counter()
    password_problems(L33T_HEAVY)
    assert time.perf_counter() - started < 5  # zxcvbn takes about half a minute over the whole of it


def test_a_long_password_is_judged_by_its_first_24_characters():
    assert password_problems("plaid kettle 9 umbra qz" + "a" * 100) == []
    (problem,) = password_problems("passwordpasswordpassword-Zq8#vL2!mK9x")
    assert problem.startswith("This password is too easy to guess: repeats")
