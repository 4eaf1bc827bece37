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


# A key is secret when one of its words (trailing digits dropped) is a one-word secret key, or
# when it ends with a secret key: Django's and Rails' form fields, camelCase confirmations.
MUST_REDACT = [
    "password", "password1", "password2", "new_password1", "new_password2", "old_password",
    "user[password_confirmation]", "user[current_password]", "passwordConfirm",
    "password_confirmation", "password_hash", "otp", "otp_code", "OTP-Code", "pwd2",
    "xapikey", "x-api-key", "db_password", "DB_PASSWORD", "accessToken", "session_id",
    "sessionid", "refresh_token", "id_token", "token_v2", "clientSecret", "secret_value",
    "csrfmiddlewaretoken", "Set-Cookie", "x.api.key", "pass%77ord", "jwt_payload",
    "api_key2", "apikey1", "x_obs_profile",
]  # fmt: skip
MUST_NOT_REDACT = [
    "status_code", "error_code", "zip_code", "code", "key", "sig", "monkey", "keyboard",
    "passenger", "passage", "bypass", "compass", "http_route", "user_id", "username",
    "author", "keys", "primary_key_name", "otpauth_enabled", "hotkey", "tokenizer",
    "prompt_tokens", "passwords_policy_url", "sessions", "duration_ms", "path",
]  # fmt: skip


def test_secret_words_anywhere_in_a_key_are_redacted() -> None:
    redact = RedactSecrets()
    assert [key for key in MUST_REDACT if not redact.is_secret(key)] == []
    assert [key for key in MUST_REDACT if not redact.is_secret(key.encode())] == []
    event = redact(None, "info", {key: "S3CR3T" for key in MUST_REDACT})
    assert set(event.values()) == {MASK}
    # The same keys in free text: key=value and key: value pairs.
    text = redact.scrub_text(" ".join(f"{key}=S3CR3T" for key in MUST_REDACT))
    assert "S3CR3T" not in text, text


def test_words_that_only_contain_a_secret_word_are_kept() -> None:
    redact = RedactSecrets()
    assert [key for key in MUST_NOT_REDACT if redact.is_secret(key)] == []
    event = redact(None, "info", {key: "visible" for key in MUST_NOT_REDACT})
    assert set(event.values()) == {"visible"}
    text = " ".join(f"{key}=visible" for key in MUST_NOT_REDACT)
    assert redact.scrub_text(text) == text


QUERY_ONLY = ["code", "sig", "signature", "key", "otp"]


def test_query_strings_also_mask_the_oauth_and_cloud_parameter_names() -> None:
    redact = RedactSecrets()
    query = "&".join(f"{name}=S3CR3T" for name in [*QUERY_ONLY, *MUST_REDACT])
    assert "S3CR3T" not in redact.redact_query(query)
    kept = "&".join(f"{name}=visible" for name in MUST_NOT_REDACT if name not in QUERY_ONLY)
    assert redact.redact_query(kept) == kept
    # In a request line of a server (uvicorn's, httpx's): the query's own names too, but not
    # the same words outside a query ("exit code=1" is no secret).
    line = "GET /cb?code=S3CR3T&state=xyz&sig=S3CR3T HTTP/1.1"
    assert redact.scrub_text(line) == "GET /cb?code=[REDACTED]&state=xyz&sig=[REDACTED] HTTP/1.1"
    assert redact.scrub_text("worker exited with code=1 key=a") == "worker exited with code=1 key=a"


def test_query_only_names_go_with_the_defaults() -> None:
    from obs.config import Settings

    without = RedactSecrets.from_settings(Settings.from_env({"OBS_REDACT_DEFAULTS": "false"}))
    assert without.redact_query("code=1&sig=2") == "code=1&sig=2"
    with_defaults = RedactSecrets.from_settings(Settings.from_env({}))
    assert with_defaults.redact_query("code=1&sig=2") == f"code={MASK}&sig={MASK}"


NESTED = [
    "next=%2Fcb%3Faccess_token%3DS3CR3T",  # a callback URL, encoded
    "next=%2Fcb%3Fa%3D1%26token%3DS3CR3T",  # its second parameter
    "next=%252Fcb%253Faccess_token%253DS3CR3T",  # encoded twice
    "next=%2Fcb%3Fcode%3DS3CR3T",  # a query-only name inside
    "next=%2Fcb%23access_token%3DS3CR3T",  # OAuth's implicit flow: in the fragment
    "redirect_uri=https%3A%2F%2Fbob%3AS3CR3T%40host%2F",  # userinfo
    "next=/cb?access_token=S3CR3T",  # not encoded
    "state=a%3Dpassword%3DS3CR3T",  # a bare query
]
NESTED_KEPT = [
    "next=%2Fcb%3Fpage%3D2%26sort%3Dname",
    "email=ann%40example.com",
    "q=a%2Bb%3D%3F",
    "sig2=abc==",
    "state=%7B%22code%22%3A%22x%22%7D",
    "v=100%25",
]


def test_a_secret_nested_in_another_parameters_value_masks_that_value() -> None:
    redact = RedactSecrets()
    for query in NESTED:
        name = query.partition("=")[0]
        out = redact.redact_query(f"a=1&{query}&b=2")
        assert out == f"a=1&{name}={MASK}&b=2", query  # masked whole, never shown decoded
        line = redact.scrub_text(f'"GET /x?{query} HTTP/1.1" 200')  # a server's request line
        assert "S3CR3T" not in line, line
    for query in NESTED_KEPT:
        assert redact.redact_query(query) == query
        assert redact.scrub_text(f"GET /x?{query} HTTP/1.1") == f"GET /x?{query} HTTP/1.1"


def test_nesting_past_the_decoding_limit_is_masked() -> None:
    value = "token%3DS3CR3T"
    for _ in range(6):
        value = value.replace("%", "%25")
    assert RedactSecrets().redact_query(f"next={value}") == f"next={MASK}"


def test_a_cookie_header_in_text_is_masked_to_the_end_of_its_line() -> None:
    redact = RedactSecrets()
    headers = "Cookie: theme=dark; _myapp_sess=S3CR3T; remember=S3CR3T\r\nAccept: */*"
    assert redact.scrub_text(headers) == f"Cookie: {MASK}\r\nAccept: */*"
    set_cookie = "Set-Cookie: sid=S3CR3T; Path=/; HttpOnly\nnext line"
    assert redact.scrub_text(set_cookie) == f"Set-Cookie: {MASK}\nnext line"
    assert redact.scrub_text("cookie:sid=S3CR3T") == f"cookie:{MASK}"
    # A quoted value ends at its quote (a dict's repr), the rest is kept.
    quoted = "{'Cookie': 'a=S3CR3T; b=S3CR3T', 'x': 1}"
    assert redact.scrub_text(quoted) == f"{{'Cookie': {MASK}, 'x': 1}}"
