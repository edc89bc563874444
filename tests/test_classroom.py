"""`lm_core.classroom`: PIN hashing, joining, rate limits, caps, the teacher key, lesson lock rules, the CSV, the CLI.

Engine tests: no Streamlit. Each test has its own data folder (conftest's `RNN_LAB_DATA`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import time
from pathlib import Path

import pytest

from lm_core import cli, limits
from lm_core.classroom import lesson, pins, report, store, teacher
from lm_core.classroom.errors import ClassError, NewStudent
from lm_core.classroom.store import ClassStore
from lm_core.serve.store import RunRecord

PIN = "483920"


@pytest.fixture()
def classes(tmp_path: Path) -> ClassStore:
    made = ClassStore(tmp_path)
    yield made
    made.close()


def _joined(classes: ClassStore, name: str = "Ada", pin: str = PIN, browser: str = "browser-1"):
    code = classes.classes()[0].code if classes.classes() else classes.create_class("Class 3A").code
    return classes.join(code, name, pin, browser, allow_new=True)


# -- PINs -------------------------------------------------------------------------------------------------
def test_a_pin_is_stored_salted_and_hashed_and_checked_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = pins.hash_pin(PIN), pins.hash_pin(PIN)
    assert PIN not in first and first != second  # a new salt each time
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", pins.SCRYPT_N, pins.SCRYPT_R, pins.SCRYPT_P)
    assert (
        digest == hashlib.scrypt(PIN.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32).hex()
    )
    compared = []
    real = pins.hmac.compare_digest
    monkeypatch.setattr(pins.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    assert pins.verify_pin(PIN, first) and not pins.verify_pin("483921", first)
    assert len(compared) == 2
    for broken in ("", "plain", "md5$1$2$3$00$00", "scrypt$x$8$1$00$00", first.replace("scrypt", "bcrypt")):
        assert not pins.verify_pin(PIN, broken)


@pytest.mark.parametrize("pin", ["", "123", "1234567890123", "12a4", "１２３４", " 1234", None])
def test_a_pin_is_four_to_twelve_ascii_digits(pin: str | None) -> None:
    with pytest.raises(ClassError) as caught:
        pins.check_pin(pin)
    assert caught.value.key == "error.classes.pin_format"
    assert pins.check_pin("0000") == "0000" and pins.check_pin("9" * limits.MAX_PIN_DIGITS)


def test_the_class_file_never_holds_a_pin_in_clear(classes: ClassStore) -> None:
    _joined(classes, pin="97531864")
    classes.reset_pin(classes.students(classes.classes()[0].id)[0].id, "24681357")
    raw = b"".join(p.read_bytes() for p in classes.folder.glob("classes.sqlite*"))
    assert b"97531864" not in raw and b"24681357" not in raw
    assert (classes.path.stat().st_mode & 0o777) == 0o600


# -- names and codes ----------------------------------------------------------------------------------------
def test_class_codes_use_unambiguous_characters_and_read_back_loosely() -> None:
    codes = {pins.new_code() for _ in range(200)}
    assert all(len(c) == pins.CODE_LENGTH and not set(c) & set("01ILO") for c in codes)
    code = next(iter(codes))
    assert pins.read_code(f" {code[:3].lower()}-{code[3:]} ") == code
    assert pins.read_code("ABC") is None and pins.read_code("ABCDE0") is None


@pytest.mark.parametrize(
    ("name", "key"),
    [("", "error.classes.name_empty"), ("   ", "error.classes.name_empty"), ("x" * 41, "error.classes.name_long"),
     ("Ada\u200b", "error.classes.name_chars"), ("Ada\x07", "error.classes.name_chars"),
     ("\u202eadA", "error.classes.name_chars")],
)  # fmt: skip
def test_names_with_nothing_too_much_or_hidden_characters_are_refused(name: str, key: str) -> None:
    with pytest.raises(ClassError) as caught:
        pins.clean_name(name)
    assert caught.value.key == key


def test_two_spellings_of_one_name_are_one_student(classes: ClassStore) -> None:
    first = _joined(classes, "Ada  Li")
    again = classes.join(classes.classes()[0].code.lower(), " ada li ", PIN, "browser-2")
    assert again.student == first.student and not again.new and first.new
    assert first.student.name == "Ada Li" and first.student.owner == f"s:{first.student.id}"


# -- joining -----------------------------------------------------------------------------------------------
def test_a_new_name_is_asked_about_before_it_becomes_a_student(classes: ClassStore) -> None:
    klass = classes.create_class("Class 3A")
    with pytest.raises(NewStudent):
        classes.join(klass.code, "Ada", PIN, "browser-1")
    assert classes.students(klass.id) == [] and classes.signed_in("browser-1") is None
    joined = classes.join(klass.code, "Ada", PIN, "browser-1", allow_new=True)
    assert classes.signed_in("browser-1") == (joined.student, klass)


def test_the_same_name_and_pin_find_the_same_student_from_any_browser_and_after_a_restart(tmp_path: Path) -> None:
    first = ClassStore(tmp_path)
    joined = _joined(first)
    first.close()
    again = ClassStore(tmp_path)  # a server restart: a new store on the same folder
    assert again.signed_in("browser-1")[0] == joined.student
    other = again.join(joined.klass.code, "Ada", PIN, "browser-2")
    assert other.student.owner == joined.student.owner
    again.leave("browser-1")
    assert again.signed_in("browser-1") is None and again.signed_in("browser-2") is not None
    again.close()


def test_a_wrong_pin_says_only_name_or_pin_not_recognised(classes: ClassStore) -> None:
    joined = _joined(classes)
    with pytest.raises(ClassError) as caught:
        classes.join(joined.klass.code, "Ada", "111111", "browser-9")
    assert caught.value.key == "error.classes.not_recognised"
    assert str(caught.value) == "Name or PIN not recognised."
    assert classes.signed_in("browser-9") is None
    with pytest.raises(ClassError) as unknown:
        classes.join("ZZZZZZ", "Ada", PIN, "browser-9")
    assert unknown.value.key == "error.classes.unknown_code"


def test_wrong_pins_are_limited_per_name_even_with_the_right_pin_after(
    classes: ClassStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = _joined(classes)
    _joined(classes, "Bo", "13579")
    code = joined.klass.code
    for _ in range(limits.JOIN_FAILURES_PER_NAME):
        with pytest.raises(ClassError, match="not recognised"):
            classes.join(code, "Ada", "000000", "attacker")
    with pytest.raises(ClassError) as waiting:
        classes.join(code, "Ada", PIN, "browser-1")  # the right PIN is refused too while the name waits
    assert waiting.value.key == "error.classes.wait_name"
    assert 1 <= waiting.value.params["minutes"] <= limits.JOIN_FAILURE_WINDOW / 60
    assert classes.join(code, "Bo", "13579", "browser-3").student.name == "Bo"  # other names are not held up
    later = time.time() + limits.JOIN_FAILURE_WINDOW + 1
    monkeypatch.setattr(store.time, "time", lambda: later)
    assert classes.join(code, "Ada", PIN, "browser-1").student == joined.student


def test_wrong_tries_are_limited_in_all_whatever_the_name_or_browser(
    classes: ClassStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "JOIN_FAILURES_GLOBAL", 4)
    joined = _joined(classes)
    code = joined.klass.code
    for i in range(2):
        _joined(classes, f"Student {i}", "2468")
        with pytest.raises(ClassError, match="not recognised"):
            classes.join(code, f"Student {i}", "9999", f"new-browser-{i}")
    for i in range(2):  # unknown codes count as well: they are how one would hunt for classes
        with pytest.raises(ClassError, match="Class code"):
            classes.join(f"ZZZZZ{i + 2}", "Ada", PIN, f"new-browser-{i + 2}")
    with pytest.raises(ClassError) as waiting:
        classes.join(code, "Ada", PIN, "browser-1")
    assert waiting.value.key == "error.classes.wait"


def test_caps_on_classes_students_and_browsers(classes: ClassStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_CLASSES", 2)
    monkeypatch.setattr(limits, "MAX_STUDENTS_PER_CLASS", 2)
    monkeypatch.setattr(limits, "MAX_BROWSERS_PER_STUDENT", 2)
    klass = classes.create_class("A")
    classes.create_class("B")
    with pytest.raises(ClassError) as too_many:
        classes.create_class("C")
    assert too_many.value.key == "error.classes.too_many" and too_many.value.params == {"n": 2}
    classes.join(klass.code, "One", PIN, "b1", allow_new=True)
    classes.join(klass.code, "Two", PIN, "b2", allow_new=True)
    with pytest.raises(ClassError) as full:
        classes.join(klass.code, "Three", PIN, "b3", allow_new=True)
    assert full.value.key == "error.classes.class_full" and "2 students" in str(full.value)
    for browser in ("b4", "b5"):
        time.sleep(0.01)
        classes.join(klass.code, "One", PIN, browser)
    assert classes.signed_in("b1") is None  # the oldest of One's browsers was signed out
    assert classes.signed_in("b4") is not None and classes.signed_in("b5") is not None


def test_the_teacher_resets_a_pin_and_removes_a_student(classes: ClassStore) -> None:
    joined = _joined(classes)
    for _ in range(limits.JOIN_FAILURES_PER_NAME):
        with pytest.raises(ClassError):
            classes.join(joined.klass.code, "Ada", "000000", "attacker")
    classes.reset_pin(joined.student.id, "112233")
    with pytest.raises(ClassError, match="not recognised"):
        classes.join(joined.klass.code, "Ada", PIN, "browser-2")
    assert classes.join(joined.klass.code, "Ada", "112233", "browser-2").student == joined.student
    classes.remove_student(joined.student.id)
    assert classes.signed_in("browser-1") is None and classes.signed_in("browser-2") is None
    assert classes.students(joined.klass.id) == [] and classes.student_by_owner(joined.student.owner) is None


def test_deleting_a_class_signs_its_students_out(classes: ClassStore) -> None:
    joined = _joined(classes)
    classes.set_lock(lesson.make_lock(joined.klass.id, ["train"], ["epochs"], 30))
    assert classes.delete_class(joined.klass.id) == [joined.student.owner]
    assert classes.classes() == [] and classes.signed_in("browser-1") is None and classes.lock(joined.klass.id) is None


# -- the lesson lock ----------------------------------------------------------------------------------------
def test_lesson_lock_rules() -> None:
    now = 1_000_000.0
    lock = lesson.make_lock("c1", ["train", "my_runs"], ["epochs", "lr"], 45, now=now)
    assert lock.ends == now + 45 * 60
    assert lesson.page_visible(lock, "train", now) and not lesson.page_visible(lock, "clipping", now)
    assert lesson.setting_visible(lock, "train", "lr", now) and not lesson.setting_visible(lock, "train", "hidden", now)
    assert not lesson.setting_visible(lock, "clipping", "lr", now)  # a page the lock hides shows no setting
    every = lesson.make_lock("c1", ["train"], None, 45, now=now)
    assert lesson.setting_visible(every, "train", "hidden", now)
    after = lock.ends + 1  # past its end a lock is not in force
    assert lesson.page_visible(lock, "clipping", after) and lesson.setting_visible(lock, "train", "hidden", after)
    assert lesson.page_visible(None, "clipping") and lesson.setting_visible(None, "train", "hidden")
    for pages, minutes, key in (
        ([], 45, "lock_no_page"),
        (["train"], 0, "lock_minutes"),
        (["train"], 10_000, "lock_minutes"),
    ):
        with pytest.raises(ClassError) as caught:
            lesson.make_lock("c1", pages, None, minutes)
        assert caught.value.key == f"error.classes.{key}"


def test_a_lock_is_kept_until_it_ends_or_is_lifted(classes: ClassStore, monkeypatch: pytest.MonkeyPatch) -> None:
    klass = classes.create_class("A")
    lock = lesson.make_lock(klass.id, ["train"], ["epochs"], 30, preset="quick_demo")
    classes.set_lock(lock)
    assert classes.lock(klass.id) == lock
    assert classes.lock(klass.id, now=lock.ends + 1) is None
    classes.lift_lock(klass.id)
    assert classes.lock(klass.id) is None


# -- the teacher key ----------------------------------------------------------------------------------------
def test_without_the_variable_a_key_is_generated_once_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(teacher.TEACHER_KEY_ENV, raising=False)
    monkeypatch.setattr(teacher, "_generated", None)
    with caplog.at_level(logging.WARNING, logger=teacher.__name__):
        key = teacher.teacher_key()
        assert teacher.teacher_key() == key
    assert [r.getMessage() for r in caplog.records if key in r.getMessage()]  # logged once, for the operator
    assert len([r for r in caplog.records if key in r.getMessage()]) == 1
    assert len(key) == 19 and key.count("-") == 3
    assert teacher.key_matches(key) and teacher.key_matches(key.lower().replace("-", " "))
    assert not teacher.key_matches(key[:-1] + ("A" if key[-1] != "A" else "B"))
    monkeypatch.setenv(teacher.TEACHER_KEY_ENV, "operator's own key")
    assert teacher.teacher_key() == "operator's own key" and teacher.key_matches(" operator's own key ")
    assert not teacher.key_matches("OPERATOR'S OWN KEY") and not teacher.key_matches(key)
    assert teacher.fingerprint() != teacher.fingerprint(key)


def test_teacher_unlocks_are_rate_limited_and_bound_to_the_key(
    classes: ClassStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    print_ = teacher.fingerprint("key one")
    for _ in range(limits.TEACHER_FAILURES_PER_BROWSER):
        with pytest.raises(ClassError) as wrong:
            classes.unlock_teacher("browser-1", False, print_)
        assert wrong.value.key == "error.classes.wrong_key"
    with pytest.raises(ClassError) as waiting:
        classes.unlock_teacher("browser-1", True, print_)  # the right key waits too: guesses stay bounded
    assert waiting.value.key == "error.classes.wait_key"
    classes.unlock_teacher("browser-2", True, print_)
    assert classes.teacher_unlocked("browser-2", print_) and not classes.teacher_unlocked("browser-1", print_)
    assert not classes.teacher_unlocked("browser-2", teacher.fingerprint("key two"))  # a new key ends it
    assert not classes.teacher_unlocked("browser-2", print_, now=time.time() + limits.TEACHER_UNLOCK_SECONDS + 1)
    classes.lock_teacher("browser-2")
    assert not classes.teacher_unlocked("browser-2", print_)
    monkeypatch.setattr(limits, "TEACHER_FAILURES_GLOBAL", limits.TEACHER_FAILURES_PER_BROWSER + 2)
    for i in range(2):  # a fresh browser identity costs nothing: the global limit holds across them
        with pytest.raises(ClassError):
            classes.unlock_teacher(f"fresh-{i}", False, print_)
    with pytest.raises(ClassError) as all_wait:
        classes.unlock_teacher("fresh-9", True, print_)
    assert all_wait.value.key == "error.classes.wait_key"


# -- results and the command line -----------------------------------------------------------------------------
def _record(**overrides: object) -> RunRecord:
    """A stored run of a student (a GRU that diverged at epoch 3 of 10), with `overrides`."""
    config = {"model": "gru", "hidden": 32, "lr": 0.01, "clip": None}
    record = RunRecord("job-0", "job", 0, "s:x", "train", "gru", config, "songci", "h", "diverged", "", 3, 10, 12.5,
                       0.0, 0.0, 0, ["gru"])  # fmt: skip
    for name, value in overrides.items():
        setattr(record, name, value)
    return record


def test_the_class_csv_has_a_row_per_run_and_runs_no_formula(classes: ClassStore) -> None:
    joined = _joined(classes, name="=HYPERLINK(1)")
    row = report.result_row(joined.klass, joined.student, _record(), [{"perplexity": 30.0}, {"perplexity": 12.5}])
    table = list(csv.reader(io.StringIO(report.results_csv([row]).decode("utf-8-sig"))))
    assert table[0] == list(report.COLUMNS)
    got = dict(zip(table[0], table[1], strict=True))
    assert got["student"] == "'=HYPERLINK(1)" and got["class"] == "Class 3A"
    assert (got["model"], got["status"], got["diverged"], got["epoch"], got["planned"]) == (
        "gru",
        "diverged",
        "True",
        "3",
        "10",
    )
    assert (got["best_perplexity"], got["last_perplexity"], got["hidden"], got["clip"]) == ("12.5", "12.5", "32", "")
    assert [report.safe_cell(v) for v in ("+1", "-1", "@x", "a=b", 5)] == ["'+1", "'-1", "'@x", "a=b", 5]


def test_cli_class_create_prints_the_code_last_and_list_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RNN_LAB_DATA", str(tmp_path))
    assert cli.main(["class", "create", "Class 3A"]) == 0
    code = capsys.readouterr().out.strip().splitlines()[-1]
    assert pins.read_code(code) == code
    assert ClassStore(tmp_path).by_code(code).name == "Class 3A"
    assert cli.main(["class", "list"]) == 0
    assert code in capsys.readouterr().out
    assert cli.main(["class", "create", "   "]) == 2
    assert capsys.readouterr().err.strip() == "error: Type a name."
