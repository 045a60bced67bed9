"""Free-mail and disposable e-mail domains (data only).

Why it matters: a free-mail or throwaway address says nothing about the lead's company, so it
must never be used as the company domain or matched to an account. Brands listed in *_BRANDS
match under any country TLD (`yahoo.co.uk`, `gmx.at`); exact domains are listed as such.
"""

from __future__ import annotations

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "live.com", "msn.com", "icloud.com",
        "me.com", "mac.com", "aol.com", "web.de", "t-online.de", "freenet.de", "posteo.de",
        "mailbox.org", "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com",
        "tuta.io", "zoho.com", "zohomail.com", "mail.com", "email.com", "mail.ru", "inbox.ru",
        "list.ru", "bk.ru", "rambler.ru", "qq.com", "163.com", "126.com", "yeah.net", "sina.com",
        "sohu.com", "naver.com", "daum.net", "hanmail.net", "rediffmail.com", "orange.fr",
        "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net", "libero.it", "virgilio.it",
        "alice.it", "tiscali.it", "seznam.cz", "wp.pl", "o2.pl", "onet.pl", "interia.pl",
        "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
        "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "bigpond.com",
        "shaw.ca", "rogers.com", "sympatico.ca", "hey.com", "fastmail.com", "fastmail.fm",
        "hushmail.com", "ukr.net", "abv.bg", "gmx.com", "gmx.net", "ymail.com", "rocketmail.com",
    }
)  # fmt: skip

FREE_MAIL_BRANDS: frozenset[str] = frozenset(
    {"yahoo", "hotmail", "gmx", "yandex", "outlook", "live", "windowslive", "aim"}
)

DISPOSABLE_DOMAINS: frozenset[str] = frozenset(
    {
        "mailinator.com", "mailinator.net", "mailinator2.com", "10minutemail.com",
        "10minutemail.net", "20minutemail.com", "tempmail.com", "tempmail.net", "temp-mail.org",
        "temp-mail.io", "tempmailo.com", "tempmail.plus", "tempr.email", "yopmail.com",
        "yopmail.fr", "yopmail.net", "trashmail.com", "trashmail.de", "trashmail.net",
        "trashmail.me", "trash-mail.com", "sharklasers.com", "grr.la", "guerrillamailblock.com",
        "pokemail.net", "spam4.me", "dispostable.com", "maildrop.cc", "mailnesia.com",
        "mintemail.com", "mohmal.com", "getnada.com", "nada.email", "throwawaymail.com",
        "fakeinbox.com", "emailondeck.com", "mailcatch.com", "mytemp.email", "moakt.com",
        "spamgourmet.com", "mailpoof.com", "burnermail.io", "discard.email", "tempinbox.com",
        "33mail.com", "inboxkitten.com", "emailfake.com", "fakemail.net", "mvrht.com",
        "dropmail.me", "spambox.us", "wegwerfmail.de", "wegwerfmail.net", "einrot.com",
        "mailforspam.com", "jetable.org", "tempail.com", "minuteinbox.com", "luxusmail.org",
    }
)  # fmt: skip

DISPOSABLE_BRANDS: frozenset[str] = frozenset(
    {"guerrillamail", "trashmail", "tempmail", "temp-mail", "mailinator", "yopmail"}
)
