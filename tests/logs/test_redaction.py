from __future__ import annotations

from obs.logs.redaction import MASK, RedactSecrets


def test_top_level_and_nested_secrets_are_masked() -> None:
    redact = RedactSecrets()
    event = {
        "event": "login",
        "Password": "hunter2",
        "user": {"name": "ann", "settings": {"API-Key": "k-123", "x_access_token": "t"}},
        "headers": [("Authorization", "Bearer abc"), ("accept", "*/*")],
    }
    out = redact(None, "info", event)
    assert out["Password"] == MASK
    assert out["user"]["name"] == "ann"
    assert out["user"]["settings"] == {"API-Key": MASK, "x_access_token": MASK}
    assert out["headers"] == [("Authorization", MASK), ("accept", "*/*")]


def test_callers_objects_are_not_modified() -> None:
    payload = {"cookie": "session=1", "ok": 1}
    event = {"event": "x", "payload": payload}
    RedactSecrets()(None, "info", event)
    assert payload == {"cookie": "session=1", "ok": 1}
    assert event["payload"] == {"cookie": MASK, "ok": 1}


def test_values_without_secrets_come_out_equal_as_plain_copies() -> None:
    nested = {"a": [1, 2, {"b": 3}], "t": (1, "x")}
    out = RedactSecrets().redact(nested)
    assert out == nested and out is not nested and out["t"] == (1, "x")


def test_key_list_is_configurable_and_case_insensitive() -> None:
    redact = RedactSecrets(["SSN"])
    out = redact(None, "info", {"ssn": "1", "password": "still visible"})
    assert out == {"ssn": MASK, "password": "still visible"}


def test_byte_header_names_are_matched() -> None:
    out = RedactSecrets()(None, "info", {"raw": [(b"cookie", b"a=b")]})
    assert out["raw"] == [("cookie", MASK)]  # bytes are logged as text


def test_cycles_do_not_recurse_forever() -> None:
    loop: dict[str, object] = {"password": "hunter2"}
    loop["self"] = loop
    out = RedactSecrets()(None, "info", {"loop": loop})
    # Masked, the cycle cut where it closes, and the caller's dict left alone.
    assert out["loop"]["password"] == MASK and out["loop"]["self"] == "[circular reference]"
    assert loop["password"] == "hunter2"


def test_trusted_keys_are_skipped_and_the_rest_checked() -> None:
    redact = RedactSecrets()
    event = {"path": "/x", "token": "from-context", "nested": {"password": "p"}}
    out = redact.redact_untrusted(event, frozenset({"path"}))
    assert out == {"path": "/x", "token": MASK, "nested": {"password": MASK}}
