"""Messy contact submissions with ground truth (issue #18, "measured, not claimed").

About 120 people, each submitting one to five times the way real forms write it: upper case
and stray spaces, `+tag` sub-addresses, Gmail dots and `googlemail.com`, national,
international and 00-prefixed phone spellings, touches with only a phone (or only an e-mail),
names with and without diacritics, swapped first/last names, one-letter typos, shared
companies and first names, colleagues who give the company's switchboard number. Every touch
carries the person it came from (`person`) and the kinds of mess applied (`kinds`), so a run
can say which rule a missed merge needed.

Deterministic: the same seed gives the same submissions, byte for byte.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import idna
import phonenumbers

FIRST = ["José", "Zoë", "Jürgen", "Søren", "François", "Ana", "María", "Björn", "Chloé", "Léa",
         "Anna", "Ben", "David", "Elif", "Farah", "Hana", "Ivan", "Julia", "Kenji", "Marco",
         "Nora", "Omar", "Paula", "Rosa", "Sven", "Tara", "Łukasz", "Çağla", "Noël", "Inés"]  # fmt: skip
LAST = ["García", "Müller", "Okafor", "Novák", "Lindqvist", "Tanaka", "Dubois", "Rossi",
        "Kowalski", "Haddad", "Murphy", "Jensen", "Silva", "Weber", "Nguyen", "Brown",
        "Schäfer", "Jiménez", "Øvergaard", "Ó Briain", "Fernández", "Björk", "Yilmaz",
        "Smith", "Becker", "Moreau", "Conti", "Wójcik", "Eriksson", "Peña"]  # fmt: skip
COMPANIES = [  # (name, domain, country)
    ("Acme Industries GmbH", "acme-industries.de", "DE"), ("Müller Bau AG", "müller-bau.de", "DE"),
    ("Globex Ltd", "globex.co.uk", "GB"), ("Initech Inc", "initech.com", "US"),
    ("Fabbrica Digitale S.p.A.", "fabbrica-digitale.it", "IT"),
    ("Northwind Logistics", "northwind-logistics.de", "DE"), ("BrightPath Analytics", "brightpath.io", "GB"),
    ("Meridian Health", "meridian-health.com", "US"), ("Soylent SA", "soylent.fr", "FR"),
    ("Hooli Europe BV", "hooli.nl", "NL"), ("Umbrella Iberia SL", "umbrella.es", "ES"),
    ("Vandelay Imports", "vandelay.com", "US"), ("Stark Robotics", "stark-robotics.de", "DE"),
    ("Wayne Shipping Ltd", "wayne-shipping.co.uk", "GB"), ("Tyrell Systems", "tyrell.io", "US"),
    ("Cyberdyne SAS", "cyberdyne.fr", "FR"), ("Oscorp Nederland", "oscorp.nl", "NL"),
    ("Pied Piper", "piedpiper.com", "US"), ("Dunder Mifflin", "dundermifflin.com", "US"),
    ("Wonka Süßwaren GmbH", "wonka-süßwaren.de", "DE"), ("Gringotts Bank plc", "gringotts.co.uk", "GB"),
    ("Aperture Science", "aperture.com", "US"), ("Black Mesa Iberia", "blackmesa.es", "ES"),
    ("Nakatomi Trading", "nakatomi.it", "IT"), ("Virtucon AG", "virtucon.de", "DE"),
]  # fmt: skip
FREE_MAIL = ["gmail.com", "gmx.de", "outlook.com", "yahoo.co.uk"]
TITLES = ["VP Sales", "Head of Marketing", "CTO", "Sales Manager", "Founder & CEO",
          "Director of Operations", "Account Executive", "Engineer", "RevOps Lead"]  # fmt: skip
MESSAGES = ["Can we get a demo?", "Pricing for 40 reps?", "Following up on my last request.",
            "Does it integrate with HubSpot?", "Please call me back."]  # fmt: skip


@dataclass(frozen=True)
class Person:
    id: int
    first: str
    last: str
    email: str  # canonical address
    phone: str  # E.164 mobile
    company: str
    domain: str
    country: str
    switchboard: str  # the company's main line (E.164), shared by colleagues
    title: str


@dataclass
class Touch:
    """One submission: the source, the values a form would send, and the ground truth."""

    index: int
    person: int
    source: str  # "chat-widget" | "hubspot-forms"
    values: dict[str, str]
    kinds: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The webhook body the source sends (the example policy's field mappings)."""
        v = self.values
        if self.source == "chat-widget":
            visitor: dict[str, Any] = {k: v[k] for k in ("email", "phone", "first_name",
                                         "last_name", "title", "company", "country") if k in v}  # fmt: skip
            visitor["marketing_opt_in"] = True
            return {
                "visitor": visitor,
                "conversation": {"first_message": v.get("message", ""), "has_message": True},
            }
        names = {"email": "email", "phone": "phone", "first_name": "firstname",
                 "last_name": "lastname", "title": "jobtitle", "company": "company",
                 "country": "country", "website": "website", "message": "message"}  # fmt: skip
        return {"fields": [{"name": names[k], "value": val} for k, val in v.items() if k in names]}


# --- people ----------------------------------------------------------------------------------


def _number(rng: random.Random, region: str, kind: int) -> str:
    """A valid number of this region and type (the library's example with other digits)."""
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    national = phonenumbers.national_significant_number(example)
    for _ in range(200):
        digits = national[:3] + "".join(rng.choice("0123456789") for _ in national[3:])
        number = phonenumbers.parse(f"+{example.country_code}{digits}")
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise RuntimeError(f"no valid number for {region}")


