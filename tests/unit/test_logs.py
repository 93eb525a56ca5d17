"""Structured logs: one JSON object per line by default, extra fields kept, and a bound on
what is remembered to log once."""

import json
import logging

from spot_extender.core import logs


def test_one_json_event_per_line_with_its_fields(capsys):
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        logs.configure("json", "info")
        logs.get("test").info("evicted", extra={"pod": "default/web-1", "cause": "reclaim"})
        logs.get("test").debug("not shown at info")
    finally:
        logging.getLogger().handlers[:], level = saved
        logging.getLogger().setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert (event["event"], event["level"], event["logger"]) == ("evicted", "INFO", "spot_extender.test")
    assert event["pod"] == "default/web-1" and event["cause"] == "reclaim" and "time" in event


def test_text_lines_carry_the_fields_as_key_value(capsys):
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        logs.configure("text", "warning")
        logs.get("test").warning("lease lost", extra={"reason": "taken"})
    finally:
        logging.getLogger().handlers[:], level = saved
        logging.getLogger().setLevel(level)
    assert capsys.readouterr().err.rstrip().endswith("lease lost reason=taken")


def test_once_is_bounded():
    once = logs.Once(limit=2)
    assert once.first("a") and not once.first("a")
    assert once.first("b")
    assert once.first("c")  # past the limit everything is forgotten: "a" is new again
    assert once.first("a")
