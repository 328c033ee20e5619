"""schemathesis hooks for packaging/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

SPEC §3: on /api/v1 a request body whose first non-blank byte is not `{` or `[` is read as
application/x-www-form-urlencoded, whatever its Content-Type. So a body schemathesis sends
as "random bytes that are not JSON", labelled application/json, is form data there. When
that form holds no field at all (whitespace, `&`, ` & `), it is an update that changes
nothing, and the server answers 200 as SPEC says. No JSON schema can describe a body that
is not JSON, so the fuzzer calls it a schema violation the server accepted. Only those
cases are dropped. Random bytes that read as form fields still go out (an unknown field is
a 400), as do non-UTF-8 bytes (a 400) and broken JSON (a 400).
"""

import schemathesis


def _empty_form(body: bytes) -> bool:
    """Whether the server reads `body` as a form with no field (src/http/request.rs)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False  # "form body is not valid UTF-8": a 400
    stripped = text.lstrip(" \t\n\r")
    if stripped[:1] in ("{", "["):
        return False  # read as JSON, and it is broken JSON: a 400
    return not any(pair for pair in text.strip().split("&"))


@schemathesis.hook
def filter_case(context, case):
    body = case.body
    if (
        isinstance(body, (bytes, bytearray))
        and case.media_type
        and "json" in case.media_type
        and case.operation.path.startswith("/api/v1/")
    ):
        return not _empty_form(bytes(body))
    return True
