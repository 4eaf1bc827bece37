from __future__ import annotations

from obs.logs.redaction import MASK, RedactSecrets


def test_top_level_and_nested_secrets_are_masked() -> None:
    redact = RedactSecrets()
    event = {
        "event": "login",
        "Password": "hunter2",
        "user": {"name": "ann", "credentials": {"API-Key": "k-123", "x_access_token": "t"}},
        "headers": [("Authorization", "Bearer abc"), ("accept", "*/*")],
    }
    out = redact(None, "info", event)
    assert out["Password"] == MASK
    assert out["user"]["name"] == "ann"
    assert out["user"]["credentials"] == {"API-Key": MASK, "x_access_token": MASK}
    assert out["headers"] == [("Authorization", MASK), ("accept", "*/*")]


def test_callers_objects_are_not_modified() -> None:
    payload = {"cookie": "session=1", "ok": 1}
    event = {"event": "x", "payload": payload}
    RedactSecrets()(None, "info", event)
    assert payload == {"cookie": "session=1", "ok": 1}
    assert event["payload"] == {"cookie": MASK, "ok": 1}


def test_unchanged_values_keep_identity() -> None:
    nested = {"a": [1, 2, {"b": 3}]}
    redact = RedactSecrets()
    assert redact.redact(nested) is nested


def test_key_list_is_configurable_and_case_insensitive() -> None:
    redact = RedactSecrets(["SSN"])
    out = redact(None, "info", {"ssn": "1", "password": "still visible"})
    assert out == {"ssn": MASK, "password": "still visible"}


def test_byte_header_names_are_matched() -> None:
    out = RedactSecrets()(None, "info", {"raw": [(b"cookie", b"a=b")]})
    assert out["raw"] == [(b"cookie", MASK)]


def test_cycles_do_not_recurse_forever() -> None:
    loop: dict[str, object] = {"password": "hunter2"}
    loop["self"] = loop
    out = RedactSecrets()(None, "info", {"loop": loop})
    # Masked at every level the walk reaches, and the caller's dict left alone.
    assert out["loop"]["password"] == MASK and out["loop"]["self"]["password"] == MASK
    assert loop["password"] == "hunter2"


def test_trusted_keys_are_skipped_and_the_rest_checked() -> None:
    redact = RedactSecrets()
    event = {"path": "/x", "token": "from-context", "nested": {"password": "p"}}
    out = redact.redact_untrusted(event, frozenset({"path"}))
    assert out == {"path": "/x", "token": MASK, "nested": {"password": MASK}}
