"""Personal data out of recorded cases, told by what a value is rather than by a key list.

Four kinds of value are personal data, and each becomes a consistent stand-in:

- an **email address**, anywhere, in any field or text: ``person1@example.com``;
- a **phone number**: a value in international form (``+44 20 7946 0958``) anywhere, or
  with at least 7 digits in a field whose name says phone (``phone``, ``mobile``, ``tel``,
  ``fax``): ``+15550100001``;
- a **postal address**: the street lines and postal code, in fields whose name says so
  (``address1``, ``line2``, ``street``, ``shippingAddress`` as text, ``zip``, ``postcode``,
  ``postal_code``): ``1 Example Street``, ``00001``. City, region and country stay;
- a **person's name**: a field whose name says a person's name (``first_name``,
  ``lastName``, ``customerName``, ``recipient_name``), or ``name`` in a record that
  describes a person or an address (it has an email, a phone or an address field, or sits
  under ``customer``, ``billing_address``, ``contact``...), when the value reads as a name
  (letters, no digits or ``#``): each word gets its stand-in, so ``Jane Doe`` becomes
  ``Person1 Person2`` and a ``Jane`` met alone ``Person1``. An order's ``name: "#1003"``
  and a product's ``name: "Blue Mug"`` stay as they are.

The same real value always gets the same stand-in, and the stand-ins replace the real
values in paths, XML, strings and replies too, so a recorded case still replays: as whole
words only, and only for values of 3 characters or more, so that a street line "4" never
turns a quantity of 4 into a street.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
INTERNATIONAL_PHONE = re.compile(r"\+\d[\d ().-]{6,}\d")
_PERSON_NAME = re.compile(r"[^\W\d_][^\W\d_ .'-]*(?:[ .'-]+[^\W\d_]+)*\.?")

_PHONE_WORDS = {"phone", "mobile", "tel", "telephone", "fax", "cell", "msisdn", "sms"}
_STREET_WORDS = {"address", "addr", "street"}  # and ``line1``, ``line2``
_POSTAL_WORDS = {"zip", "zipcode", "postcode", "postal"}
_NAME_QUALIFIERS = {"first", "last", "given", "family", "full", "middle", "maiden", "sur"}
_NAME_WORDS = {"surname", "firstname", "lastname", "fullname", "givenname", "familyname"}
_PERSON_WORDS = {
    "customer",
    "contact",
    "recipient",
    "buyer",
    "person",
    "holder",
    "cardholder",
    "billing",
    "shipping",
    "client",
    "owner",
    "user",
}
# Keys that make the record around them describe a person or an address.
_PERSONAL_WORDS = {"email", "first", "last", "surname", "street", *_POSTAL_WORDS, *_PHONE_WORDS}
# Never a postal address, whatever the word "address" says: an email or IP address, an id.
_NOT_POSTAL = {"email", "ip", "mac", "wallet", "web", "url", "id", "type", "kind", "count"}


def words(key: str) -> list[str]:
    """``customerEmail`` → customer, email; ``address1`` → address, 1; ``ZIP_code`` → zip, code."""
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", key)]


def _is_street(ws: set[str]) -> bool:
    return bool(ws & _STREET_WORDS) or ("line" in ws and any(w.isdigit() for w in ws))


def kind_of(key: str, value: str, personal_record: bool) -> str | None:
    """The kind of personal data ``value`` is, under ``key``; None when it is none."""
    ws = set(words(key))
    text = value.strip()
    if EMAIL.fullmatch(text):
        return "email"
    if INTERNATIONAL_PHONE.fullmatch(text) or (
        ws & _PHONE_WORDS and sum(c.isdigit() for c in text) >= 7
    ):
        return "phone"
    if not ws & _NOT_POSTAL:
        if ws & _POSTAL_WORDS:
            return "postal"
        if _is_street(ws):
            return "street"
    if ws & _NAME_WORDS:
        return "name"
    # "name" alone is a person's only in a person's record, and never an order's "#1003".
    person = personal_record or bool(ws & (_NAME_QUALIFIERS | _PERSON_WORDS))
    if "name" in ws and person and _PERSON_NAME.fullmatch(text):
        return "name"
    return None


def _describes_person(record: dict[str, Any], key: str) -> bool:
    if set(words(key)) & _PERSON_WORDS:
        return True
    for k in record:
        ws = set(words(str(k)))
        numbered = any(w.isdigit() for w in ws)  # address1, line2: a street line
        if ws & _PERSONAL_WORDS or (numbered and ws & {"address", "line"}):
            return True
    return False


# Shorter values (a street line "4") are replaced where they are a whole value, never in text.
MIN_IN_TEXT = 3

_STAND_INS = {
    "email": "person{n}@example.com",
    "phone": "+1555010{n:04d}",
    "street": "{n} Example Street",
    "postal": "{n:05d}",
    "name": "Person{n}",
}


@dataclass
class Scrubber:
    """Replaces personal data by stand-ins, the same stand-in for the same value."""

    aliases: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stand_ins: set[str] = field(default_factory=set)
    name_parts: set[str] = field(default_factory=set)  # "Al" is replaced in text, "4" is not

    def alias(self, kind: str, value: str) -> str:
        if value in self.stand_ins:  # already scrubbed: text is scrubbed after its data
            return value
        parts = value.split()
        if kind == "name" and value not in self.aliases:
            # Word by word: a flow that greets "Jane" out of "Jane Doe" then greets the
            # stand-in of "Jane", in the recorded reply and in the replay alike.
            self.name_parts.update(parts)
            if len(parts) > 1:
                stand_in = " ".join(self.alias("name", part) for part in parts)
                self.aliases[value] = stand_in
                self.stand_ins.add(stand_in)
        if value not in self.aliases:
            n = self.counts[kind] = self.counts.get(kind, 0) + 1
            self.aliases[value] = _STAND_INS[kind].format(n=n)
            self.stand_ins.add(self.aliases[value])
        return self.aliases[value]

    def data(self, value: Any, key: str = "", personal: bool = False) -> Any:
        """``value`` (parsed JSON, inputs, outputs) with its personal data replaced."""
        if isinstance(value, dict):
            inside = _describes_person(value, key)
            return {k: self.data(v, str(k), inside) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v, key, personal) for v in value]
        if isinstance(value, int) and not isinstance(value, bool):
            kind = kind_of(key, str(value), personal)
            return self.alias(kind, str(value)) if kind in ("phone", "postal") else value
        if isinstance(value, str) and value.strip():
            kind = kind_of(key, value, personal)
            if kind is not None:
                return self.alias(kind, value)
            return self.text(value)  # an email inside a sentence, say
        return value

    def strings(self, value: Any) -> Any:
        """``value`` with ``text`` applied to every string in it; keys and numbers stay."""
        if isinstance(value, dict):
            return {k: self.strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.strings(v) for v in value]
        return self.text(value) if isinstance(value, str) else value

    def text(self, text: str) -> str:
        """``text`` with every value seen so far replaced, and any email or phone in it."""
        for found in EMAIL.findall(text):
            self.alias("email", found)
        for found in INTERNATIONAL_PHONE.findall(text):
            self.alias("phone", found)
        for real, stand_in in sorted(self.aliases.items(), key=lambda kv: -len(kv[0])):
            if len(real) < MIN_IN_TEXT and real not in self.name_parts:
                continue
            for form in {real, quote(real, safe=""), quote(real), quote(real, safe="+@")}:
                if form in text:
                    # Whole values only: the postal code 10115 must not change ID-101150.
                    pattern = rf"(?<!\w){re.escape(form)}(?!\w)"
                    text = re.sub(pattern, stand_in, text)  # stand-ins hold no backslash
        return text
