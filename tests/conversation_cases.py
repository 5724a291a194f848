"""Messages the conversation channel refuses, as data: the unit tests send them in process,
the end-to-end tests over real HTTP; each with its status 400, error code and exact message.

Both test projects (``tests/unit/projects/conversation``, ``tests/e2e/projects/conversation``)
have a ``wismo`` flow with an ``email`` input of format email, where ``bad_context`` lands.
"""

from __future__ import annotations

from typing import Any

MESSAGES = "/v1/conversations/{}/messages"
ID_RULE = "the conversation id must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'"
EMPTY = "the message's text is empty: send what the customer wrote"
NOT_AN_OBJECT = "the message's context must be an object of the flow's inputs"
WISMO = "where is my order?"

# (path, JSON body, error code, message)
BAD_MESSAGES: list[tuple[str, Any, str, str]] = [
    (MESSAGES.format("x" * 129), {"text": "hi"}, "bad_request", f"{ID_RULE} ('{'x' * 36}..., 129 characters, is not)"),
    (MESSAGES.format("a%20b"), {"text": "hi"}, "bad_request", f"{ID_RULE} ('a b' is not)"),
    (MESSAGES.format("a/b"), {"text": "hi"}, "bad_request", f"{ID_RULE} ('a/b' is not)"),
    (MESSAGES.format("caf%C3%A9"), {"text": "hi"}, "bad_request", f"{ID_RULE} ('café' is not)"),
    ("/v1/conversations//messages", {"text": "hi"}, "bad_request", f"{ID_RULE} ('' is not)"),
    (MESSAGES.format("c"), {"text": ""}, "bad_request", EMPTY),
    (MESSAGES.format("c"), {"text": "  \n "}, "bad_request", EMPTY),
    (MESSAGES.format("c"), {"context": {}}, "bad_request", EMPTY),
    (MESSAGES.format("c"), {"text": "x" * 4001}, "bad_request",
     "the message's text is 4001 characters; at most 4000"),
    (MESSAGES.format("c"), {"text": 12}, "bad_request",
     "the message's text must be a string: what the customer wrote"),
    (MESSAGES.format("c"), {"text": "hi", "context": ["a"]}, "bad_request", NOT_AN_OBJECT),
    (MESSAGES.format("c"), {"text": "hi", "context": "a"}, "bad_request", NOT_AN_OBJECT),
    (MESSAGES.format("c"), {"txt": "hi"}, "bad_request",
     """unknown key 'txt': send {"text": ..., "context": {...}}"""),
    (MESSAGES.format("c"), ["hi"], "bad_request", "the body must be a JSON object"),
    (MESSAGES.format("c"), {"text": WISMO, "context": {"email": {"a": 1}}}, "bad_context",
     "flow 'wismo': input 'email': expected text, got an object"),
    (MESSAGES.format("c"), {"text": WISMO, "context": {"email": "nope"}}, "bad_context",
     "flow 'wismo': input 'email': 'nope' is not an email address"),
]  # fmt: skip