def _ascii_local(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().replace("ø", "o").replace("ł", "l"))
    return "".join(ch for ch in folded if ch.isalnum() and ch.isascii())


def people(rng: random.Random, n: int) -> list[Person]:
    switchboards = {
        c[1]: _number(rng, c[2], phonenumbers.PhoneNumberType.FIXED_LINE) for c in COMPANIES
    }
    out: list[Person] = []
    used: set[str] = set()
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company, domain, country = rng.choice(COMPANIES)
        local = f"{_ascii_local(first)}.{_ascii_local(last)}"
        mail_domain = rng.choice(FREE_MAIL) if rng.random() < 0.2 else domain
        email = f"{local}@{mail_domain}"
        k = 2
        while email in used:  # two people never share a mailbox
            email = f"{local}{k}@{mail_domain}"
            k += 1
        used.add(email)
        out.append(
            Person(
                id=i,
                first=first,
                last=last,
                email=email,
                phone=_number(rng, country, phonenumbers.PhoneNumberType.MOBILE),
                company=company,
                domain=domain,
                country=country,
                switchboard=switchboards[domain],
                title=rng.choice(TITLES),
            )
        )
    return out


# --- mess ------------------------------------------------------------------------------------


def _case(rng: random.Random, text: str) -> str:
    return rng.choice([text.upper(), text.title(), text.swapcase()])


def _email(rng: random.Random, p: Person, kinds: list[str]) -> str:
    local, _, domain = p.email.partition("@")
    roll = rng.random()
    if roll < 0.25:
        kinds.append("email_case_spaces")
        upper = "".join(c.upper() if len(c.upper()) == 1 else c for c in domain)  # ß stays ß
        return f"  {_case(rng, local)}@{upper} "
    if roll < 0.45:
        kinds.append("email_subaddress")
        return f"{local}+{rng.choice(['news', 'demo', 'q4', 'x'])}@{domain}"
    if roll < 0.55 and domain == "gmail.com":
        kinds.append("email_gmail_dots")
        return f"{local.replace('.', '')}@{rng.choice(['gmail.com', 'googlemail.com'])}"
    if roll < 0.7 and not domain.isascii():
        kinds.append("email_idn_punycode")
        return f"{local}@{idna.encode(domain, uts46=True).decode()}"
    return p.email


def _phone(rng: random.Random, p: Person, kinds: list[str]) -> str:
    number = phonenumbers.parse(p.phone)
    roll = rng.random()
    if roll < 0.3:
        kinds.append("phone_national")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if roll < 0.5:
        kinds.append("phone_00_prefix")
        return "00" + p.phone[1:]
    if roll < 0.7:
        kinds.append("phone_international")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return p.phone


def _typo(rng: random.Random, name: str) -> str:
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1 :] if rng.random() < 0.5 else name[:i] + name[i] + name[i:]


def _strip_accents(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


def touch(rng: random.Random, p: Person, index: int, first: bool) -> Touch:
    """One submission by `p`; a first touch is written as the person would, cleanly."""
    kinds: list[str] = []
    first_name, last_name = p.first, p.last
    values: dict[str, str] = {"title": p.title, "message": rng.choice(MESSAGES)}
    if first:
        values.update(email=p.email, phone=p.phone, country=p.country)
    else:
        shape = rng.random()
        if shape < 0.15:
            kinds.append("phone_only")
        else:
            values["email"] = _email(rng, p, kinds)
        if shape < 0.15 or rng.random() < 0.6:
            if rng.random() < 0.12:
                kinds.append("switchboard_phone")
                values["phone"] = phonenumbers.format_number(
                    phonenumbers.parse(p.switchboard), phonenumbers.PhoneNumberFormat.NATIONAL
                )
            else:
                values["phone"] = _phone(rng, p, kinds)
        if rng.random() < 0.9:
            values["country"] = p.country
        if rng.random() < 0.2:
            kinds.append("name_diacritics")
            first_name, last_name = _strip_accents(first_name), _strip_accents(last_name)
        if rng.random() < 0.1:
            kinds.append("name_swapped")
            first_name, last_name = last_name, first_name
        if rng.random() < 0.1:
            kinds.append("name_typo")
            last_name = _typo(rng, last_name)
        if rng.random() < 0.2:
            kinds.append("name_case")
            first_name, last_name = first_name.upper(), last_name.lower()
    values.update(first_name=first_name, last_name=last_name)
    values["company"] = p.company if first or rng.random() < 0.6 else p.company.split()[0].upper()
    source = rng.choice(["chat-widget", "hubspot-forms"])
    if source == "hubspot-forms" and rng.random() < 0.5:
        values["website"] = f"https://www.{p.domain}"
    return Touch(index=index, person=p.id, source=source, values=values, kinds=kinds)


def generate(seed: int = 18, n_people: int = 120) -> list[Touch]:
    """The submissions in the order they are sent: each person's touches spread over the
    run, a person's first touch before their others."""
    rng = random.Random(seed)
    crowd = people(rng, n_people)
    pending = {p.id: rng.choice([1, 1, 2, 2, 3, 3, 4, 5]) for p in crowd}
    order: list[int] = []
    while pending:
        pid = rng.choice(sorted(pending))
        order.append(pid)
        pending[pid] -= 1
        if not pending[pid]:
            del pending[pid]
    seen: set[int] = set()
    out: list[Touch] = []
    for i, pid in enumerate(order):
        out.append(touch(rng, crowd[pid], i, pid not in seen))
        seen.add(pid)
    return out
